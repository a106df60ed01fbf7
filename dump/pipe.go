package dump

import "os"

// pipeSize is the buffer asked for the pipe between hoard and a dump tool.
// The default 64 KiB makes a tool that writes in 4 KiB pieces (pg_dump)
// wake hoard's reader for nearly every piece, and stall whenever hoard is
// busy for a moment; 1 MiB (the unprivileged maximum on Linux) cut the
// context switches of backing up a 1 GiB pg_dump from 290,000 to 213,000.
// Only output pipes are enlarged: see Feed.
const pipeSize = 1 << 20

// newPipe returns a pipe whose buffer is enlarged where the system allows.
func newPipe() (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err == nil {
		growPipe(w)
	}
	return r, w, err
}
