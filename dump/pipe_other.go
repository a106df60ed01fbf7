//go:build !linux

package dump

import "os"

// growPipe keeps the default buffer where it cannot be changed.
func growPipe(*os.File) {}
