package sftp

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hoard-backup/hoard/backends"
)

// SFTP extensions the backend uses when the server offers them.
const (
	extPosixRename = "posix-rename@openssh.com"
	extFsync       = "fsync@openssh.com"
	extStatVFS     = "statvfs@openssh.com"
)

// conn is one SSH connection with its SFTP session. It is dead once done is
// closed; a dead conn fails every request and is replaced by the next call.
type conn struct {
	ssh  *ssh.Client
	sftp *sftp.Client

	posixRename, fsync, statVFS bool

	done chan struct{}
	once sync.Once
}

// kill closes the connection; it is safe to call more than once.
func (c *conn) kill() {
	c.once.Do(func() {
		close(c.done)
		_ = c.sftp.Close() // the connection is going away; errors say nothing new
		_ = c.ssh.Close()
	})
}

// alive reports whether kill has not been called.
func (c *conn) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// auth holds what a login needs, read once by Open.
type auth struct {
	user      string
	signers   []ssh.Signer
	password  string
	useAgent  bool
	hostKeys  ssh.HostKeyCallback
	knownFile string
}

// loadAuth reads the key file and known_hosts file that cfg names.
func loadAuth(cfg Config) (*auth, error) {
	a := &auth{user: cfg.User, password: cfg.Password, useAgent: cfg.UseAgent}
	if a.user == "" {
		a.user = currentUser()
		if a.user == "" {
			return nil, errors.New("sftp: open: no user given and the current user is unknown")
		}
	}
	home, _ := os.UserHomeDir() // only for defaults; checked where used
	switch {
	case cfg.KeyFile != "":
		s, err := readKey(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("sftp: open: %w (%w)", err, backends.ErrPermanent)
		}
		a.signers = append(a.signers, s)
	case !cfg.UseAgent && cfg.Password == "" && home != "":
		// As ssh does: the usual identity files, skipping those that are
		// missing or need a passphrase.
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			if s, err := readKey(filepath.Join(home, ".ssh", name)); err == nil {
				a.signers = append(a.signers, s)
			}
		}
	}
	if len(a.signers) == 0 && !a.useAgent && a.password == "" {
		return nil, fmt.Errorf("sftp: open: no way to log in: set a key file (%s), an agent (%s) or a password (%s) (%w)",
			EnvKeyFile, EnvAgent, EnvPassword, backends.ErrPermanent)
	}
	a.knownFile = cfg.KnownHostsFile
	if a.knownFile == "" {
		if home == "" {
			return nil, fmt.Errorf("sftp: open: no known_hosts file given and no home folder (%w)", backends.ErrPermanent)
		}
		a.knownFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	cb, err := knownhosts.New(a.knownFile)
	if errors.Is(err, fs.ErrNotExist) {
		cb = func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} } // nothing is known
	} else if err != nil {
		return nil, fmt.Errorf("sftp: open: known_hosts file %s: %w (%w)", a.knownFile, err, backends.ErrPermanent)
	}
	a.hostKeys = cb
	return a, nil
}

// currentUser returns the name of the user running hoard, or "".
func currentUser() string {
	for _, v := range []string{"USER", "LOGNAME"} {
		if u := os.Getenv(v); u != "" {
			return u
		}
	}
	return ""
}

// readKey parses a private key file.
func readKey(name string) (ssh.Signer, error) {
	pem, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	s, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("key file %s is protected by a passphrase: load it into an ssh-agent instead", name)
	}
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", name, err)
	}
	return s, nil
}

// hostKeyError is the error of an unknown or changed host key.
type hostKeyError struct {
	addr, knownFile string
	key             ssh.PublicKey
	want            []knownhosts.KnownKey // empty: unknown host
}

func (e *hostKeyError) Error() string {
	fp := e.key.Type() + " " + ssh.FingerprintSHA256(e.key)
	if len(e.want) > 0 {
		return fmt.Sprintf("host key of %s (%s) does not match the one in %s:%d: the server's key changed, "+
			"or someone is intercepting the connection; if the change is expected, replace that line",
			e.addr, fp, e.want[0].Filename, e.want[0].Line)
	}
	host, port, _ := net.SplitHostPort(e.addr)
	scan := "ssh-keyscan"
	if port != "22" {
		scan += " -p " + port
	}
	return fmt.Sprintf("host key of %s is not in %s: it is %s; check this fingerprint with the server's administrator, "+
		"then add the key with: %s %s >> %s (or set %s to a file that holds it)",
		e.addr, e.knownFile, fp, scan, host, e.knownFile, EnvKnownHosts)
}

// hostKeyCallback checks host keys against a's known_hosts and returns
// hostKeyError for unknown and changed keys.
func (a *auth) hostKeyCallback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := a.hostKeys(hostname, remote, key)
	var kerr *knownhosts.KeyError
	if errors.As(err, &kerr) {
		return &hostKeyError{addr: hostname, knownFile: a.knownFile, key: key, want: kerr.Want}
	}
	return err
}

// hostKeyAlgorithms returns the host key algorithms of the keys known for
// addr, so that the server is asked for a key that can be checked, or nil
// (any algorithm) if none is known.
func (a *auth) hostKeyAlgorithms(addr string, remote net.Addr) []string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil
	}
	var kerr *knownhosts.KeyError
	if !errors.As(a.hostKeys(addr, remote, probe), &kerr) {
		return nil
	}
	var algos []string
	seen := make(map[string]bool)
	for _, k := range kerr.Want {
		t := k.Key.Type()
		names := []string{t}
		if t == ssh.KeyAlgoRSA {
			names = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				algos = append(algos, n)
			}
		}
	}
	return algos
}

// dial opens a new connection and its SFTP session. ctx bounds the dial and
// handshake only; the connection does not keep it.
func (b *Backend) dial(ctx context.Context) (*conn, error) {
	addr := net.JoinHostPort(b.cfg.Host, strconv.Itoa(b.cfg.Port))
	dialFn := b.cfg.Dial
	if dialFn == nil {
		d := &net.Dialer{Timeout: b.timeout, KeepAlive: b.timeout / 3}
		dialFn = d.DialContext
	}
	raw, err := dialFn(ctx, "tcp", addr)
	if err != nil {
		return nil, b.connectFail(ctx, err)
	}
	nc := &deadlineConn{Conn: raw, timeout: b.timeout}
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	c, err := b.handshake(nc, addr)
	if !stop() {
		if c != nil {
			c.kill()
		} else {
			_ = raw.Close()
		}
		return nil, b.connectFail(ctx, ctx.Err())
	}
	if err != nil {
		_ = raw.Close()
		return nil, b.connectFail(ctx, err)
	}
	return c, nil
}

// handshake logs in over nc and starts the SFTP session.
func (b *Backend) handshake(nc net.Conn, addr string) (*conn, error) {
	methods := []ssh.AuthMethod{}
	signers := b.auth.signers
	if b.auth.useAgent {
		if sock := os.Getenv(EnvAgent); sock != "" {
			ac, err := net.DialTimeout("unix", sock, b.timeout)
			if err != nil {
				return nil, fmt.Errorf("ssh agent at %s: %w", sock, err)
			}
			defer func() { _ = ac.Close() }() // only needed to sign the login
			as, err := agent.NewClient(ac).Signers()
			if err != nil {
				return nil, fmt.Errorf("ssh agent: %w", err)
			}
			signers = append(append([]ssh.Signer(nil), signers...), as...)
		}
	}
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
	}
	if b.auth.password != "" {
		methods = append(methods, ssh.Password(b.auth.password))
	}
	config := &ssh.ClientConfig{
		User:              b.auth.user,
		Auth:              methods,
		HostKeyCallback:   b.auth.hostKeyCallback,
		HostKeyAlgorithms: b.auth.hostKeyAlgorithms(addr, nc.RemoteAddr()),
		Timeout:           b.timeout,
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, config)
	if err != nil {
		return nil, err
	}
	client := ssh.NewClient(sc, chans, reqs)
	sc2, err := sftp.NewClient(client,
		sftp.UseConcurrentWrites(true),
		sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("start sftp: %w", err)
	}
	c := &conn{ssh: client, sftp: sc2, done: make(chan struct{})}
	_, c.posixRename = sc2.HasExtension(extPosixRename)
	_, c.fsync = sc2.HasExtension(extFsync)
	_, c.statVFS = sc2.HasExtension(extStatVFS)
	return c, nil
}

// start starts c's two goroutines, which end when c dies. The caller holds
// b.mu and has checked that b is not closed, so Close waits for them.
func (b *Backend) start(c *conn) {
	b.wg.Add(2)
	go func() {
		defer b.wg.Done()
		_ = c.ssh.Wait() // returns when the connection ends, for whatever reason
		c.kill()
	}()
	go func() {
		defer b.wg.Done()
		b.keepalive(c)
	}()
}

// keepalive sends a request every third of the timeout until c dies. A
// server that stops answering trips the read deadline of deadlineConn,
// which kills c; so does a failed request.
func (b *Backend) keepalive(c *conn) {
	t := time.NewTicker(b.timeout / 3)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if _, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil); err != nil {
				c.kill()
				return
			}
		}
	}
}

// connectFail translates an error of dialing or logging in.
func (b *Backend) connectFail(ctx context.Context, err error) error {
	addr := net.JoinHostPort(b.cfg.Host, strconv.Itoa(b.cfg.Port))
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("connect to %s: %w", addr, ctxErr)
	}
	var hk *hostKeyError
	if errors.As(err, &hk) {
		return fmt.Errorf("connect: %w (%w)", hk, backends.ErrPermanent)
	}
	msg := err.Error()
	if strings.Contains(msg, "unable to authenticate") {
		return fmt.Errorf("log in to %s as %s: %w (%w)", addr, b.auth.user, err, backends.ErrPermanent)
	}
	if strings.Contains(msg, "subsystem request failed") {
		return fmt.Errorf("%s has no SFTP subsystem: %w (%w)", addr, err, backends.ErrPermanent)
	}
	return fmt.Errorf("connect to %s: %w", addr, err)
}

// deadlineConn sets a fresh deadline before every read and write, so that a
// peer that stops answering fails the connection instead of hanging it.
// Keep-alives keep a healthy idle connection talking.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// isConnError reports whether err means the connection is gone.
func isConnError(err error) bool {
	var ne net.Error
	return errors.Is(err, sftp.ErrSSHFxConnectionLost) ||
		errors.Is(err, sftp.ErrSSHFxNoConnection) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.As(err, &ne)
}
