//go:build !linux

package restorer

import (
	"errors"
	"os"
	"time"

	"github.com/hoard-backup/hoard/snapshot"
)

func lutimes(d *os.Root, name string, t time.Time) error { return errors.ErrUnsupported }

func mknod(d *os.Root, n snapshot.Node) error { return errors.ErrUnsupported }
