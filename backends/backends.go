// Package backends defines where the files of a repository live: the Backend
// interface, the file types and handles that address files, the sentinel
// errors every backend translates its native errors into, and Open, which
// turns a repository URL into a Backend.
//
// A backend knows nothing of packs, keys or encryption: it stores named,
// immutable files.
package backends

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Sentinel errors. Backends wrap them with %w; callers test with errors.Is.
var (
	// ErrNotExist is returned by Load, Stat and Remove for a missing file.
	ErrNotExist = errors.New("backends: file does not exist")
	// ErrExist is returned when a location that must be new already holds a repository.
	ErrExist = errors.New("backends: file already exists")
	// ErrRange is returned by Load when offset lies beyond the end of the file.
	ErrRange = errors.New("backends: invalid range")
	// ErrUnavailable marks a transient failure (a dropped connection, a
	// timeout, a 5xx) that persisted through every retry: the backend could
	// not be reached, which says nothing about the data stored in it.
	ErrUnavailable = errors.New("backends: backend unavailable")
	// ErrPermanent marks errors that retrying cannot fix (permission, full disk, bad credentials).
	ErrPermanent = errors.New("backends: permanent error")
	// ErrUnknownScheme means a repository location names a scheme no
	// backend is registered for (a mistake on the command line).
	ErrUnknownScheme = errors.New("backends: unknown scheme")
)

// FileType names a class of repository files; each lives in its own folder.
type FileType string

// The file types of a repository (see docs/FORMAT.md).
const (
	ConfigFile   FileType = "config"
	KeyFile      FileType = "keys"
	PackFile     FileType = "data"
	IndexFile    FileType = "index"
	SnapshotFile FileType = "snapshots"
	LockFile     FileType = "locks"
	// WALFile is a WAL catalog entry (format version 2), named by the WAL
	// file it describes rather than by a hash.
	WALFile FileType = "wal"
)

// FileTypes lists the types of a version 1 repository, in the order a
// repository is laid out; backends make their folders at creation.
// WALFile's folder is made by the first Save into it.
func FileTypes() []FileType {
	return []FileType{ConfigFile, KeyFile, PackFile, IndexFile, SnapshotFile, LockFile}
}

// Handle addresses one file of a repository. For ConfigFile, Name is empty.
type Handle struct {
	Type FileType
	Name string
}

// String returns "config" for the config and "TYPE/NAME" otherwise, for
// messages. It is not a path: backends build their own.
func (h Handle) String() string {
	if h.Type == ConfigFile {
		return "config"
	}
	return string(h.Type) + "/" + h.Name
}

// Valid reports whether h names a file a backend may store: a known type and,
// except for the config, a name of lowercase hex digits, letters, digits,
// '-' or '_' only (never a path separator or a dot-name).
func (h Handle) Valid() error {
	switch h.Type {
	case ConfigFile:
		if h.Name != "" {
			return fmt.Errorf("backends: config handle with name %q", h.Name)
		}
		return nil
	case KeyFile, PackFile, IndexFile, SnapshotFile, LockFile, WALFile:
	default:
		return fmt.Errorf("backends: unknown file type %q", h.Type)
	}
	if h.Name == "" || len(h.Name) > 128 {
		return fmt.Errorf("backends: invalid name %q", h.Name)
	}
	for _, c := range h.Name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			return fmt.Errorf("backends: invalid name %q", h.Name)
		}
	}
	return nil
}

// FileInfo describes a stored file.
type FileInfo struct {
	Name string
	Size int64
}

// Properties describe what a backend can do.
type Properties struct {
	// Connections is the number of concurrent operations the backend serves well.
	Connections int
	// HasAtomicReplace reports whether Save over an existing file replaces it atomically.
	HasAtomicReplace bool
}

// RewindReader is a reader that can be rewound to its start, so that a
// failed upload can be retried, and that knows its length in advance.
type RewindReader interface {
	io.Reader
	// Rewind seeks back to the start.
	Rewind() error
	// Length is the number of bytes the reader yields from the start.
	Length() int64
}

// Backend stores the files of one repository. All methods are safe for
// concurrent use. Methods that take a Handle fail (with an error that also
// matches ErrPermanent) for a handle that is not Valid, so a hostile name
// never reaches the storage. A cancelled ctx makes every method that takes
// one fail with an error wrapping ctx.Err(). Backends never keep a ctx beyond the call.
// backends/backendtest.Run checks all of this.
type Backend interface {
	// Location is the backend's URL with any credentials removed.
	Location() string
	// Save stores rd under h, atomically: a partial file is never visible
	// under h. If Save fails before the data is complete (an error from rd,
	// a wrong length, a cancelled ctx), h is left as it was: absent, or with
	// its old content. It fails if rd yields fewer or more bytes than
	// rd.Length(), and returns rd's own error wrapped. Save reads rd from
	// where it stands; rewinding for a retry is the caller's job.
	Save(ctx context.Context, h Handle, rd RewindReader) error
	// Load calls fn with a reader of length bytes of h starting at offset;
	// length 0 means to the end of the file. fn may be called more than once
	// (on retries) and so must be idempotent; the backend closes the reader
	// after fn returns. A missing file is ErrNotExist; an offset beyond the
	// end (or a negative offset or length) is ErrRange; an offset equal to
	// the size gives an empty reader. A reader that yields fewer bytes than
	// asked for ends with io.ErrUnexpectedEOF. fn's error is returned as is.
	Load(ctx context.Context, h Handle, length int, offset int64, fn func(rd io.Reader) error) error
	// Stat returns information about h, or ErrNotExist.
	Stat(ctx context.Context, h Handle) (FileInfo, error)
	// List calls fn for each file of type t, in no particular order, in the
	// calling goroutine. For ConfigFile it yields the config (with an empty
	// Name) if it exists. An error from fn stops the listing and is returned;
	// ctx is checked before each call of fn. Temp files of unfinished Saves
	// are never listed. A missing folder lists nothing.
	List(ctx context.Context, t FileType, fn func(FileInfo) error) error
	// Remove deletes h, or returns ErrNotExist.
	Remove(ctx context.Context, h Handle) error
	// Properties describes the backend.
	Properties() Properties
	// Close releases the backend's resources.
	Close() error
}

// Creator is implemented by backends that must prepare a location (create
// folders) before a repository can be initialised in it.
type Creator interface {
	// Create prepares the location. It returns an error wrapping ErrExist
	// if the location already holds a config.
	Create(ctx context.Context) error
}

// Opener turns a URL (without its scheme decided) into a Backend.
type Opener func(ctx context.Context, location string) (Backend, error)

// Registry maps URL schemes to openers. A location without a scheme is a
// local path and goes to the opener registered for "local".
type Registry map[string]Opener

// Open opens the backend that location names.
func (r Registry) Open(ctx context.Context, location string) (Backend, error) {
	scheme := "local"
	if i := strings.Index(location, "://"); i > 0 {
		scheme = location[:i]
	} else {
		location = strings.TrimPrefix(location, "local:")
	}
	open, ok := r[scheme]
	if !ok {
		known := make([]string, 0, len(r))
		for k := range r {
			if k != "local" {
				known = append(known, k+"://")
			}
		}
		sort.Strings(known)
		return nil, fmt.Errorf("%w %q in repository location (known: %s, or a local path)", ErrUnknownScheme, scheme, strings.Join(known, ", "))
	}
	return open(ctx, location)
}

// ByteReader is a RewindReader over a byte slice.
type ByteReader struct {
	buf []byte
	pos int
}

// NewByteReader returns a RewindReader yielding buf.
func NewByteReader(buf []byte) *ByteReader { return &ByteReader{buf: buf} }

// Read implements io.Reader.
func (b *ByteReader) Read(p []byte) (int, error) {
	if b.pos >= len(b.buf) {
		return 0, io.EOF
	}
	n := copy(p, b.buf[b.pos:])
	b.pos += n
	return n, nil
}

// Rewind implements RewindReader.
func (b *ByteReader) Rewind() error { b.pos = 0; return nil }

// Length implements RewindReader.
func (b *ByteReader) Length() int64 { return int64(len(b.buf)) }

// LoadAll reads the whole of h into memory. Use it only for files of bounded
// size (keys, config, index, snapshots, pack headers).
func LoadAll(ctx context.Context, be Backend, h Handle) ([]byte, error) {
	var out []byte
	err := be.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		var err error
		out, err = io.ReadAll(rd)
		return err
	})
	return out, err
}

// Unwrapper is implemented by decorators (retry, cache, fault injection):
// Unwrap returns the backend they wrap.
type Unwrapper interface {
	Unwrap() Backend
}

// As finds the first backend of type B in be's chain of decorators, be
// included, so that callers ask what a backend is by its type rather than
// by its location string (after restic's AsBackend).
func As[B Backend](be Backend) (B, bool) {
	for be != nil {
		if b, ok := be.(B); ok {
			return b, true
		}
		u, ok := be.(Unwrapper)
		if !ok {
			break
		}
		be = u.Unwrap()
	}
	var zero B
	return zero, false
}
