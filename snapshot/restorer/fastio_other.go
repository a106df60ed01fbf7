//go:build !linux

package restorer

import (
	"errors"
	"os"
	"time"
)

func openNewAt(*os.File, string) (*os.File, error) { return nil, errors.ErrUnsupported }

func chtimesAt(*os.File, string, time.Time) error { return errors.ErrUnsupported }

const haveAtCalls = false
