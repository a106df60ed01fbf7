package dump

import (
	"os"

	"golang.org/x/sys/unix"
)

// growPipe asks for a pipeSize buffer; a refusal (a lowered
// fs.pipe-max-size, a user over its pipe quota) keeps the default.
func growPipe(f *os.File) {
	if sc, err := f.SyscallConn(); err == nil {
		_ = sc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
	}
}
