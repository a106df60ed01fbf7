package archiver

import (
	"errors"
	"io"
)

// readAhead reads a stream in a goroutine of its own into a few blocks, so
// that a producer on the other side of a pipe (pg_dump, mariadb-dump, a
// command) keeps running while hoard chunks what it already sent, instead
// of stalling each time the chunker is busy.
type readAhead struct {
	blocks chan []byte // filled blocks, closed after the last
	free   chan []byte // empty blocks
	stop   chan struct{}
	done   chan struct{}
	err    error // io.EOF or the read error; set before blocks is closed
	cur    []byte
	last   []byte // the block cur points into, returned to free when used up
}

// newReadAhead starts reading rd into n blocks of size bytes.
func newReadAhead(rd io.Reader, size, n int) *readAhead {
	ra := &readAhead{blocks: make(chan []byte, n), free: make(chan []byte, n),
		stop: make(chan struct{}), done: make(chan struct{})}
	for i := 0; i < n; i++ {
		ra.free <- make([]byte, size)
	}
	go func() {
		defer close(ra.done)
		defer close(ra.blocks)
		for {
			var b []byte
			select {
			case b = <-ra.free:
			case <-ra.stop:
				ra.err = io.ErrClosedPipe
				return
			}
			m, err := io.ReadFull(rd, b[:cap(b)])
			if m > 0 {
				select {
				case ra.blocks <- b[:m]:
				case <-ra.stop:
					ra.err = io.ErrClosedPipe
					return
				}
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				ra.err = io.EOF
				return
			}
			if err != nil {
				ra.err = err
				return
			}
		}
	}()
	return ra
}

// Read implements io.Reader.
func (ra *readAhead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.last != nil {
			ra.free <- ra.last[:cap(ra.last)]
			ra.last = nil
		}
		b, ok := <-ra.blocks
		if !ok {
			return 0, ra.err
		}
		ra.cur, ra.last = b, b
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// stopAndWait ends the reading goroutine. If it may be blocked in a read of
// the underlying stream, close that stream first.
func (ra *readAhead) stopAndWait() {
	close(ra.stop)
	<-ra.done
}
