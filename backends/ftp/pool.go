package ftp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/hoard-backup/hoard/backends"
)

// staleAfter is how long a connection may sit in the pool before it is
// checked with a NOOP (servers close idle sessions).
const staleAfter = 10 * time.Second

// errAborted is the read or write error of a connection whose call was
// cancelled.
var errAborted = errors.New("connection aborted")

// pconn is one logged-in control connection with its data connections.
type pconn struct {
	sc        *ftp.ServerConn
	nets      *netSet
	idleSince time.Time
	// broken marks a connection that must not return to the pool (its
	// control channel may be out of step, e.g. after a transfer stopped
	// early).
	broken bool
}

// close drops the connection without a word to the server.
func (c *pconn) close() { c.nets.closeAll() }

// quit says goodbye and closes the connection.
func (c *pconn) quit() {
	_ = c.sc.Quit() // the connection goes anyway
	c.nets.closeAll()
}

// netSet holds the network connections of one pconn (control and data), so
// that a cancelled call can interrupt whatever blocks.
type netSet struct {
	mu      sync.Mutex
	conns   map[*deadlineConn]struct{}
	aborted bool
	// data is the latest TLS data connection (one transfer at a time).
	data *tlsDataConn
}

func newNetSet() *netSet { return &netSet{conns: make(map[*deadlineConn]struct{})} }

// add registers c; it returns false if the set is aborted.
func (s *netSet) add(c *deadlineConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aborted {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *netSet) remove(c *deadlineConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// abort makes every pending and future read and write fail at once.
func (s *netSet) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.aborted = true
	for c := range s.conns {
		_ = c.Conn.SetDeadline(time.Unix(1, 0)) // in the past: wakes blocked calls
	}
}

// hardCloseData makes the closing of the current TLS data connection
// abrupt: no close_notify, no waiting for the server's, which would read
// the rest of a transfer stopped early.
func (s *netSet) hardCloseData() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data != nil {
		s.data.hard = true
	}
}

func (s *netSet) isAborted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.aborted
}

// closeAll closes every connection.
func (s *netSet) closeAll() {
	s.mu.Lock()
	conns := s.conns
	s.conns = make(map[*deadlineConn]struct{})
	s.aborted = true
	s.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close() // dropping the connection; nothing to report
	}
}

// arm sets a fresh deadline on c unless the set is aborted.
func (s *netSet) arm(c *deadlineConn, read bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aborted {
		return errAborted
	}
	t := time.Now().Add(c.timeout)
	if read {
		return c.Conn.SetReadDeadline(t)
	}
	return c.Conn.SetWriteDeadline(t)
}

// deadlineConn sets a fresh deadline before every read and write, so that a
// server that stops answering fails the call instead of hanging it.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
	set     *netSet
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if err := c.set.arm(c, true); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.set.arm(c, false); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *deadlineConn) Close() error {
	c.set.remove(c)
	return c.Conn.Close()
}

// closeWait bounds how long closing a TLS data connection waits for the
// server's goodbye.
const closeWait = 5 * time.Second

// tlsDataConn is a TLS data connection that closes gracefully: it sends
// close_notify and reads until the server's, before closing the socket.
// Closing a socket with unread data in it (TLS 1.3 session tickets, which
// an upload never reads) makes the kernel send a reset, and the server then
// drops the end of the upload (vsftpd: 426 Failure reading network stream).
type tlsDataConn struct {
	*tls.Conn
	raw  *deadlineConn
	hard bool // close the socket at once (see netSet.hardCloseData)
}

func (c *tlsDataConn) Close() error {
	if c.hard {
		return c.raw.Close()
	}
	c.raw.timeout = min(c.raw.timeout, closeWait) // only this goroutine uses c now
	if c.Conn.CloseWrite() == nil {
		_, _ = io.Copy(io.Discard, c.Conn) // until the server's close_notify, EOF or the deadline
	}
	return c.Conn.Close()
}

// loadTLS returns the TLS configuration for cfg, or nil without TLS.
func loadTLS(cfg Config) (*tls.Config, error) {
	if !cfg.TLS {
		return nil, nil
	}
	tc := &tls.Config{
		ServerName:         cfg.Host,
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(4 * cfg.Connections), // servers may require data connections to resume the session
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ftp: open: CA file: %w (%w)", err, backends.ErrPermanent)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ftp: open: CA file %s holds no PEM certificate (%w)", cfg.CAFile, backends.ErrPermanent)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// connect dials, logs in and returns a new connection. ctx bounds the dial
// and login only.
func (b *Backend) connect(ctx context.Context) (*pconn, error) {
	nets := newNetSet()
	addr := net.JoinHostPort(b.cfg.Host, strconv.Itoa(b.cfg.Port))
	control, controlCtx := true, ctx // ftp.Dial dials the control connection synchronously
	dial := func(network, address string) (net.Conn, error) {
		dctx := context.Background() // data connections: bounded by the timeout
		if control {
			dctx = controlCtx
		}
		raw, err := b.rawDial(dctx, network, address)
		if err != nil {
			return nil, err
		}
		dc := &deadlineConn{Conn: raw, timeout: b.cfg.Timeout, set: nets}
		if !nets.add(dc) {
			_ = raw.Close()
			return nil, errAborted
		}
		if !control && b.tlsConfig != nil {
			tc := &tlsDataConn{Conn: tls.Client(dc, b.tlsConfig), raw: dc} // PROT P: data connections use TLS too
			nets.mu.Lock()
			nets.data = tc
			nets.mu.Unlock()
			return tc, nil
		}
		control = false
		return dc, nil
	}
	opts := []ftp.DialOption{ftp.DialWithDialFunc(dial)}
	if b.tlsConfig != nil {
		opts = append(opts, ftp.DialWithExplicitTLS(b.tlsConfig))
	}
	stop := context.AfterFunc(ctx, nets.abort)
	defer stop()
	sc, err := ftp.Dial(addr, opts...)
	controlCtx = nil // the connection does not keep ctx
	if err != nil {
		nets.closeAll()
		return nil, b.connectFail(ctx, "connect to "+addr, err)
	}
	user, pass := b.cfg.User, b.cfg.Password
	if user == "" {
		user, pass = "anonymous", "anonymous"
	}
	if err := sc.Login(user, pass); err != nil {
		nets.closeAll()
		return nil, b.connectFail(ctx, "log in to "+addr+" as "+user, err)
	}
	return &pconn{sc: sc, nets: nets}, nil
}

// rawDial opens a TCP connection with the configured dialer.
func (b *Backend) rawDial(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	if b.cfg.Dial != nil {
		return b.cfg.Dial(ctx, network, addr)
	}
	d := net.Dialer{KeepAlive: b.cfg.Timeout / 3}
	return d.DialContext(ctx, network, addr)
}

// connectFail translates an error of connecting or logging in.
func (b *Backend) connectFail(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", op, ctxErr)
	}
	var certErr *tls.CertificateVerificationError
	code := replyCode(err)
	switch {
	case code == 530 || code == 532:
		return fmt.Errorf("%s: %w (%w)", op, err, backends.ErrPermanent)
	case code == 534 || code == 500 && b.tlsConfig != nil:
		return fmt.Errorf("%s: the server refuses TLS: %w (%w)", op, err, backends.ErrPermanent)
	case errors.As(err, &certErr):
		return fmt.Errorf("%s: %w (%w)", op, err, backends.ErrPermanent)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// get takes a connection from the pool, or makes one; at most
// Config.Connections are in use at once.
func (b *Backend) get(ctx context.Context) (*pconn, error) {
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			<-b.slots
			return nil, errClosed
		}
		var c *pconn
		if n := len(b.idle); n > 0 {
			c, b.idle = b.idle[n-1], b.idle[:n-1]
		}
		b.mu.Unlock()
		if c == nil {
			break
		}
		if time.Since(c.idleSince) < staleAfter {
			return c, nil
		}
		if err := c.sc.NoOp(); err == nil {
			return c, nil
		}
		c.close()
	}
	c, err := b.connect(ctx)
	if err != nil {
		<-b.slots
		return nil, err
	}
	return c, nil
}

// put returns c to the pool after a call that ended with err, or drops it
// if it is broken. A connection that failed at the network level takes the
// idle ones with it: they most likely share its fate.
func (b *Backend) put(c *pconn, err error) {
	defer func() { <-b.slots }()
	if isConnError(err) || c.nets.isAborted() {
		c.close()
		b.dropIdle()
		return
	}
	if c.broken {
		c.close()
		return
	}
	c.idleSince = time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		c.close() // Close has run
		return
	}
	b.idle = append(b.idle, c)
}

// dropIdle closes the idle connections.
func (b *Backend) dropIdle() {
	b.mu.Lock()
	idle := b.idle
	b.idle = nil
	b.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// withConn runs fn on a pooled connection and returns it to the pool. A
// cancelled ctx interrupts fn's network calls (the connection is then
// dropped) and is reported in the error.
func (b *Backend) withConn(ctx context.Context, fn func(c *pconn) error) error {
	c, err := b.get(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, c.nets.abort)
	err = fn(c)
	if !stop() {
		c.broken = true // abort runs, or will: the connection is spent
		if err != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
	}
	b.put(c, err)
	return err
}

// replyCode returns the FTP reply code in err, or 0.
func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// isConnError reports whether err means that the connection is gone or out
// of step, so that it must not be used again.
func isConnError(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	var pe textproto.ProtocolError
	return replyCode(err) == 421 || // service closing the control connection
		errors.As(err, &ne) ||
		errors.As(err, &pe) ||
		errors.Is(err, errAborted) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}
