//go:build !linux

package restorer

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

func openNewAt(*os.File, string, fs.FileMode) (outFile, error) { return nil, errors.ErrUnsupported }

func chtimesAt(*os.File, string, time.Time) error { return errors.ErrUnsupported }

func processUmask() (fs.FileMode, bool) { return 0, false }

const haveAtCalls = false

func hasDefaultACL(string) bool { return true }
