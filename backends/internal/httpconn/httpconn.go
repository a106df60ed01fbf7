// Package httpconn makes HTTP transports whose connections fail when
// nothing moves on them, for the backends that speak HTTP (S3, Dropbox).
package httpconn

import (
	"context"
	"net"
	"net/http"
	"time"
)

// NewTransport returns an HTTP transport like base whose connections are
// dialled with dial (a net.Dialer if nil) and fail when nothing moves on
// them for timeout.
func NewTransport(base *http.Transport, dial func(ctx context.Context, network, addr string) (net.Conn, error), timeout time.Duration) *http.Transport {
	t := base.Clone()
	if dial == nil {
		d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: c, timeout: timeout}, nil
	}
	t.DialTLSContext = nil // TLS goes over DialContext's connections
	t.TLSHandshakeTimeout = timeout
	// Close idle connections before their deadline does.
	if t.IdleConnTimeout == 0 || t.IdleConnTimeout > timeout/2 {
		t.IdleConnTimeout = timeout / 2
	}
	return t
}

// idleConn fails reads and writes once nothing has moved on the connection
// for timeout. Every completed read or write pushes both deadlines forward:
// an upload during which the server is silent goes on while the body flows,
// and a server that stops reading or answering fails the request instead
// of hanging it.
type idleConn struct {
	net.Conn
	timeout time.Duration
}

func (c *idleConn) touch() {
	_ = c.Conn.SetDeadline(time.Now().Add(c.timeout)) // a closed conn fails the I/O anyway
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.touch()
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.touch()
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}
