package sftp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/sync/errgroup"

	"github.com/hoard-backup/hoard/backends"
)

// Permissions of what the backend creates: private to the SSH user.
const (
	dirMode  os.FileMode = 0o700
	fileMode os.FileMode = 0o600
)

// tmpMarker separates a file's final name from the random suffix of its temp file.
const tmpMarker = ".tmp-"

// listConcurrency is how many pack shards List reads at once.
const listConcurrency = 8

// errNoSpace marks a write that failed because the server's disk is full.
var errNoSpace = errors.New("no space left on the server")

// Backend is a repository in a folder of an SFTP server. It keeps one SSH
// connection, which all calls share (requests are multiplexed), and
// replaces it on the next call once it is lost. All methods are safe for
// concurrent use.
type Backend struct {
	cfg     Config
	root    string
	timeout time.Duration
	auth    *auth

	atomicReplace bool          // the first server offered posix-rename
	dialing       chan struct{} // held while a connection is being made

	mu     sync.Mutex
	cur    *conn // nil, or the last connection made (maybe dead)
	closed bool
	wg     sync.WaitGroup // goroutines of all connections
}

var (
	_ backends.Backend = (*Backend)(nil)
	_ backends.Creator = (*Backend)(nil)
)

// Open connects to the server that cfg names, checks its host key, logs in
// and starts an SFTP session. The repository folder need not exist yet
// (Create makes it). ctx bounds the connection only; the backend does not
// keep it.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sftp: open: %w", err)
	}
	if cfg.Host == "" || cfg.Path == "" {
		return nil, fmt.Errorf("sftp: open %s: host and path are required", cfg.Redacted())
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
	a, err := loadAuth(cfg)
	if err != nil {
		return nil, err
	}
	b := &Backend{
		cfg:     cfg,
		root:    path.Clean(cfg.Path),
		timeout: cfg.Timeout,
		auth:    a,
		dialing: make(chan struct{}, 1),
	}
	c, err := b.client(ctx)
	if err != nil {
		return nil, fmt.Errorf("sftp: open: %w", err)
	}
	b.atomicReplace = c.posixRename
	return b, nil
}

// Location returns the repository's location without credentials.
func (b *Backend) Location() string { return b.cfg.Redacted() }

// Properties reports Config.Connections and atomic replace if the server
// has the posix-rename extension (OpenSSH has).
func (b *Backend) Properties() backends.Properties {
	return backends.Properties{Connections: b.cfg.Connections, HasAtomicReplace: b.atomicReplace}
}

// Close closes the connection and waits for its goroutines.
func (b *Backend) Close() error {
	b.mu.Lock()
	c := b.cur
	b.cur, b.closed = nil, true
	b.mu.Unlock()
	if c != nil {
		c.kill()
	}
	b.wg.Wait()
	return nil
}

// client returns a live connection, making a new one if the last is lost.
func (b *Backend) client(ctx context.Context) (*conn, error) {
	if c, err := b.current(); c != nil || err != nil {
		return c, err
	}
	select {
	case b.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-b.dialing }()
	if c, err := b.current(); c != nil || err != nil {
		return c, err // another call reconnected meanwhile
	}
	c, err := b.dial(ctx)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		c.kill()
		return nil, errClosed
	}
	b.cur = c
	b.start(c)
	return c, nil
}

var errClosed = fmt.Errorf("backend is closed (%w)", backends.ErrPermanent)

// current returns the current connection if it is alive.
func (b *Backend) current() (*conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errClosed
	}
	if b.cur != nil && b.cur.alive() {
		return b.cur, nil
	}
	return nil, nil
}

// Create makes the repository folder, its parents and its subfolders (the
// layout of backends/local: data/00 to data/ff). It returns an error
// wrapping backends.ErrExist if the folder already holds a config.
func (b *Backend) Create(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sftp: create: %w", err)
	}
	c, err := b.client(ctx)
	if err != nil {
		return fmt.Errorf("sftp: create: %w", err)
	}
	config := path.Join(b.root, string(backends.ConfigFile))
	if _, err := c.sftp.Lstat(config); err == nil {
		return fmt.Errorf("sftp: create %s: %w", b.Location(), backends.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return b.fail(c, "create", err)
	}
	if err := b.mkdirAll(c, b.root); err != nil {
		return b.fail(c, "create", err)
	}
	var dirs []string
	for _, t := range backends.FileTypes() {
		if t != backends.ConfigFile {
			dirs = append(dirs, path.Join(b.root, string(t)))
		}
	}
	if err := b.mkdirs(ctx, c, dirs); err != nil {
		return b.fail(c, "create", err)
	}
	dirs = dirs[:0]
	for _, d := range backends.ShardDirs() {
		dirs = append(dirs, path.Join(b.root, d))
	}
	if err := b.mkdirs(ctx, c, dirs); err != nil {
		return b.fail(c, "create", err)
	}
	return nil
}

// mkdirs makes dirs concurrently (their parents must exist).
func (b *Backend) mkdirs(ctx context.Context, c *conn, dirs []string) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, dir := range dirs {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return b.mkdir(c, dir)
		})
	}
	return g.Wait()
}

// mkdirAll makes dir and its missing parents.
func (b *Backend) mkdirAll(c *conn, dir string) error {
	fi, err := c.sftp.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a folder", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if parent := path.Dir(dir); parent != dir && parent != "." && parent != "/" {
		if err := b.mkdirAll(c, parent); err != nil {
			return err
		}
	}
	return b.mkdir(c, dir)
}

// mkdir makes dir, private to the user, unless it exists (which is left as
// it is).
func (b *Backend) mkdir(c *conn, dir string) error {
	err := c.sftp.Mkdir(dir)
	if err != nil {
		// Servers report an existing folder as a generic failure.
		if fi, serr := c.sftp.Stat(dir); serr == nil && fi.IsDir() {
			return nil
		}
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	// SFTP's mkdir takes the server's umask: set the mode explicitly.
	if err := c.sftp.Chmod(dir, dirMode); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return nil
}

// Save writes rd to a temp file beside h's final name, checks its length,
// syncs it if the server can (fsync@openssh.com) and renames it into place.
// Missing folders below the repository folder are created; a missing
// repository folder is an error.
func (b *Backend) Save(ctx context.Context, h backends.Handle, rd backends.RewindReader) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sftp: save %s: %w", h, err)
	}
	name, err := b.filename(h)
	if err != nil {
		return fmt.Errorf("sftp: save: %w", err)
	}
	c, err := b.client(ctx)
	if err != nil {
		return fmt.Errorf("sftp: save %s: %w", h, err)
	}
	tmp := name + tmpMarker + randomSuffix()
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	f, err := c.sftp.OpenFile(tmp, flags)
	if errors.Is(err, fs.ErrNotExist) {
		if err = b.mkdirsFor(c, h); err == nil {
			f, err = c.sftp.OpenFile(tmp, flags)
		}
	}
	if err != nil {
		return b.saveFail(c, h, err)
	}
	if err := b.write(ctx, c, f, rd); err != nil {
		b.removeTemp(c, tmp)
		return b.saveFail(c, h, err)
	}
	if err := b.rename(c, tmp, name); err != nil {
		b.removeTemp(c, tmp)
		return b.saveFail(c, h, err)
	}
	return nil
}

// mkdirsFor makes the folders below the repository folder that h lives in.
func (b *Backend) mkdirsFor(c *conn, h backends.Handle) error {
	for _, d := range backends.Dirs(h) {
		if err := b.mkdir(c, path.Join(b.root, d)); err != nil {
			return err
		}
	}
	return nil
}

// write copies exactly rd.Length() bytes of rd to f, checks the size the
// server holds, syncs and closes f. f is closed even when write fails.
func (b *Backend) write(ctx context.Context, c *conn, f *sftp.File, rd backends.RewindReader) error {
	want := rd.Length()
	err := func() error {
		// Before any data: OpenFile took the server's umask.
		if err := f.Chmod(fileMode); err != nil {
			return err
		}
		if want < 0 {
			return fmt.Errorf("reader has negative length %d", want)
		}
		// Read at most one byte more than promised, to detect a long reader
		// without sending all of it.
		src := backends.NewSourceReader(ctx, io.LimitReader(rd, want+1), want+1)
		_, err := f.ReadFrom(src)
		if src.Err() != nil {
			return src.Err() // the reader's own error (or ctx's), as is
		}
		if err != nil {
			return b.diskFull(c, path.Dir(f.Name()), want, err)
		}
		if src.N() != want {
			return fmt.Errorf("reader yielded %d bytes, its Length is %d", src.N(), want)
		}
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.Size() != want {
			return fmt.Errorf("server holds %d bytes of the %d written", fi.Size(), want)
		}
		if c.fsync {
			if err := f.Sync(); err != nil {
				return b.diskFull(c, path.Dir(f.Name()), want, err)
			}
		}
		return nil
	}()
	if cerr := f.Close(); err == nil && cerr != nil {
		err = b.diskFull(c, path.Dir(f.Name()), want, cerr)
	}
	return err
}

// diskFull returns err, marked with errNoSpace if the server says so or if
// the folder's file system has less than need bytes free. OpenSSH reports a
// full disk as a generic failure; its statvfs extension tells the cause.
func (b *Backend) diskFull(c *conn, dir string, need int64, err error) error {
	if code, ok := statusCode(err); ok && (code == codeNoSpace || code == codeQuotaExceeded) {
		return fmt.Errorf("%w: %w", errNoSpace, err)
	}
	if !c.statVFS || isConnError(err) {
		return err
	}
	st, serr := c.sftp.StatVFS(dir)
	if serr != nil {
		return err
	}
	if free := st.Bavail * st.Frsize; free < uint64(need) {
		return fmt.Errorf("%w (%d bytes free, %d needed): %w", errNoSpace, free, need, err)
	}
	return err
}

// rename moves tmp to name, replacing name. Without posix-rename, SFTP's
// rename fails if name exists, so name is removed first (not atomically).
func (b *Backend) rename(c *conn, tmp, name string) error {
	if c.posixRename {
		return c.sftp.PosixRename(tmp, name)
	}
	err := c.sftp.Rename(tmp, name)
	if err == nil {
		return nil
	}
	if _, serr := c.sftp.Lstat(name); serr != nil {
		return err // the rename failed for another reason
	}
	if rerr := c.sftp.Remove(name); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return err
	}
	return c.sftp.Rename(tmp, name)
}

// removeTemp removes a temp file after a failed Save, if the connection
// still allows. A temp file left behind is never listed.
func (b *Backend) removeTemp(c *conn, tmp string) {
	if c.alive() {
		_ = c.sftp.Remove(tmp) // best effort: see above
	}
}

// Load calls fn with a reader of the requested range of h. Only a read to
// the end of the file stats it first; a ranged read stats it only when it
// finds no bytes at all, to tell a range beyond the end (ErrRange) from a
// short file.
func (b *Backend) Load(ctx context.Context, h backends.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sftp: load %s: %w", h, err)
	}
	name, err := b.filename(h)
	if err != nil {
		return fmt.Errorf("sftp: load: %w", err)
	}
	if length < 0 || offset < 0 {
		return fmt.Errorf("sftp: load %s: length %d, offset %d: %w", h, length, offset, backends.ErrRange)
	}
	c, err := b.client(ctx)
	if err != nil {
		return fmt.Errorf("sftp: load %s: %w", h, err)
	}
	op := "load " + h.String()
	f, err := c.sftp.Open(name)
	if err != nil {
		return b.fail(c, op, err)
	}
	defer func() { _ = f.Close() }() // read-only: nothing to lose
	n := int64(length)
	if length == 0 {
		fi, err := f.Stat()
		if err != nil {
			return b.fail(c, op, err)
		}
		if offset > fi.Size() {
			return fmt.Errorf("sftp: load %s: offset %d beyond size %d: %w", h, offset, fi.Size(), backends.ErrRange)
		}
		n = fi.Size() - offset
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return b.fail(c, op, err)
	}
	cr := &connReader{r: backends.ContextReader(ctx, f), c: c, op: op}
	err = fn(backends.ExactReader(cr, n))
	if !errors.Is(err, io.ErrUnexpectedEOF) || !c.alive() {
		return err
	}
	if cr.read > 0 {
		// The file ended early. pkg/sftp reports a connection the
		// server dropped mid-read as a plain EOF, so this may be one
		// too: the next call gets a fresh connection, at a login's cost.
		c.kill()
		return err
	}
	// A ranged read skips the stat (a round trip per pack segment);
	// nothing at all may mean a range beyond the end.
	fi, serr := f.Stat()
	switch {
	case serr != nil && isConnError(serr):
		c.kill()
	case serr == nil && offset > fi.Size():
		return fmt.Errorf("sftp: load %s: offset %d beyond size %d: %w", h, offset, fi.Size(), backends.ErrRange)
	}
	return err
}

// Stat returns the size of h.
func (b *Backend) Stat(ctx context.Context, h backends.Handle) (backends.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return backends.FileInfo{}, fmt.Errorf("sftp: stat %s: %w", h, err)
	}
	name, err := b.filename(h)
	if err != nil {
		return backends.FileInfo{}, fmt.Errorf("sftp: stat: %w", err)
	}
	c, err := b.client(ctx)
	if err != nil {
		return backends.FileInfo{}, fmt.Errorf("sftp: stat %s: %w", h, err)
	}
	fi, err := c.sftp.Stat(name)
	if err != nil {
		return backends.FileInfo{}, b.fail(c, "stat "+h.String(), err)
	}
	return backends.FileInfo{Name: h.Name, Size: fi.Size()}, nil
}

// Remove deletes h.
func (b *Backend) Remove(ctx context.Context, h backends.Handle) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sftp: remove %s: %w", h, err)
	}
	name, err := b.filename(h)
	if err != nil {
		return fmt.Errorf("sftp: remove: %w", err)
	}
	c, err := b.client(ctx)
	if err != nil {
		return fmt.Errorf("sftp: remove %s: %w", h, err)
	}
	if err := c.sftp.Remove(name); err != nil {
		return b.fail(c, "remove "+h.String(), err)
	}
	return nil
}

// List calls fn for each file of type t. Temp files, names that are not
// valid handles and packs outside their shard are skipped. Pack shards are
// read a few at a time ahead of fn.
func (b *Backend) List(ctx context.Context, t backends.FileType, fn func(backends.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sftp: list %s: %w", t, err)
	}
	if t != backends.ConfigFile {
		if err := (backends.Handle{Type: t, Name: "x"}).Valid(); err != nil {
			return fmt.Errorf("sftp: list: %w (%w)", err, backends.ErrPermanent)
		}
	}
	c, err := b.client(ctx)
	if err != nil {
		return fmt.Errorf("sftp: list %s: %w", t, err)
	}
	op := "list " + string(t)
	switch t {
	case backends.ConfigFile:
		fi, err := c.sftp.Stat(path.Join(b.root, string(t)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return b.fail(c, op, err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sftp: %s: %w", op, err)
		}
		return fn(backends.FileInfo{Size: fi.Size()})
	case backends.PackFile:
		return b.listPacks(ctx, c, fn)
	}
	entries, err := b.readDir(ctx, c, path.Join(b.root, string(t)))
	if err != nil {
		return b.fail(c, op, err)
	}
	for _, e := range entries {
		if err := listEntry(ctx, t, "", e, fn); err != nil {
			return err
		}
	}
	return nil
}

// listPacks lists the pack shards, reading up to listConcurrency of them
// ahead of fn, which is called in the calling goroutine.
func (b *Backend) listPacks(ctx context.Context, c *conn, fn func(backends.FileInfo) error) error {
	op := "list " + string(backends.PackFile)
	entries, err := b.readDir(ctx, c, path.Join(b.root, string(backends.PackFile)))
	if err != nil {
		return b.fail(c, op, err)
	}
	var shards []string
	for _, e := range entries {
		if e.IsDir() && backends.IsShard(e.Name()) {
			shards = append(shards, e.Name())
		}
	}
	read := func(ctx context.Context, s string) ([]os.FileInfo, error) {
		e, err := b.readDir(ctx, c, path.Join(b.root, backends.ShardDir(s)))
		if err != nil {
			return nil, b.fail(c, op, err)
		}
		return e, nil
	}
	return backends.ListShards(ctx, "sftp", shards, listConcurrency, read, func(s string, entries []os.FileInfo) error {
		for _, e := range entries {
			if err := listEntry(ctx, backends.PackFile, s, e, fn); err != nil {
				return err
			}
		}
		return nil
	})
}

// readDir reads dir; a missing dir has no entries.
func (b *Backend) readDir(ctx context.Context, c *conn, dir string) ([]os.FileInfo, error) {
	entries, err := c.sftp.ReadDirContext(ctx, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return entries, err
}

// listEntry calls fn for e if it is a complete file with a valid name (in
// the right shard, for packs).
func listEntry(ctx context.Context, t backends.FileType, shard string, e os.FileInfo, fn func(backends.FileInfo) error) error {
	name := e.Name()
	if !e.Mode().IsRegular() || strings.Contains(name, tmpMarker) || !strings.HasPrefix(name, shard) {
		return nil
	}
	if (backends.Handle{Type: t, Name: name}).Valid() != nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sftp: list %s: %w", t, err)
	}
	return fn(backends.FileInfo{Name: name, Size: e.Size()})
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

// fail adds the operation to err and translates it: a missing file becomes
// backends.ErrNotExist, errors that retrying cannot fix also match
// backends.ErrPermanent. A lost connection is dropped, so that the next call
// makes a new one.
func (b *Backend) fail(c *conn, op string, err error) error {
	if isConnError(err) {
		c.kill()
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("sftp: %s: %w", op, backends.ErrNotExist)
	case isPermanent(err):
		return fmt.Errorf("sftp: %s: %w (%w)", op, err, backends.ErrPermanent)
	}
	return fmt.Errorf("sftp: %s: %w", op, err)
}

// saveFail is fail for Save, where a missing path is never ErrNotExist: it
// means the repository folder is gone, which retrying does not fix.
func (b *Backend) saveFail(c *conn, h backends.Handle, err error) error {
	if isConnError(err) {
		c.kill()
	}
	if isPermanent(err) || errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sftp: save %s: %w (%w)", h, err, backends.ErrPermanent)
	}
	return fmt.Errorf("sftp: save %s: %w", h, err)
}

// SFTP status codes beyond version 3 that some servers send.
const (
	codeNoSpace       = 14 // SSH_FX_NO_SPACE_ON_FILESYSTEM
	codeQuotaExceeded = 15 // SSH_FX_QUOTA_EXCEEDED
)

// statusCode returns the SFTP status code of err, if it carries one.
func statusCode(err error) (uint32, bool) {
	var se *sftp.StatusError
	if errors.As(err, &se) {
		return se.Code, true
	}
	return 0, false
}

// isPermanent reports whether err is one that retrying cannot fix.
func isPermanent(err error) bool {
	if code, ok := statusCode(err); ok && (code == codeNoSpace || code == codeQuotaExceeded) {
		return true
	}
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, errNoSpace)
}

// randomSuffix returns 16 random hex digits for a temp file name.
func randomSuffix() string {
	var buf [8]byte
	_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(buf[:])
}

// connReader ends a download's reads: an error other than io.EOF gets the
// operation in front and, when the connection is lost, drops it.
type connReader struct {
	r    io.Reader
	c    *conn
	op   string
	read int64
}

func (l *connReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.read += int64(n)
	if err == nil || errors.Is(err, io.EOF) {
		return n, err
	}
	if isConnError(err) {
		l.c.kill()
	}
	return n, fmt.Errorf("sftp: %s: %w", l.op, err)
}
