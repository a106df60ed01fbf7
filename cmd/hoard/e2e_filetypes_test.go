package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestE2EFileTypes: hard links come back as links (within the restore),
// symlinks get their mtime back, fifos are recreated, and devices too when
// running as root (else a warning without --verbose).
func TestE2EFileTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(src, "a"), []byte("linked content\n"), 0o640))
	must(os.Link(filepath.Join(src, "a"), filepath.Join(src, "b")))
	must(os.Link(filepath.Join(src, "a"), filepath.Join(src, "sub", "c")))
	must(os.WriteFile(filepath.Join(src, "lone"), []byte("linked content\n"), 0o644))
	must(os.Symlink("a", filepath.Join(src, "ln")))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	ts := unix.NsecToTimespec(old.UnixNano())
	must(unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(src, "ln"), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	must(unix.Mkfifo(filepath.Join(src, "pipe"), 0o620))
	must(os.Chmod(filepath.Join(src, "pipe"), 0o620))
	root := os.Geteuid() == 0
	if root {
		must(unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	}
	e.mustBackup(nil, src)

	target := t.TempDir()
	out, stderr, code := e.run("restore", "latest", "--target", target)
	if code != 0 {
		t.Fatalf("restore: exit %d: %s", code, stderr)
	}
	r := filepath.Join(target, "src")
	ino := func(p string) uint64 {
		fi, err := os.Lstat(filepath.Join(r, p))
		must(err)
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	if ino("a") != ino("b") || ino("a") != ino("sub/c") {
		t.Errorf("hard links restored as copies: inodes a %d, b %d, sub/c %d", ino("a"), ino("b"), ino("sub/c"))
	}
	if ino("lone") == ino("a") {
		t.Error("an unlinked file with equal content was linked")
	}
	if b, err := os.ReadFile(filepath.Join(r, "sub", "c")); err != nil || string(b) != "linked content\n" {
		t.Errorf("sub/c: %q %v", b, err)
	}
	if fi, err := os.Lstat(filepath.Join(r, "ln")); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("symlink mtime: %v, want %v", fi, old)
	}
	if fi, err := os.Lstat(filepath.Join(r, "pipe")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 || fi.Mode().Perm() != 0o620 {
		t.Errorf("fifo not restored as prw--w----: %v", err)
	}
	if root {
		fi, err := os.Lstat(filepath.Join(r, "null"))
		if err != nil || fi.Mode()&os.ModeCharDevice == 0 || fi.Sys().(*syscall.Stat_t).Rdev != unix.Mkdev(1, 3) {
			t.Errorf("device not restored as /dev/null's: %v", err)
		}
	}
	if !strings.Contains(out, "restored snapshot") {
		t.Errorf("restore output: %s", out)
	}
	// Only part of a group restored: the included member is a plain file.
	part := t.TempDir()
	e.mustRun("restore", "latest", "--target", part, "--include", "/src/sub")
	if b, err := os.ReadFile(filepath.Join(part, "src", "sub", "c")); err != nil || string(b) != "linked content\n" {
		t.Errorf("partial restore of a link group: %q %v", b, err)
	}
	// A special file that cannot be made is a warning, shown without
	// --verbose, and the restore goes on: here a directory is in the way.
	blocked := t.TempDir()
	must(os.MkdirAll(filepath.Join(blocked, "src", "pipe", "x"), 0o755))
	_, stderr, code = e.run("restore", "latest", "--target", blocked)
	if code != 0 || !strings.Contains(stderr, "cannot create special file") || !strings.Contains(stderr, "/src/pipe") {
		t.Errorf("restore over a directory where a fifo was: exit %d: %s", code, stderr)
	}
}
