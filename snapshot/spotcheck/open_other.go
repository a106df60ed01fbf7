//go:build !linux

package spotcheck

import (
	"io/fs"
	"os"
	"time"
)

// openReadOnly opens rel below lr for reading.
func openReadOnly(lr *os.Root, rel string) (*os.File, error) {
	return lr.OpenFile(rel, os.O_RDONLY, 0)
}

// changeTime returns the zero time: ctime is read on Linux only.
func changeTime(fs.FileInfo) time.Time { return time.Time{} }
