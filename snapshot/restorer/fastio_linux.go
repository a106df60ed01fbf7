package restorer

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// openNewAt creates name in the directory dir (an open file of it) with
// one openat call: never following a symlink, failing if name exists. A
// file from os.NewFile of a blocking descriptor skips the poller set-up
// that os.Root.OpenFile does (four fcntl and an epoll_ctl per file, a
// tenth of a small-file restore's system calls). name must be a single
// valid component (snapshot.ValidName).
func openNewAt(dir *os.File, name string) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// chtimesAt sets the times of name in dir without following a symlink,
// in one utimensat call (os.Root.Chtimes first reads the name as a link).
func chtimesAt(dir *os.File, name string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(int(dir.Fd()), name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

const haveAtCalls = true
