package spotcheck

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// openReadOnly opens rel below lr for reading, without following a
// symbolic link in its last element and, where the caller owns the file
// (or may act as its owner), without updating its access time. O_NONBLOCK
// keeps a file swapped for a FIFO after it was found regular from blocking
// the open (the caller's Stat of the open file then sees it is no regular
// file); on a regular file it changes nothing.
func openReadOnly(lr *os.Root, rel string) (*os.File, error) {
	const flags = os.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK
	f, err := lr.OpenFile(rel, flags|syscall.O_NOATIME, 0)
	if errors.Is(err, syscall.EPERM) {
		f, err = lr.OpenFile(rel, flags, 0)
	}
	return f, err
}

// changeTime returns fi's ctime (the zero time when unknown).
func changeTime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	}
	return time.Time{}
}
