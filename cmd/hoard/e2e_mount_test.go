package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/internal/testenv"
)

// fuseRequire skips without FUSE outside CI and fails in CI.
func fuseRequire(t *testing.T) {
	t.Helper()
	_, err := os.Stat("/dev/fuse")
	if err == nil {
		_, err = exec.LookPath("fusermount3")
	}
	if err != nil {
		testenv.Missing(t, "FUSE (/dev/fuse and fusermount3 from Debian's fuse3): %v", err)
	}
}

func mounted(dir string) bool {
	b, _ := os.ReadFile("/proc/mounts")
	return bytes.Contains(b, []byte(" "+dir+" "))
}

// TestE2EMount mounts a repository with the real FUSE, lists it, compares
// files with the originals (whole, and read at offsets in the middle of a
// large file), sees a snapshot taken while mounted, and unmounts on
// SIGTERM without leaving the mount or the process behind.
func TestE2EMount(t *testing.T) {
	fuseRequire(t)
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "site")
	gpgMakeTree(t, src, testSeed(t, 21))
	big := make([]byte, 40<<20)
	if _, err := io.ReadFull(newDataGen(testSeed(t, 22)), big); err != nil {
		t.Fatal(err)
	}
	gpgWriteFile(t, filepath.Join(src, "large.bin"), big)
	if err := os.Symlink("db.sql", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	first := e.mustBackup(nil, "--tag", "nightly", src).ID
	want := gpgSums(t, src)

	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := e.command("mount", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if mounted(dir) {
			exec.Command("fusermount3", "-u", "-z", dir).Run()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !mounted(dir) {
		select {
		case err := <-exited:
			t.Fatalf("hoard mount exited: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("not mounted after 60 s\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, p := range []string{"ids/" + first, "snapshots/latest", "tags/nightly"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	hosts, err := os.ReadDir(filepath.Join(dir, "hosts"))
	if err != nil || len(hosts) != 1 {
		t.Fatalf("hosts/: %v, %v", hosts, err)
	}
	root := filepath.Join(dir, "ids", first, "site")
	gpgSameSums(t, "files read through the mount", want, gpgSums(t, root))
	if target, err := os.Readlink(filepath.Join(root, "link")); err != nil || target != "db.sql" {
		t.Errorf("symlink: %q, %v", target, err)
	}
	st, err := os.Stat(filepath.Join(root, "large.bin"))
	if err != nil || st.Size() != int64(len(big)) || st.Mode().Perm()&0o222 != 0 {
		t.Fatalf("large.bin: %v, %v", st, err)
	}
	f, err := os.Open(filepath.Join(root, "large.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 1, 17<<20 + 12345, int64(len(big)) - 100, int64(len(big)) - 1} {
		buf := make([]byte, 300000)
		n, err := f.ReadAt(buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("ReadAt %d: %v", off, err)
		}
		wantN := min(len(buf), len(big)-int(off))
		if n != wantN || !bytes.Equal(buf[:n], big[off:off+int64(n)]) {
			t.Fatalf("ReadAt %d: %d bytes, want %d, equal %v", off, n, wantN, bytes.Equal(buf[:n], big[off:off+int64(n)]))
		}
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(root, "db.sql"), []byte("x"), 0o644); err == nil {
		t.Error("a write through the mount succeeded")
	}

	// A snapshot taken while mounted appears.
	gpgWriteFile(t, filepath.Join(src, "later.txt"), []byte("after the mount"))
	second := e.mustBackup(nil, src).ID
	deadline = time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "ids", second, "site", "later.txt"))
		if err == nil && string(b) == "after the mount" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the snapshot taken while mounted did not appear in 30 s: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if names, _ := os.ReadDir(filepath.Join(dir, "snapshots")); len(names) != 3 {
		t.Errorf("snapshots/ has %d entries, want two times and latest", len(names))
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("hoard mount after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("hoard mount did not exit within 30 s of SIGTERM")
	}
	if mounted(dir) {
		t.Fatal("still mounted after hoard mount exited")
	}
	if !strings.Contains(stderr.String(), "Ctrl-C") {
		t.Errorf("mount said: %s", stderr.String())
	}
}
