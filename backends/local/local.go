package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/hoard-backup/hoard/backends"
)

// Default permissions of a repository: private to its owner.
const (
	DefaultDirMode  os.FileMode = 0o700
	DefaultFileMode os.FileMode = 0o600
)

// tmpMarker separates a file's final name from the random suffix of its temp file.
const tmpMarker = ".tmp-"

// readDirBatch is how many folder entries List reads at a time.
const readDirBatch = 1000

// Config configures a local backend.
type Config struct {
	// Path is the repository folder.
	Path string
	// DirMode is the permission of the folders the backend creates; zero
	// means DefaultDirMode (0700). It must include 0700 and may not grant
	// anything to others.
	DirMode os.FileMode
	// FileMode is the permission of the files the backend writes; zero means
	// DefaultFileMode (0600). It must include 0600 and may not grant anything
	// to others.
	FileMode os.FileMode
}

// ParseConfig parses a repository location, either a plain path or
// "local:PATH", into a Config with default modes.
func ParseConfig(location string) (Config, error) {
	path := strings.TrimPrefix(location, "local:")
	if path == "" {
		return Config{}, fmt.Errorf("local: empty path in repository location %q", location)
	}
	return Config{Path: path}, nil
}

// Opener opens the local backend that location names (see ParseConfig). It
// has the signature of backends.Opener, for backends.Registry{"local": local.Opener}.
func Opener(ctx context.Context, location string) (backends.Backend, error) {
	cfg, err := ParseConfig(location)
	if err != nil {
		return nil, err
	}
	return Open(ctx, cfg)
}

// Backend is a repository in a local folder. It holds no open files between
// calls and all methods are safe for concurrent use.
type Backend struct {
	root     string
	dirMode  os.FileMode
	fileMode os.FileMode
}

var (
	_ backends.Backend = (*Backend)(nil)
	_ backends.Creator = (*Backend)(nil)
)

// Open returns a backend for the repository folder cfg.Path. The folder need
// not exist yet (Create makes it); if it exists it must be a folder. Open
// does not keep ctx.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local: open: %w", err)
	}
	if cfg.Path == "" {
		return nil, errors.New("local: open: empty path")
	}
	dirMode, err := checkMode("DirMode", cfg.DirMode, DefaultDirMode)
	if err != nil {
		return nil, err
	}
	fileMode, err := checkMode("FileMode", cfg.FileMode, DefaultFileMode)
	if err != nil {
		return nil, err
	}
	root, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("local: open %s: %w", cfg.Path, err)
	}
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("local: open: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("local: open %s: not a folder", root)
	}
	return &Backend{root: root, dirMode: dirMode, fileMode: fileMode}, nil
}

// checkMode returns mode, or def if mode is zero, after checking that it is a
// plain permission that the owner can use and others cannot.
func checkMode(field string, mode, def os.FileMode) (os.FileMode, error) {
	if mode == 0 {
		return def, nil
	}
	if mode&^fs.ModePerm != 0 || mode&def != def || mode&0o007 != 0 {
		return 0, fmt.Errorf("local: open: %s %#o must include %#o and grant nothing to others", field, mode, def)
	}
	return mode, nil
}

// Location returns "local:" followed by the absolute repository path.
func (b *Backend) Location() string { return "local:" + b.root }

// Properties reports 2*GOMAXPROCS connections (at most 8) and atomic replace.
func (b *Backend) Properties() backends.Properties {
	return backends.Properties{
		Connections:      min(2*runtime.GOMAXPROCS(0), 8),
		HasAtomicReplace: true,
	}
}

// Close does nothing: the backend holds no resources between calls.
func (b *Backend) Close() error { return nil }

// Create makes the repository folder and its subfolders (see the package
// documentation). It returns an error wrapping backends.ErrExist if the
// folder already holds a config. Existing folders are kept as they are.
func (b *Backend) Create(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: create: %w", err)
	}
	config := filepath.Join(b.root, string(backends.ConfigFile))
	if _, err := os.Lstat(config); err == nil {
		return fmt.Errorf("local: create %s: %w", b.root, backends.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return b.fail("create", err)
	}
	if err := os.MkdirAll(filepath.Dir(b.root), b.dirMode); err != nil {
		return b.fail("create", err)
	}
	dirs := []string{b.root}
	for _, t := range backends.FileTypes() {
		if t != backends.ConfigFile {
			dirs = append(dirs, filepath.Join(b.root, string(t)))
		}
	}
	data := filepath.Join(b.root, string(backends.PackFile))
	for _, d := range backends.ShardDirs() {
		dirs = append(dirs, filepath.Join(b.root, filepath.FromSlash(d)))
	}
	for _, dir := range dirs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("local: create: %w", err)
		}
		if err := b.mkdir(dir); err != nil {
			return b.fail("create", err)
		}
	}
	for _, dir := range []string{b.root, data} {
		if err := syncDir(dir); err != nil {
			return b.fail("create", err)
		}
	}
	// The parent may be unreadable (mode 0711); syncing it is a bonus.
	_ = syncDir(filepath.Dir(b.root))
	return nil
}

// Save writes rd to a temp file beside h's final name, checks its length,
// syncs it and renames it into place. Missing folders below the repository
// folder are created; a missing repository folder is an error.
func (b *Backend) Save(ctx context.Context, h backends.Handle, rd backends.RewindReader) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: save %s: %w", h, err)
	}
	name, err := b.filename(h)
	if err != nil {
		return fmt.Errorf("local: save: %w", err)
	}
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, filepath.Base(name)+tmpMarker+"*")
	if errors.Is(err, fs.ErrNotExist) {
		if err = b.mkdirs(h); err == nil {
			f, err = os.CreateTemp(dir, filepath.Base(name)+tmpMarker+"*")
		}
	}
	if err != nil {
		return b.saveFail(h, err)
	}
	tmp := f.Name()
	if err := b.write(ctx, f, rd); err != nil {
		_ = os.Remove(tmp)
		return b.saveFail(h, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp)
		return b.saveFail(h, err)
	}
	if err := syncDir(dir); err != nil {
		// The file is complete and in place, but may not survive a crash.
		return b.saveFail(h, err)
	}
	return nil
}

// write copies exactly rd.Length() bytes of rd to f, syncs and closes f.
// f is closed even when write fails.
func (b *Backend) write(ctx context.Context, f *os.File, rd backends.RewindReader) error {
	want := rd.Length()
	err := func() error {
		if b.fileMode != DefaultFileMode { // os.CreateTemp makes 0600
			if err := f.Chmod(b.fileMode); err != nil {
				return err
			}
		}
		if want < 0 {
			return fmt.Errorf("reader has negative length %d", want)
		}
		// Copy at most one byte more than promised, to detect a long reader
		// without writing all of it.
		n, err := io.Copy(f, io.LimitReader(backends.ContextReader(ctx, rd), want+1))
		if err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("reader yielded %d bytes, its Length is %d", n, want)
		}
		return syncFile(f)
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Load calls fn with a reader of the requested range of h.
func (b *Backend) Load(ctx context.Context, h backends.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: load %s: %w", h, err)
	}
	name, err := b.filename(h)
	if err != nil {
		return fmt.Errorf("local: load: %w", err)
	}
	if length < 0 || offset < 0 {
		return fmt.Errorf("local: load %s: length %d, offset %d: %w", h, length, offset, backends.ErrRange)
	}
	f, fi, err := openRegular(name)
	if err != nil {
		return b.fail("load "+h.String(), err)
	}
	defer func() { _ = f.Close() }() // read-only: nothing to lose
	if offset > fi.Size() {
		return fmt.Errorf("local: load %s: offset %d beyond size %d: %w", h, offset, fi.Size(), backends.ErrRange)
	}
	n := int64(length)
	if length == 0 {
		n = fi.Size() - offset
	}
	return fn(backends.ExactReader(backends.ContextReader(ctx, io.NewSectionReader(f, offset, n)), n))
}

// Stat returns the size of h.
func (b *Backend) Stat(ctx context.Context, h backends.Handle) (backends.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return backends.FileInfo{}, fmt.Errorf("local: stat %s: %w", h, err)
	}
	name, err := b.filename(h)
	if err != nil {
		return backends.FileInfo{}, fmt.Errorf("local: stat: %w", err)
	}
	fi, err := os.Stat(name)
	if err == nil && !fi.Mode().IsRegular() {
		err = notRegular(name, fi)
	}
	if err != nil {
		return backends.FileInfo{}, b.fail("stat "+h.String(), err)
	}
	return backends.FileInfo{Name: h.Name, Size: fi.Size()}, nil
}

// Remove deletes h.
func (b *Backend) Remove(ctx context.Context, h backends.Handle) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: remove %s: %w", h, err)
	}
	name, err := b.filename(h)
	if err != nil {
		return fmt.Errorf("local: remove: %w", err)
	}
	if err := os.Remove(name); err != nil {
		return b.fail("remove "+h.String(), err)
	}
	return nil
}

// List calls fn for each file of type t. Temp files and names that are not
// valid handles (or packs outside their shard) are skipped. ctx is checked
// before each call of fn.
func (b *Backend) List(ctx context.Context, t backends.FileType, fn func(backends.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: list %s: %w", t, err)
	}
	switch t {
	case backends.ConfigFile:
		fi, err := os.Stat(filepath.Join(b.root, string(t)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return b.fail("list "+string(t), err)
		}
		return fn(backends.FileInfo{Size: fi.Size()})
	case backends.PackFile:
		data := filepath.Join(b.root, string(t))
		return b.readDir(ctx, t, data, func(e fs.DirEntry) error {
			if !e.IsDir() {
				return nil
			}
			return b.readDir(ctx, t, filepath.Join(data, e.Name()), func(f fs.DirEntry) error {
				if len(e.Name()) != 2 || !strings.HasPrefix(f.Name(), e.Name()) {
					return nil // not where Load would look for it
				}
				return b.listEntry(ctx, t, f, fn)
			})
		})
	default:
		if err := (backends.Handle{Type: t, Name: "x"}).Valid(); err != nil {
			return fmt.Errorf("local: list: %w", err)
		}
		return b.readDir(ctx, t, filepath.Join(b.root, string(t)), func(e fs.DirEntry) error {
			return b.listEntry(ctx, t, e, fn)
		})
	}
}

// listEntry calls fn for e if e is a complete file with a valid name.
func (b *Backend) listEntry(ctx context.Context, t backends.FileType, e fs.DirEntry, fn func(backends.FileInfo) error) error {
	if !e.Type().IsRegular() || strings.Contains(e.Name(), tmpMarker) {
		return nil
	}
	if (backends.Handle{Type: t, Name: e.Name()}).Valid() != nil {
		return nil
	}
	fi, err := e.Info()
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed since the folder was read
	}
	if err != nil {
		return b.fail("list "+string(t), err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: list %s: %w", t, err)
	}
	return fn(backends.FileInfo{Name: e.Name(), Size: fi.Size()})
}

// readDir calls each for every entry of dir, reading it in batches. A
// missing dir has no entries. Errors from each are returned unchanged.
func (b *Backend) readDir(ctx context.Context, t backends.FileType, dir string, each func(fs.DirEntry) error) error {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return b.fail("list "+string(t), err)
	}
	defer func() { _ = f.Close() }() // read-only: nothing to lose
	for {
		entries, err := f.ReadDir(readDirBatch)
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("local: list %s: %w", t, err)
			}
			if err := each(e); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return b.fail("list "+string(t), err)
		}
	}
}

// errNotRegular marks a repository file that is a FIFO, socket, device or
// folder: hoard only ever writes regular files, and reading a FIFO would
// block until someone writes to it.
var errNotRegular = errors.New("not a regular file")

// openRegular opens name for reading and returns it with its FileInfo, or
// fails at once if it is not a regular file (following symlinks). The open
// itself must not block: a FIFO with no writer blocks open(2) unless
// O_NONBLOCK is given, which regular files ignore.
func openRegular(name string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		// A socket cannot be opened at all (ENXIO): say what it is.
		if fi, serr := os.Stat(name); serr == nil && !fi.Mode().IsRegular() {
			err = notRegular(name, fi)
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = notRegular(name, fi)
	}
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// notRegular says what kind of file name is instead of a regular one. The
// error is permanent: retrying does not make a FIFO a file.
func notRegular(name string, fi fs.FileInfo) error {
	kind := "a special file"
	switch m := fi.Mode(); {
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeDevice != 0:
		kind = "a device"
	case m.IsDir():
		kind = "a folder"
	}
	return fmt.Errorf("%s is %s: %w (%w)", name, kind, errNotRegular, backends.ErrPermanent)
}

// filename returns the path of h (see backends.Path) after checking that h
// is valid.
func (b *Backend) filename(h backends.Handle) (string, error) {
	p, err := backends.Path(h)
	if err != nil {
		return "", err
	}
	return filepath.Join(b.root, filepath.FromSlash(p)), nil
}

// mkdirs creates the folders below the repository folder that h lives in.
func (b *Backend) mkdirs(h backends.Handle) error {
	for _, d := range backends.Dirs(h) {
		if err := b.mkdir(filepath.Join(b.root, filepath.FromSlash(d))); err != nil {
			return err
		}
	}
	return nil
}

// mkdir creates dir with the backend's DirMode unless it exists.
func (b *Backend) mkdir(dir string) error {
	err := os.Mkdir(dir, b.dirMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.Chmod(dir, b.dirMode) // escape the umask
}

// fail adds the operation to err and translates it: a missing file becomes
// backends.ErrNotExist, errors that retrying cannot fix also match
// backends.ErrPermanent.
func (b *Backend) fail(op string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local: %s: %w", op, backends.ErrNotExist)
	}
	if isPermanent(err) {
		return fmt.Errorf("local: %s: %w (%w)", op, err, backends.ErrPermanent)
	}
	return fmt.Errorf("local: %s: %w", op, err)
}

// saveFail is fail for Save, where a missing path is never ErrNotExist: it
// means the repository folder is gone (an unmounted disk, say), which retrying
// does not fix.
func (b *Backend) saveFail(h backends.Handle, err error) error {
	if isPermanent(err) || errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local: save %s: %w (%w)", h, err, backends.ErrPermanent)
	}
	return fmt.Errorf("local: save %s: %w", h, err)
}

// isPermanent reports whether err is one that retrying cannot fix.
func isPermanent(err error) bool {
	return errors.Is(err, fs.ErrPermission) || // EACCES, EPERM
		errors.Is(err, syscall.ENOSPC) ||
		errors.Is(err, syscall.EDQUOT) ||
		errors.Is(err, syscall.EROFS)
}

// syncFile fsyncs f, tolerating file systems that cannot.
func syncFile(f *os.File) error {
	if err := f.Sync(); err != nil && !syncUnsupported(err) {
		return err
	}
	return nil
}

// syncDir fsyncs a folder so that a rename or create in it is durable.
// Windows cannot sync folders.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = syncFile(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncUnsupported reports whether a Sync error means the file system does
// not support fsync (some network and FUSE file systems).
func syncUnsupported(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, errors.ErrUnsupported)
}
