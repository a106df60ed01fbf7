package ftp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	"github.com/jlaffaye/ftp"

	"github.com/hoard-backup/hoard/backends"
)

// tmpMarker separates a file's final name from the random suffix of its temp file.
const tmpMarker = ".tmp-"

var errClosed = fmt.Errorf("backend is closed (%w)", backends.ErrPermanent)

// Backend is a repository in a folder of an FTP server. It keeps a pool of
// logged-in connections, each carrying one transfer at a time. All methods
// are safe for concurrent use.
type Backend struct {
	cfg       Config
	root      string // absolute
	tlsConfig *tls.Config

	slots chan struct{} // one per connection in use
	mu    sync.Mutex
	idle  []*pconn
	// closed is set by Close; connections in use are closed when returned.
	closed bool
}

var (
	_ backends.Backend = (*Backend)(nil)
	_ backends.Creator = (*Backend)(nil)
)

// Open connects to the server that cfg names and logs in, to check the
// credentials and learn the login folder. The repository folder need not
// exist yet (Create makes it). ctx bounds the connection only; the backend
// does not keep it.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ftp: open: %w", err)
	}
	if cfg.Host == "" || cfg.Path == "" {
		return nil, fmt.Errorf("ftp: open %s: host and path are required", cfg.Redacted())
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Connections <= 0 {
		cfg.Connections = DefaultConnections
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	tc, err := loadTLS(cfg)
	if err != nil {
		return nil, err
	}
	b := &Backend{cfg: cfg, tlsConfig: tc, slots: make(chan struct{}, cfg.Connections)}
	c, err := b.connect(ctx)
	if err != nil {
		return nil, b.scrub(fmt.Errorf("ftp: open: %w", err))
	}
	b.root = path.Clean(cfg.Path)
	if !path.IsAbs(b.root) {
		wd, err := c.sc.CurrentDir()
		if err != nil {
			c.close()
			return nil, b.scrub(fmt.Errorf("ftp: open: PWD: %w", err))
		}
		b.root = path.Join(wd, b.root)
	}
	b.slots <- struct{}{}
	b.put(c, nil)
	return b, nil
}

// Location returns the repository's location without the password.
func (b *Backend) Location() string { return b.cfg.Redacted() }

// Properties reports the pool size as Connections. Replacing a file is a
// rename onto it, which most servers (vsftpd, proftpd) do atomically but
// FTP does not promise, so HasAtomicReplace is false.
func (b *Backend) Properties() backends.Properties {
	return backends.Properties{Connections: b.cfg.Connections}
}

// Close logs out of the idle connections; connections in use are closed
// when their call ends.
func (b *Backend) Close() error {
	b.mu.Lock()
	idle := b.idle
	b.idle, b.closed = nil, true
	b.mu.Unlock()
	for _, c := range idle {
		c.quit()
	}
	return nil
}

// Create makes the repository folder, its missing parents and its
// subfolders. The pack shards (data/00 to data/ff) are made by the first
// Save into each: every folder costs List a transfer, so a repository only
// has those it uses. It returns an error wrapping backends.ErrExist if the
// folder already holds a config.
func (b *Backend) Create(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ftp: create: %w", err)
	}
	var dirs []string
	for _, t := range backends.FileTypes() {
		if t != backends.ConfigFile {
			dirs = append(dirs, path.Join(b.root, string(t)))
		}
	}
	err := b.withConn(ctx, func(c *pconn) error {
		if _, err := c.sc.FileSize(path.Join(b.root, string(backends.ConfigFile))); err == nil {
			return fmt.Errorf("%s: %w", b.Location(), backends.ErrExist)
		} else if replyCode(err) != 550 {
			return err
		}
		// Make the parents, ignoring refusals (they may exist, or be out
		// of reach above a chroot); then the folder itself must exist.
		parts := strings.Split(strings.Trim(b.root, "/"), "/")
		for i := range parts[:len(parts)-1] {
			_ = c.sc.MakeDir("/" + path.Join(parts[:i+1]...)) // checked below, through the folder itself
		}
		if err := b.mkdir(c, b.root); err != nil {
			return err
		}
		for _, dir := range dirs {
			if err := b.mkdir(c, dir); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return b.fail("create", err)
	}
	return nil
}

// mkdir makes dir unless it exists. FTP cannot set modes: the server's
// umask decides them.
func (b *Backend) mkdir(c *pconn, dir string) error {
	err := c.sc.MakeDir(dir)
	if err == nil || replyCode(err) == 0 {
		return err
	}
	// Servers refuse to make an existing folder; see if it is there.
	if c.sc.ChangeDir(dir) == nil {
		return nil
	}
	return fmt.Errorf("MKD %s: %w", dir, err)
}

// Save uploads rd to a temp file beside h's final name, checks the byte
// count and the size the server reports, and renames it into place.
// Missing folders below the repository folder are created.
func (b *Backend) Save(ctx context.Context, h backends.Handle, rd backends.RewindReader) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ftp: save %s: %w", h, err)
	}
	name, err := b.filename(h)
	if err != nil {
		return fmt.Errorf("ftp: save: %w", err)
	}
	want := rd.Length()
	if want < 0 {
		return fmt.Errorf("ftp: save %s: reader has negative length %d", h, want)
	}
	tmp := name + tmpMarker + randomSuffix()
	err = b.withConn(ctx, func(c *pconn) error {
		// Read at most one byte more than promised, to detect a long
		// reader without sending all of it.
		src := backends.NewSourceReader(ctx, io.LimitReader(rd, want+1), want+1)
		err := c.sc.Stor(tmp, src)
		if err != nil && src.N() == 0 && src.Err() == nil && replyCode(err) >= 500 {
			// The folder may be missing: make it and try once more.
			if b.mkdirsFor(c, h) == nil {
				err = c.sc.Stor(tmp, src)
			}
		}
		switch {
		case src.Err() != nil:
			err = src.Err() // the reader's own error (or ctx's), as is
		case err == nil && src.N() != want:
			err = fmt.Errorf("reader yielded %d bytes, its Length is %d", src.N(), want)
		case err == nil:
			err = b.check(c, tmp, want)
		}
		if err == nil {
			err = b.rename(c, tmp, name)
		}
		if err != nil && !isConnError(err) && !c.nets.isAborted() {
			_ = c.sc.Delete(tmp) // best effort; temp files are never listed
		}
		return err
	})
	if err != nil {
		return b.saveFail(h, err)
	}
	return nil
}

// check compares the size of the uploaded tmp with want.
func (b *Backend) check(c *pconn, tmp string, want int64) error {
	size, err := c.sc.FileSize(tmp)
	if err != nil {
		return fmt.Errorf("SIZE of the upload: %w", err)
	}
	if size != want {
		return fmt.Errorf("server holds %d bytes of the %d sent", size, want)
	}
	return nil
}

// rename moves tmp onto name. A server that refuses to rename onto an
// existing file gets it removed first.
func (b *Backend) rename(c *pconn, tmp, name string) error {
	err := c.sc.Rename(tmp, name)
	if err == nil || replyCode(err) == 0 {
		return err
	}
	if _, serr := c.sc.FileSize(name); serr != nil {
		return err // not in the way: the rename failed for another reason
	}
	if derr := c.sc.Delete(name); derr != nil {
		return err
	}
	return c.sc.Rename(tmp, name)
}

// mkdirsFor makes the folders below the repository folder that h lives in.
func (b *Backend) mkdirsFor(c *pconn, h backends.Handle) error {
	for _, d := range backends.Dirs(h) {
		if err := b.mkdir(c, path.Join(b.root, d)); err != nil {
			return err
		}
	}
	return nil
}

// Load calls fn with a reader of the requested range of h, downloaded with
// REST and RETR. A read of the whole rest of the file asks SIZE first; a
// ranged read does not (one round trip less per pack segment) and asks only
// when it finds no bytes at all, to tell a range beyond the end (ErrRange)
// from a short file. A transfer that fn stops before the end of the file is
// stopped by closing its data connection (see stop); the control
// connection goes back to the pool.
func (b *Backend) Load(ctx context.Context, h backends.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ftp: load %s: %w", h, err)
	}
	name, err := b.filename(h)
	if err != nil {
		return fmt.Errorf("ftp: load: %w", err)
	}
	if length < 0 || offset < 0 {
		return fmt.Errorf("ftp: load %s: length %d, offset %d: %w", h, length, offset, backends.ErrRange)
	}
	op := "load " + h.String()
	var (
		called bool
		fnErr  error
	)
	err = b.withConn(ctx, func(c *pconn) error {
		n := int64(length)
		if length == 0 {
			size, err := c.sc.FileSize(name)
			if err != nil {
				return err
			}
			if offset > size {
				return fmt.Errorf("offset %d beyond size %d: %w", offset, size, backends.ErrRange)
			}
			n = size - offset
			if n == 0 {
				// Nothing to transfer.
				called, fnErr = true, fn(strings.NewReader(""))
				return nil
			}
		}
		resp, err := c.sc.RetrFrom(name, uint64(offset))
		if err != nil {
			if code := replyCode(err); code != 0 && length > 0 {
				// Some servers refuse a REST beyond the end at RETR,
				// some with 550, which is also a missing file: SIZE
				// tells them apart (a pack that exists but is short is
				// ErrRange, not ErrNotExist, which would mark it lost).
				return b.beyond(c, name, offset, err)
			}
			return err
		}
		tr := &transferReader{r: backends.ContextReader(ctx, resp), op: op}
		called, fnErr = true, fn(backends.ExactReader(tr, n))
		stop(resp, c, tr)
		if tr.read == 0 && tr.eof && !c.broken && errors.Is(fnErr, io.ErrUnexpectedEOF) {
			// No bytes at all: the range may start beyond the end.
			if err := b.beyond(c, name, offset, nil); err != nil {
				fnErr = fmt.Errorf("ftp: %s: %w", op, err)
			}
		}
		return tr.err // a failed read condemns the pool's idle connections too
	})
	if called {
		return b.scrub(fnErr)
	}
	return b.fail(op, err)
}

// beyond returns an ErrRange error if offset lies beyond the end of name,
// else err.
func (b *Backend) beyond(c *pconn, name string, offset int64, err error) error {
	size, serr := c.sc.FileSize(name)
	if serr == nil && offset > size {
		return fmt.Errorf("offset %d beyond size %d: %w", offset, size, backends.ErrRange)
	}
	if serr != nil && err == nil {
		return serr
	}
	return err
}

// probeLimit is how many unread bytes stop reads past what fn took, to see
// whether the transfer ends there anyway (a range that ends at the end of
// the file) and can close cleanly.
const probeLimit = 32 << 10

// stop ends a download that tr read from. A transfer read to its end is
// closed and its reply (226) read. One that fn left early cannot be stopped
// cleanly by FTP: its data connection is closed at once, the server answers
// on the control connection that the transfer failed (vsftpd: 426
// "Failure writing network stream"), and a NOOP checks that the control
// connection is in step before it returns to the pool. That costs two round
// trips, where dropping the connection, as before, cost a new login (a
// TCP connection, a TLS handshake, USER, PASS and the server's own
// authentication) for every pack segment that ends before its pack does.
// A failed read, or any other reply, marks the connection broken.
func stop(resp *ftp.Response, c *pconn, tr *transferReader) {
	if tr.err != nil {
		c.broken = true
		return
	}
	if !tr.eof {
		if _, err := io.CopyN(io.Discard, tr, probeLimit); err != nil && !errors.Is(err, io.EOF) {
			c.broken = true
			return
		}
	}
	if tr.eof {
		if err := resp.Close(); err != nil {
			c.broken = true
		}
		return
	}
	c.nets.hardCloseData()
	err := resp.Close()
	switch {
	case err == nil:
		return // 226: the server had sent it all
	case replyCode(err) == 0:
		c.broken = true // no reply
	case c.sc.NoOp() != nil:
		// Any reply of failure will do (vsftpd 426, others 451 or
		// 550), if it is the only one: a second (226) puts the NOOP's
		// reply out of step.
		c.broken = true
	}
}

// Stat returns the size of h.
func (b *Backend) Stat(ctx context.Context, h backends.Handle) (backends.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return backends.FileInfo{}, fmt.Errorf("ftp: stat %s: %w", h, err)
	}
	name, err := b.filename(h)
	if err != nil {
		return backends.FileInfo{}, fmt.Errorf("ftp: stat: %w", err)
	}
	var size int64
	err = b.withConn(ctx, func(c *pconn) error {
		size, err = c.sc.FileSize(name)
		return err
	})
	if err != nil {
		return backends.FileInfo{}, b.fail("stat "+h.String(), err)
	}
	return backends.FileInfo{Name: h.Name, Size: size}, nil
}

// Remove deletes h.
func (b *Backend) Remove(ctx context.Context, h backends.Handle) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ftp: remove %s: %w", h, err)
	}
	name, err := b.filename(h)
	if err != nil {
		return fmt.Errorf("ftp: remove: %w", err)
	}
	err = b.withConn(ctx, func(c *pconn) error { return c.sc.Delete(name) })
	if err != nil {
		return b.fail("remove "+h.String(), err)
	}
	return nil
}

// List calls fn for each file of type t. Temp files, names that are not
// valid handles and packs outside their shard are skipped. No connection is
// held while fn runs; pack shards are listed over the pool, ahead of fn.
func (b *Backend) List(ctx context.Context, t backends.FileType, fn func(backends.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ftp: list %s: %w", t, err)
	}
	op := "list " + string(t)
	switch t {
	case backends.ConfigFile:
		var size int64
		err := b.withConn(ctx, func(c *pconn) (err error) {
			size, err = c.sc.FileSize(path.Join(b.root, string(t)))
			return err
		})
		if replyCode(err) == 550 {
			return nil
		}
		if err != nil {
			return b.fail(op, err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("ftp: %s: %w", op, err)
		}
		return fn(backends.FileInfo{Size: size})
	case backends.PackFile:
		return b.listPacks(ctx, fn)
	}
	if err := (backends.Handle{Type: t, Name: "x"}).Valid(); err != nil {
		return fmt.Errorf("ftp: list: %w (%w)", err, backends.ErrPermanent)
	}
	entries, err := b.readDir(ctx, path.Join(b.root, string(t)))
	if err != nil {
		return b.fail(op, err)
	}
	for _, e := range entries {
		if err := listEntry(ctx, t, "", e, fn); err != nil {
			return err
		}
	}
	return nil
}

// listPacks lists the pack shards, up to Connections at once, ahead of fn,
// which is called in the calling goroutine.
func (b *Backend) listPacks(ctx context.Context, fn func(backends.FileInfo) error) error {
	op := "list " + string(backends.PackFile)
	entries, err := b.readDir(ctx, path.Join(b.root, string(backends.PackFile)))
	if err != nil {
		return b.fail(op, err)
	}
	var shards []string
	for _, e := range entries {
		if e.Type == ftp.EntryTypeFolder && backends.IsShard(path.Base(e.Name)) {
			shards = append(shards, path.Base(e.Name))
		}
	}
	read := func(ctx context.Context, s string) ([]*ftp.Entry, error) {
		e, err := b.readDir(ctx, path.Join(b.root, backends.ShardDir(s)))
		if err != nil {
			return nil, b.fail(op, err)
		}
		return e, nil
	}
	return backends.ListShards(ctx, "ftp", shards, b.cfg.Connections, read, func(s string, entries []*ftp.Entry) error {
		for _, e := range entries {
			if err := listEntry(ctx, backends.PackFile, s, e, fn); err != nil {
				return err
			}
		}
		return nil
	})
}

// readDir lists dir; a missing dir has no entries.
func (b *Backend) readDir(ctx context.Context, dir string) ([]*ftp.Entry, error) {
	var entries []*ftp.Entry
	err := b.withConn(ctx, func(c *pconn) (err error) {
		entries, err = c.sc.List(dir)
		return err
	})
	if replyCode(err) == 550 || replyCode(err) == 450 {
		return nil, nil
	}
	return entries, err
}

// listEntry calls fn for e if it is a complete file with a valid name (in
// the right shard, for packs).
func listEntry(ctx context.Context, t backends.FileType, shard string, e *ftp.Entry, fn func(backends.FileInfo) error) error {
	name := path.Base(e.Name)
	if e.Type != ftp.EntryTypeFile || strings.Contains(name, tmpMarker) || !strings.HasPrefix(name, shard) {
		return nil
	}
	if (backends.Handle{Type: t, Name: name}).Valid() != nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ftp: list %s: %w", t, err)
	}
	return fn(backends.FileInfo{Name: name, Size: int64(e.Size)})
}

// filename returns the path of h (see backends.Path) after checking that h
// is valid.
func (b *Backend) filename(h backends.Handle) (string, error) {
	p, err := backends.Path(h)
	if err != nil {
		return "", err
	}
	return path.Join(b.root, p), nil
}

// fail adds the operation to err and translates the server's reply: 550
// (file unavailable) becomes backends.ErrNotExist; a refused login, a full
// disk and a refused name also match backends.ErrPermanent.
func (b *Backend) fail(op string, err error) error {
	if errors.Is(err, backends.ErrExist) || errors.Is(err, backends.ErrRange) {
		return b.scrub(fmt.Errorf("ftp: %s: %w", op, err))
	}
	if replyCode(err) == 550 {
		return b.scrub(fmt.Errorf("ftp: %s: %w (%w)", op, backends.ErrNotExist, err))
	}
	return b.scrub(permanent("ftp: "+op, err))
}

// saveFail is fail for Save, where 550 is never ErrNotExist: it means the
// repository folder is missing or out of reach, which retrying does not fix.
func (b *Backend) saveFail(h backends.Handle, err error) error {
	op := "ftp: save " + h.String()
	switch replyCode(err) {
	case 550:
		return b.scrub(fmt.Errorf("%s: %w (%w)", op, err, backends.ErrPermanent))
	case 451:
		// "Local error in processing": vsftpd's reply to a full disk, but
		// a transient reply by the protocol, so it is left to retries.
		return b.scrub(fmt.Errorf("%s: the server failed to write the file (is its disk full?): %w", op, err))
	}
	return b.scrub(permanent(op, err))
}

// permanent wraps err with op, marking the errors that retrying cannot fix.
func permanent(op string, err error) error {
	switch replyCode(err) {
	case 530, 532:
		return fmt.Errorf("%s: not logged in: %w (%w)", op, err, backends.ErrPermanent)
	case 452, 552:
		return fmt.Errorf("%s: no space left on the server: %w (%w)", op, err, backends.ErrPermanent)
	case 553:
		return fmt.Errorf("%s: file name not allowed: %w (%w)", op, err, backends.ErrPermanent)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// scrub hides the password in err's message, should a server or a library
// ever repeat it.
func (b *Backend) scrub(err error) error {
	if err == nil || b.cfg.Password == "" || !strings.Contains(err.Error(), b.cfg.Password) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), b.cfg.Password, "xxxxx"), err: err}
}

// redactedError is an error whose message had the password removed. It
// matches what the original matches (errors.Is) but does not unwrap to it.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// randomSuffix returns 16 random hex digits for a temp file name.
func randomSuffix() string {
	var buf [8]byte
	_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(buf[:])
}

// transferReader reads a download: it counts what it read and notes a
// failed read (ctx's included), after which the connection is not reused,
// and puts the operation in front of the error.
type transferReader struct {
	r    io.Reader
	read int64
	eof  bool  // the transfer ended
	err  error // the failed read's error
	op   string
}

func (l *transferReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.read += int64(n)
	if err == nil || errors.Is(err, io.EOF) {
		l.eof = l.eof || err != nil
		return n, err
	}
	l.err = err
	return n, fmt.Errorf("ftp: %s: %w", l.op, err)
}
