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
// (or may act as its owner), without updating its access time.
func openReadOnly(lr *os.Root, rel string) (*os.File, error) {
	f, err := lr.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NOATIME, 0)
	if errors.Is(err, syscall.EPERM) {
		f, err = lr.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
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
