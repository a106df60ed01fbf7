//go:build unix

package local_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/local"
)

// TestSpecialFilesRefused plants a FIFO, a folder and a socket where
// repository files belong: Load and Stat must fail at once, naming the
// kind of file, instead of blocking in open(2) on the FIFO forever.
func TestSpecialFilesRefused(t *testing.T) {
	be, root := create(t, local.Config{})
	fifo := func(p string) {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
	}
	cases := []struct {
		h    backends.Handle
		path string
		make func(string)
		kind string
	}{
		{backends.Handle{Type: backends.ConfigFile}, "config", fifo, "named pipe"},
		{backends.Handle{Type: backends.KeyFile, Name: "k1"}, "keys/k1", fifo, "named pipe"},
		{backends.Handle{Type: backends.PackFile, Name: packName}, "data/ab/" + packName, fifo, "named pipe"},
		{backends.Handle{Type: backends.IndexFile, Name: "i1"}, "index/i1", func(p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "folder"},
		{backends.Handle{Type: backends.LockFile, Name: "l1"}, "locks/l1", func(p string) {
			fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
			if err != nil {
				t.Skipf("socket: %v", err)
			}
			defer syscall.Close(fd)
			if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: p}); err != nil {
				t.Skipf("bind: %v", err)
			}
		}, "socket"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			c.make(filepath.Join(root, c.path))
			done := make(chan error, 2)
			go func() {
				done <- be.Load(context.Background(), c.h, 0, 0, func(rd io.Reader) error {
					_, err := io.Copy(io.Discard, rd)
					return err
				})
			}()
			go func() {
				_, err := be.Stat(context.Background(), c.h)
				done <- err
			}()
			for range 2 {
				select {
				case err := <-done:
					if err == nil || !strings.Contains(err.Error(), c.kind) || !errors.Is(err, backends.ErrPermanent) {
						t.Errorf("Load/Stat of %s = %v, want a permanent error naming %q", c.path, err, c.kind)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("Load/Stat of %s blocks", c.path)
				}
			}
		})
	}
}
