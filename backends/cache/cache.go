// Package cache is a Backend decorator that keeps a local copy of the
// repository's metadata (index files, snapshots, keys, and the packs the
// caller marks as tree packs), so that listing snapshots and incremental
// backups do not download it again from a remote backend.
//
// Every cached file is named by the SHA-256 of its bytes (FORMAT.md section
// 1), so a cached copy is verified against its name before its first use in
// a process; a copy that does not match is dropped and loaded again.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/hoard-backup/hoard/backends"
)

// MaxFileSize bounds what is cached; larger files pass through.
const MaxFileSize = 64 << 20

// Backend caches metadata of the backend it wraps in a local folder.
type Backend struct {
	be  backends.Backend
	dir string

	mu       sync.Mutex
	verified map[backends.Handle]bool
	trees    map[string]bool // pack names marked as tree packs
}

var _ backends.Backend = (*Backend)(nil)

// DefaultDir returns the folder for a repository's cache:
// $XDG_CACHE_HOME/hoard/<repository ID>, or ~/.cache/hoard/<ID>.
func DefaultDir(repositoryID string) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "hoard", repositoryID), nil
}

// New wraps be with a cache in dir, which is created (mode 0700) if needed.
func New(be backends.Backend, dir string) (*Backend, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &Backend{be: be, dir: dir, verified: map[backends.Handle]bool{}, trees: map[string]bool{}}, nil
}

// Unwrap returns the wrapped backend.
func (b *Backend) Unwrap() backends.Backend { return b.be }

// MarkTreePacks tells the cache which packs hold trees, so that they are
// cached too.
func (b *Backend) MarkTreePacks(names []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range names {
		b.trees[n] = true
	}
}

func (b *Backend) cacheable(h backends.Handle) bool {
	switch h.Type {
	case backends.IndexFile, backends.SnapshotFile, backends.KeyFile:
		return true
	case backends.PackFile:
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.trees[h.Name]
	}
	return false
}

func (b *Backend) path(h backends.Handle) string {
	return filepath.Join(b.dir, string(h.Type), h.Name)
}

// read returns the cached copy of h, verified, or nil.
func (b *Backend) read(h backends.Handle) []byte {
	data, err := os.ReadFile(b.path(h))
	if err != nil {
		return nil
	}
	b.mu.Lock()
	ok := b.verified[h]
	b.mu.Unlock()
	if !ok {
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != h.Name {
			_ = os.Remove(b.path(h)) // damaged or tampered with: load it again
			return nil
		}
		b.mu.Lock()
		b.verified[h] = true
		b.mu.Unlock()
	}
	return data
}

// write stores a copy of h, if its bytes match its name.
func (b *Backend) write(h backends.Handle, data []byte) {
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != h.Name {
		return
	}
	p := b.path(h)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), p) != nil {
		_ = os.Remove(tmp.Name())
		return
	}
	b.mu.Lock()
	b.verified[h] = true
	b.mu.Unlock()
}

// Location implements backends.Backend.
func (b *Backend) Location() string { return b.be.Location() }

// Save implements backends.Backend; metadata saved is cached as well.
func (b *Backend) Save(ctx context.Context, h backends.Handle, rd backends.RewindReader) error {
	if !b.cacheable(h) || rd.Length() > MaxFileSize {
		return b.be.Save(ctx, h, rd)
	}
	data, err := io.ReadAll(io.LimitReader(rd, MaxFileSize+1))
	if err != nil {
		return err
	}
	if err := b.be.Save(ctx, h, backends.NewByteReader(data)); err != nil {
		return err
	}
	b.write(h, data)
	return nil
}

// Load implements backends.Backend: cached files are served locally;
// others are loaded whole once, verified and kept.
func (b *Backend) Load(ctx context.Context, h backends.Handle, length int, offset int64, fn func(io.Reader) error) error {
	if !b.cacheable(h) {
		return b.be.Load(ctx, h, length, offset, fn)
	}
	data := b.read(h)
	if data == nil {
		var err error
		data, err = backends.LoadAll(ctx, b.be, h)
		if err != nil {
			return err
		}
		b.write(h, data)
	}
	if offset < 0 || length < 0 || offset > int64(len(data)) {
		return fmt.Errorf("cache: load %s at %d: %w", h, offset, backends.ErrRange)
	}
	part := data[offset:]
	if length > 0 {
		if int64(length) > int64(len(part)) {
			return fn(io.MultiReader(bytesReader(part), errReader{io.ErrUnexpectedEOF}))
		}
		part = part[:length]
	}
	return fn(bytesReader(part))
}

func bytesReader(b []byte) io.Reader { return backends.NewByteReader(b) }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// Stat implements backends.Backend.
func (b *Backend) Stat(ctx context.Context, h backends.Handle) (backends.FileInfo, error) {
	return b.be.Stat(ctx, h)
}

// List implements backends.Backend. Cached copies of files the backend no
// longer lists (forgotten snapshots, pruned packs) are removed.
func (b *Backend) List(ctx context.Context, t backends.FileType, fn func(backends.FileInfo) error) error {
	listed := map[string]bool{}
	err := b.be.List(ctx, t, func(fi backends.FileInfo) error {
		listed[fi.Name] = true
		return fn(fi)
	})
	if err != nil {
		return err
	}
	entries, rerr := os.ReadDir(filepath.Join(b.dir, string(t)))
	if rerr == nil {
		for _, e := range entries {
			if !listed[e.Name()] {
				_ = os.Remove(filepath.Join(b.dir, string(t), e.Name()))
			}
		}
	}
	return nil
}

// Remove implements backends.Backend.
func (b *Backend) Remove(ctx context.Context, h backends.Handle) error {
	err := b.be.Remove(ctx, h)
	if rerr := os.Remove(b.path(h)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// Properties implements backends.Backend.
func (b *Backend) Properties() backends.Properties { return b.be.Properties() }

// Close implements backends.Backend.
func (b *Backend) Close() error { return b.be.Close() }

// Create implements backends.Creator when the wrapped backend does.
func (b *Backend) Create(ctx context.Context) error {
	if c, ok := b.be.(backends.Creator); ok {
		return c.Create(ctx)
	}
	return nil
}
