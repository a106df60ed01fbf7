package restorer

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hoard-backup/hoard/snapshot"
)

// atDir calls fn with a file descriptor of directory d, so that the *at
// system calls work inside it without following a path from outside.
func atDir(d *os.Root, fn func(fd int) error) error {
	f, err := d.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// lutimes sets the times of name in d without following it when it is a
// symlink (os.Root.Chtimes follows symlinks).
func lutimes(d *os.Root, name string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return atDir(d, func(fd int) error {
		return unix.UtimesNanoAt(fd, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	})
}

// mknod creates a fifo or a device node named n.Name in d, as tar and
// restic do; devices need root (CAP_MKNOD).
func mknod(d *os.Root, n snapshot.Node) error {
	mode := uint32(n.Mode.Perm())
	switch n.Type {
	case snapshot.TypeFifo:
		mode |= unix.S_IFIFO
	case snapshot.TypeCharDev:
		mode |= unix.S_IFCHR
	default:
		mode |= unix.S_IFBLK
	}
	return atDir(d, func(fd int) error {
		if err := unix.Mknodat(fd, n.Name, mode, int(n.Rdev)); err != nil {
			return err
		}
		// The umask applied to mknod; os.Root's Chmod would open the node.
		return unix.Fchmodat(fd, n.Name, uint32(n.Mode.Perm()), 0)
	})
}
