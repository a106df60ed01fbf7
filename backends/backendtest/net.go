package backendtest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Fault is what a Net does to its connections when it breaks.
type Fault int32

const (
	// Cut resets the connections: reads and writes fail at once, as when
	// the peer or a router drops them. The peer sees the connection close.
	Cut Fault = iota + 1
	// Stall silences the connections: writes vanish and reads wait until
	// their deadline, as when a network path goes dark. A client without
	// timeouts hangs.
	Stall
)

// DialFunc is the signature of net.Dialer.DialContext, which network
// backends accept in their Config for proxies and tests.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// Net dials TCP connections that a test can break, at once or after a
// number of bytes, to check how a network backend survives a failure in the
// middle of a transfer. Hand its Dial to the backend under test. While the
// Net is broken, Dial is refused; Heal lets new connections work again
// (broken ones stay broken). A Net is safe for concurrent use.
type Net struct {
	mu     sync.Mutex
	conns  map[*faultConn]struct{}
	broken Fault // what new connections get; 0 when healthy
	armed  Fault // what BreakAfter fires; 0 when not armed
	left   [2]int64
}

// Directions of traffic, for Net.left.
const (
	dirRead = iota
	dirWrite
)

// NewNet returns a healthy Net whose connections are closed at the end of t.
func NewNet(t testing.TB) *Net {
	n := &Net{conns: make(map[*faultConn]struct{})}
	t.Cleanup(n.Close)
	return n
}

// Dial connects like net.Dialer.DialContext, unless the Net is broken.
func (n *Net) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	broken := n.broken
	n.mu.Unlock()
	if broken != 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	fc := &faultConn{Conn: c, n: n}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.conns[fc] = struct{}{}
	if n.broken != 0 {
		fc.fault(n.broken)
	}
	return fc, nil
}

// Break breaks every connection, and refuses new ones until Heal.
func (n *Net) Break(f Fault) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.breakLocked(f)
}

// BreakAfter arms f to break the Net (as Break does) once its connections
// together have read read more bytes or written written more bytes; a
// negative count is not watched.
func (n *Net) BreakAfter(f Fault, read, written int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.armed = f
	n.left = [2]int64{read, written}
}

// Heal lets new connections work and disarms BreakAfter. Connections that
// broke stay broken.
func (n *Net) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.broken, n.armed = 0, 0
}

// Close closes every connection the Net made.
func (n *Net) Close() {
	n.mu.Lock()
	conns := n.conns
	n.conns = make(map[*faultConn]struct{})
	n.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close() // the test is over
	}
}

func (n *Net) breakLocked(f Fault) {
	n.broken, n.armed = f, 0
	for c := range n.conns {
		c.fault(f)
	}
}

// allow trims p to what may pass in direction dir before the armed fault.
func (n *Net) allow(dir int, p []byte) []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.armed == 0 || n.left[dir] < 0 {
		return p
	}
	if n.left[dir] == 0 {
		n.breakLocked(n.armed)
		return p
	}
	return p[:min(int64(len(p)), n.left[dir])]
}

// spent counts k bytes in direction dir and fires the armed fault when its
// budget is used up.
func (n *Net) spent(dir int, k int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.armed == 0 || n.left[dir] < 0 {
		return
	}
	n.left[dir] -= int64(k)
	if n.left[dir] <= 0 {
		n.breakLocked(n.armed)
	}
}

func (n *Net) forget(c *faultConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.conns, c)
}

// faultConn is a connection of a Net.
type faultConn struct {
	net.Conn
	n     *Net
	state atomic.Int32 // a Fault, or 0

	mu           sync.Mutex
	readDeadline time.Time
	closed       bool
}

// fault breaks c; the caller holds c.n.mu.
func (c *faultConn) fault(f Fault) {
	if !c.state.CompareAndSwap(0, int32(f)) {
		return // already broken
	}
	if f == Cut {
		_ = c.Conn.Close() // the peer sees the connection end
	}
}

func (c *faultConn) reset(op string) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: syscall.ECONNRESET}
}

func (c *faultConn) Read(p []byte) (int, error) {
	p = c.n.allow(dirRead, p)
	switch Fault(c.state.Load()) {
	case Cut:
		return 0, c.reset("read")
	case Stall:
		return c.stall()
	}
	k, err := c.Conn.Read(p)
	c.n.spent(dirRead, k)
	if err != nil && Fault(c.state.Load()) == Cut {
		err = c.reset("read") // closed by the cut while reading
	}
	return k, err
}

// stall swallows whatever arrives until the read deadline passes or the
// connection is closed. The peer's end of stream is swallowed too: a dark
// network delivers nothing.
func (c *faultConn) stall() (int, error) {
	buf := make([]byte, 32<<10)
	for {
		_, err := c.Conn.Read(buf)
		if err == nil {
			continue
		}
		if Fault(c.state.Load()) == Cut {
			return 0, c.reset("read")
		}
		if !errors.Is(err, io.EOF) {
			return 0, err
		}
		return 0, c.waitDeadline()
	}
}

// waitDeadline blocks until the read deadline passes (then returns a
// timeout) or the connection is closed.
func (c *faultConn) waitDeadline() error {
	for {
		c.mu.Lock()
		deadline, closed := c.readDeadline, c.closed
		c.mu.Unlock()
		if closed {
			return net.ErrClosed
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.ErrDeadlineExceeded}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *faultConn) SetDeadline(t time.Time) error {
	c.setReadDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *faultConn) SetReadDeadline(t time.Time) error {
	c.setReadDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *faultConn) setReadDeadline(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDeadline = t
}

func (c *faultConn) Write(p []byte) (int, error) {
	q := c.n.allow(dirWrite, p)
	switch Fault(c.state.Load()) {
	case Cut:
		return 0, c.reset("write")
	case Stall:
		return len(p), nil
	}
	k, err := c.Conn.Write(q)
	c.n.spent(dirWrite, k)
	if err != nil {
		if Fault(c.state.Load()) == Cut {
			err = c.reset("write")
		}
		return k, err
	}
	if k < len(p) { // the budget ran out within p
		switch Fault(c.state.Load()) {
		case Stall:
			return len(p), nil
		case Cut:
			return k, c.reset("write")
		}
	}
	return k, nil
}

func (c *faultConn) Close() error {
	c.n.forget(c)
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.Conn.Close()
}
