package s3test

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections from its own 127.0.0.1 address to a target
// and can cut them after a given number of bytes, to test how a client
// survives a connection that dies in the middle of an upload or a download.
// Its methods are safe for concurrent use.
type Proxy struct {
	// Addr is the proxy's address (host:port); connect to it instead of the target.
	Addr string

	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	up     int64 // bytes client to server before the cut; < 0: no cut
	down   int64 // bytes server to client before the cut; < 0: no cut
	cuts   int   // connections cut so far
	closed bool  // Close was called
}

// NewProxy starts a proxy to target (host:port). It is closed at the end of tb.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("s3test: proxy: %v", err)
	}
	p := &Proxy{
		Addr:   ln.Addr().String(),
		target: target,
		ln:     ln,
		conns:  make(map[net.Conn]struct{}),
		up:     -1,
		down:   -1,
	}
	p.wg.Go(p.accept)
	tb.Cleanup(p.Close)
	return p
}

// CutUpload arms a fault: the connection that carries the next n bytes from
// client to server (request headers included) is closed, both ways, right
// after them. The fault fires once.
func (p *Proxy) CutUpload(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = n
}

// CutDownload is CutUpload for bytes from server to client.
func (p *Proxy) CutDownload(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = n
}

// Disarm removes any fault that has not fired yet.
func (p *Proxy) Disarm() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up, p.down = -1, -1
}

// Cuts returns how many connections the proxy has cut.
func (p *Proxy) Cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() {
	_ = p.ln.Close() // ends accept
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		if !p.track(client, server) {
			return
		}
		p.wg.Go(func() { p.serve(client, server) })
	}
}

// track registers the connections of a pair, or closes them and reports
// false if the proxy is closing.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// serve copies both ways until both directions end, then closes the pair.
func (p *Proxy) serve(client, server net.Conn) {
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(client, server, &p.up) })
	wg.Go(func() { p.pipe(server, client, &p.down) })
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range []net.Conn{client, server} {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// pipe copies from src to dst, spending the budget *left (guarded by p.mu).
// When src ends it half-closes dst; when the budget runs out or a
// connection fails it closes both, which also ends the other direction.
func (p *Proxy) pipe(src, dst net.Conn, left *int64) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunk, cut := p.spend(buf[:n], left)
			if _, werr := dst.Write(chunk); werr != nil || cut {
				_ = src.Close()
				_ = dst.Close()
				return
			}
		}
		if errors.Is(err, io.EOF) {
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
				return
			}
		}
		if err != nil {
			_ = src.Close()
			_ = dst.Close()
			return
		}
	}
}

// spend takes chunk's length from the budget and returns what may still be
// forwarded, and whether the connection must then be cut.
func (p *Proxy) spend(chunk []byte, left *int64) ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if *left < 0 {
		return chunk, false
	}
	if int64(len(chunk)) <= *left {
		*left -= int64(len(chunk))
		if *left > 0 {
			return chunk, false
		}
	} else {
		chunk = chunk[:*left]
	}
	*left = -1
	p.cuts++
	return chunk, true
}
