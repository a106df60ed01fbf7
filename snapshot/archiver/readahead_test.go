package archiver

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

func TestReadAhead(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 1<<20+12345)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, size := range []int{1, 4096, 1 << 20, 4 << 20} {
		ra := newReadAhead(iotest.HalfReader(bytes.NewReader(data)), size, 3)
		got, err := io.ReadAll(ra)
		ra.stopAndWait()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("block %d: %d bytes, %v", size, len(got), err)
		}
	}
	boom := errors.New("boom")
	ra := newReadAhead(io.MultiReader(bytes.NewReader(data[:5000]), iotest.ErrReader(boom)), 4096, 2)
	got, err := io.ReadAll(ra)
	ra.stopAndWait()
	if !errors.Is(err, boom) || !bytes.Equal(got, data[:5000]) {
		t.Fatalf("error: %d bytes, %v", len(got), err)
	}
	// Stopped early while the goroutine waits for a free block.
	ra = newReadAhead(bytes.NewReader(data), 1024, 2)
	buf := make([]byte, 10)
	if _, err := ra.Read(buf); err != nil {
		t.Fatal(err)
	}
	ra.stopAndWait()
}
