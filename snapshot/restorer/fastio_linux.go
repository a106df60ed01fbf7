package restorer

import (
	"bufio"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openNewAt creates name in the directory dir (an open file of it) with
// one openat call: never following a symlink, failing if name exists, with
// permissions perm (less the umask). The descriptor is used as it is, not
// through an os.File: os.NewFile costs an fcntl per file and
// os.Root.OpenFile four more and an epoll_ctl, a tenth of a small-file
// restore's system calls. name must be a single valid component
// (snapshot.ValidName).
func openNewAt(dir *os.File, name string, perm fs.FileMode) (outFile, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: name, Err: err}
	}
	return rawFile{fd: fd, name: name}, nil
}

// rawFile is a file being restored, as a bare descriptor.
type rawFile struct {
	fd   int
	name string
}

func (f rawFile) WriteAt(b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Pwrite(f.fd, b[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, f.err("pwrite", err)
		}
		if m == 0 {
			return n, f.err("pwrite", unix.EIO)
		}
		n += m
	}
	return n, nil
}

func (f rawFile) Truncate(size int64) error { return f.err("ftruncate", unix.Ftruncate(f.fd, size)) }

func (f rawFile) Chown(uid, gid int) error { return f.err("fchown", unix.Fchown(f.fd, uid, gid)) }

func (f rawFile) Chmod(mode fs.FileMode) error {
	return f.err("fchmod", unix.Fchmod(f.fd, uint32(syscallMode(mode))))
}

func (f rawFile) Close() error { return f.err("close", unix.Close(f.fd)) }

// SetTimes sets the access and modification times through the open
// descriptor (futimens: utimensat with a null path), so that no path is
// looked up again.
func (f rawFile) SetTimes(t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	times := [2]unix.Timespec{ts, ts}
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(f.fd), 0, uintptr(unsafe.Pointer(&times[0])), 0, 0, 0)
	if e != 0 {
		return f.err("futimens", e)
	}
	return nil
}

func (f rawFile) err(op string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: op, Path: f.name, Err: err}
}

// syscallMode turns the permission and special bits of mode into those of
// chmod(2).
func syscallMode(mode fs.FileMode) uint32 {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= unix.S_ISUID
	}
	if mode&fs.ModeSetgid != 0 {
		m |= unix.S_ISGID
	}
	if mode&fs.ModeSticky != 0 {
		m |= unix.S_ISVTX
	}
	return m
}

// chtimesAt sets the times of name in dir without following a symlink,
// in one utimensat call (os.Root.Chtimes first reads the name as a link).
func chtimesAt(dir *os.File, name string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(int(dir.Fd()), name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// processUmask returns the umask, read from /proc/self/status (Linux 4.7
// and later; umask(2) cannot read it without changing it for every
// thread), and false when it cannot be read.
func processUmask() (fs.FileMode, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				return 0, false
			}
			return fs.FileMode(m) & fs.ModePerm, true
		}
	}
	return 0, false
}

const haveAtCalls = true

// hasDefaultACL says whether dir has a default POSIX ACL (or whether that
// cannot be told), under which a new file's mode is not the requested
// mode less the umask. The folders a restore makes below dir inherit it.
func hasDefaultACL(dir string) bool {
	_, err := unix.Getxattr(dir, "system.posix_acl_default", nil)
	return err == nil || (err != unix.ENODATA && err != unix.EOPNOTSUPP)
}
