// Package mem is an in-memory backends.Backend for tests. It keeps every file
// in a map guarded by a mutex, copies data on Save and Load (so callers may
// reuse their buffers), and lists in random order.
package mem

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hoard-backup/hoard/backends"
)

// Backend is an in-memory repository. The zero value is not usable; call New.
// All methods are safe for concurrent use.
type Backend struct {
	mu    sync.Mutex
	files map[backends.Handle][]byte
}

var _ backends.Backend = (*Backend)(nil)

// New returns an empty in-memory backend.
func New() *Backend {
	return &Backend{files: make(map[backends.Handle][]byte)}
}

// Location returns "mem:".
func (b *Backend) Location() string { return "mem:" }

// Properties reports 8 connections and atomic replace.
func (b *Backend) Properties() backends.Properties {
	return backends.Properties{Connections: 8, HasAtomicReplace: true}
}

// Close does nothing; the files stay readable.
func (b *Backend) Close() error { return nil }

// Save stores a copy of exactly rd.Length() bytes of rd under h.
func (b *Backend) Save(ctx context.Context, h backends.Handle, rd backends.RewindReader) error {
	if err := check(ctx, "save", h); err != nil {
		return err
	}
	want := rd.Length()
	if want < 0 {
		return fmt.Errorf("mem: save %s: reader has negative length %d", h, want)
	}
	// Read at most one byte more than promised, to detect a long reader.
	buf, err := io.ReadAll(io.LimitReader(rd, want+1))
	if err != nil {
		return fmt.Errorf("mem: save %s: %w", h, err)
	}
	if int64(len(buf)) != want {
		return fmt.Errorf("mem: save %s: reader yielded %d bytes, its Length is %d", h, len(buf), want)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: save %s: %w", h, err)
	}
	b.mu.Lock()
	b.files[h] = buf
	b.mu.Unlock()
	return nil
}

// Load calls fn with a reader over a copy of the requested range of h.
func (b *Backend) Load(ctx context.Context, h backends.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := check(ctx, "load", h); err != nil {
		return err
	}
	if length < 0 || offset < 0 {
		return fmt.Errorf("mem: load %s: length %d, offset %d: %w", h, length, offset, backends.ErrRange)
	}
	b.mu.Lock()
	data, ok := b.files[h]
	if !ok {
		b.mu.Unlock()
		return fmt.Errorf("mem: load %s: %w", h, backends.ErrNotExist)
	}
	size := int64(len(data))
	if offset > size {
		b.mu.Unlock()
		return fmt.Errorf("mem: load %s: offset %d beyond size %d: %w", h, offset, size, backends.ErrRange)
	}
	end := size
	short := false
	if length > 0 {
		if offset+int64(length) <= size {
			end = offset + int64(length)
		} else {
			short = true
		}
	}
	part := bytes.Clone(data[offset:end])
	b.mu.Unlock()
	return fn(&reader{r: bytes.NewReader(part), short: short})
}

// Stat returns the size of h.
func (b *Backend) Stat(ctx context.Context, h backends.Handle) (backends.FileInfo, error) {
	if err := check(ctx, "stat", h); err != nil {
		return backends.FileInfo{}, err
	}
	b.mu.Lock()
	data, ok := b.files[h]
	b.mu.Unlock()
	if !ok {
		return backends.FileInfo{}, fmt.Errorf("mem: stat %s: %w", h, backends.ErrNotExist)
	}
	return backends.FileInfo{Name: h.Name, Size: int64(len(data))}, nil
}

// Remove deletes h.
func (b *Backend) Remove(ctx context.Context, h backends.Handle) error {
	if err := check(ctx, "remove", h); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.files[h]; !ok {
		return fmt.Errorf("mem: remove %s: %w", h, backends.ErrNotExist)
	}
	delete(b.files, h)
	return nil
}

// List calls fn for each file of type t, from a snapshot taken when List
// starts, without holding the lock (so fn may use the backend).
func (b *Backend) List(ctx context.Context, t backends.FileType, fn func(backends.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: list %s: %w", t, err)
	}
	name := "x"
	if t == backends.ConfigFile {
		name = ""
	}
	if err := (backends.Handle{Type: t, Name: name}).Valid(); err != nil {
		return fmt.Errorf("mem: list: %w", err)
	}
	var infos []backends.FileInfo
	b.mu.Lock()
	for h, data := range b.files {
		if h.Type == t {
			infos = append(infos, backends.FileInfo{Name: h.Name, Size: int64(len(data))})
		}
	}
	b.mu.Unlock()
	for _, fi := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("mem: list %s: %w", t, err)
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// check fails if ctx is done or h is not valid.
func check(ctx context.Context, op string, h backends.Handle) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: %s %s: %w", op, h, err)
	}
	if err := h.Valid(); err != nil {
		return fmt.Errorf("mem: %s: %w (%w)", op, err, backends.ErrPermanent)
	}
	return nil
}

// reader reads r and, if short, ends with io.ErrUnexpectedEOF instead of io.EOF.
type reader struct {
	r     *bytes.Reader
	short bool
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if r.short && errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
