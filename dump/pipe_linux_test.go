package dump

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStreamPipeSize checks that a dump tool can write most of pipeSize
// ahead of hoard's reading: the tool writes 768 KiB and finishes while
// nothing reads, which a default 64 KiB pipe would not let it do.
func TestStreamPipeSize(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "done")
	s, err := sh("head -c 786432 /dev/zero && touch " + marker).Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			s.Close()
			t.Fatal("the tool could not write 768 KiB ahead of the reader: the pipe was not enlarged")
		}
		time.Sleep(10 * time.Millisecond)
	}
	n, err := io.Copy(io.Discard, s)
	if err != nil || n != 786432 {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
