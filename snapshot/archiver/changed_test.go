package archiver

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

// changeAfterFirstRead is a reader that calls change once, right after its
// first Read: the file changes while the archiver is in the middle of it.
type changeAfterFirstRead struct {
	rd     io.Reader
	change func()
	done   bool
}

func (c *changeAfterFirstRead) Read(p []byte) (int, error) {
	n, err := c.rd.Read(p[:min(len(p), 64<<10)])
	if !c.done {
		c.done = true
		c.change()
	}
	return n, err
}

// TestFileChangedWhileRead changes a file while the archiver reads it: a
// file that shrinks once is read again and stored as it is afterwards; a
// file that changes on every read is stored as the second read saw it,
// with a warning naming it and an error counted (exit 3 in cmd/hoard); it
// is never stored silently at a length it never had.
func TestFileChangedWhileRead(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 7))
	orig := make([]byte, 4<<20)
	for i := range orig {
		orig[i] = byte(rnd.Uint32())
	}
	cases := []struct {
		name string
		// changes[i] runs during the i-th read of the file (0-based).
		changes []func(t *testing.T, p string)
		want    func() []byte
		errors  uint64
		warn    string
	}{
		{
			name:    "unchanged",
			changes: nil,
			want:    func() []byte { return orig },
		},
		{
			// The first 64 KiB are read, then the file has 16 KiB left:
			// reading on would store 64 KiB, a length it never had.
			name:    "shrinks once",
			changes: []func(*testing.T, string){truncate(16 << 10)},
			want:    func() []byte { return orig[:16<<10] },
		},
		{
			// Bytes already read change: same size, new mtime.
			name:    "changes in place once",
			changes: []func(*testing.T, string){overwrite(orig, 0)},
			want:    func() []byte { return changedCopy(orig, 0) },
		},
		{
			name:    "changes on every read",
			changes: []func(*testing.T, string){truncate(1 << 20), truncate(512 << 10), truncate(100)},
			// The second read met a file that shrank under it: what it
			// read is kept, and said.
			errors: 1,
			warn:   "file changed while being read",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			if err := os.WriteFile(p, orig, 0o644); err != nil {
				t.Fatal(err)
			}
			// Give the changes a later mtime than the original.
			old := time.Now().Add(-time.Hour)
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
			r, err := repo.Init(context.Background(), mem.New(), repo.InitOptions{
				Options: repo.Options{Passphrase: []byte("archiver test")}, S2K: crypto.S2KIterated})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var log bytes.Buffer
			a := New(r, Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
			reads := 0
			a.wrapFile = func(path string, rd io.Reader) io.Reader {
				i := reads
				reads++
				if i >= len(c.changes) {
					return rd
				}
				return &changeAfterFirstRead{rd: rd, change: func() { c.changes[i](t, path) }}
			}
			sn, err := a.Backup(context.Background(), []Item{{Name: "f", Path: p}}, Meta{Host: "h"})
			if err != nil {
				t.Fatal(err)
			}
			if sn.Summary.Errors != c.errors {
				t.Errorf("errors = %d, want %d; log:\n%s", sn.Summary.Errors, c.errors, log.String())
			}
			if c.warn != "" && (!strings.Contains(log.String(), c.warn) || !strings.Contains(log.String(), p)) {
				t.Errorf("log does not name %s with %q:\n%s", p, c.warn, log.String())
			}
			n, err := restorer.FindNode(context.Background(), r, sn, "/f")
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := restorer.Dump(context.Background(), r, n, &got, 0); err != nil {
				t.Fatal(err)
			}
			if n.Size != uint64(got.Len()) {
				t.Errorf("node size %d, content %d bytes", n.Size, got.Len())
			}
			if c.want != nil && !bytes.Equal(got.Bytes(), c.want()) {
				t.Errorf("stored %d bytes, want %d bytes of the file as it is after the change", got.Len(), len(c.want()))
			}
			if c.errors == 0 {
				// What was stored is what the file holds now, at a length it has.
				now, _ := os.ReadFile(p)
				if !bytes.Equal(now, got.Bytes()) {
					t.Errorf("stored %d bytes, the file holds %d", got.Len(), len(now))
				}
			}
		})
	}
}

func truncate(size int64) func(*testing.T, string) {
	return func(t *testing.T, p string) {
		if err := os.Truncate(p, size); err != nil {
			t.Error(err)
		}
	}
}

// overwrite writes changed bytes at off without changing the size.
func overwrite(orig []byte, off int64) func(*testing.T, string) {
	return func(t *testing.T, p string) {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(changedCopy(orig, off)[off:off+4096], off); err != nil {
			t.Error(err)
		}
	}
}

// changedCopy is orig with the 4 KiB at off inverted.
func changedCopy(orig []byte, off int64) []byte {
	b := bytes.Clone(orig)
	for i := off; i < off+4096; i++ {
		b[i] = ^b[i]
	}
	return b
}
