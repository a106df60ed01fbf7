package backendtest

import (
	"context"
	"errors"
	"io"
	"sync/atomic"

	"github.com/hoard-backup/hoard/backends"
)

// ErrInjected is the error of the readers that Faulty cuts short.
var ErrInjected = errors.New("backendtest: injected fault")

// Faulty wraps a Backend and injects faults, for testing the code above a
// backend (retries, repository error paths). Calls without a fault go to the
// wrapped Backend unchanged. Every hook is optional and may be called from
// several goroutines at once, so it must be safe for concurrent use (see
// FailTimes). Faulty must not be copied after first use.
type Faulty struct {
	// Backend is the wrapped backend.
	backends.Backend

	// FailSave is called before each Save; a non-nil error is returned
	// instead of saving.
	FailSave func(h backends.Handle) error
	// FailLoad is called before each Load; a non-nil error is returned
	// instead of loading (fn is not called).
	FailLoad func(h backends.Handle) error
	// FailStat is called before each Stat; a non-nil error is returned.
	FailStat func(h backends.Handle) error
	// FailRemove is called before each Remove; a non-nil error is returned
	// and nothing is removed.
	FailRemove func(h backends.Handle) error
	// FailList is called before each List; a non-nil error is returned and
	// fn is not called.
	FailList func(t backends.FileType) error

	// CutSave is called before each Save. If it returns n >= 0, the reader
	// handed to the wrapped backend fails with ErrInjected after n bytes
	// (so the wrapped Save fails halfway); a negative n leaves it intact.
	CutSave func(h backends.Handle) int64
	// CutLoad is called before each Load. If it returns n >= 0, the reader
	// handed to fn fails with ErrInjected after n bytes; a negative n leaves
	// it intact.
	CutLoad func(h backends.Handle) int64
}

var _ backends.Backend = (*Faulty)(nil)

// Unwrap returns the wrapped backend.
func (f *Faulty) Unwrap() backends.Backend { return f.Backend }

// Save injects FailSave and CutSave, then saves through the wrapped backend.
func (f *Faulty) Save(ctx context.Context, h backends.Handle, rd backends.RewindReader) error {
	if f.FailSave != nil {
		if err := f.FailSave(h); err != nil {
			return err
		}
	}
	if f.CutSave != nil {
		if n := f.CutSave(h); n >= 0 {
			rd = &cutRewindReader{RewindReader: rd, n: n, cut: cutReader{r: rd, left: n}}
		}
	}
	return f.Backend.Save(ctx, h, rd)
}

// Load injects FailLoad and CutLoad, then loads through the wrapped backend.
func (f *Faulty) Load(ctx context.Context, h backends.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if f.FailLoad != nil {
		if err := f.FailLoad(h); err != nil {
			return err
		}
	}
	if f.CutLoad != nil {
		if n := f.CutLoad(h); n >= 0 {
			inner := fn
			fn = func(rd io.Reader) error { return inner(&cutReader{r: rd, left: n}) }
		}
	}
	return f.Backend.Load(ctx, h, length, offset, fn)
}

// Stat injects FailStat, then stats through the wrapped backend.
func (f *Faulty) Stat(ctx context.Context, h backends.Handle) (backends.FileInfo, error) {
	if f.FailStat != nil {
		if err := f.FailStat(h); err != nil {
			return backends.FileInfo{}, err
		}
	}
	return f.Backend.Stat(ctx, h)
}

// Remove injects FailRemove, then removes through the wrapped backend.
func (f *Faulty) Remove(ctx context.Context, h backends.Handle) error {
	if f.FailRemove != nil {
		if err := f.FailRemove(h); err != nil {
			return err
		}
	}
	return f.Backend.Remove(ctx, h)
}

// List injects FailList, then lists through the wrapped backend.
func (f *Faulty) List(ctx context.Context, t backends.FileType, fn func(backends.FileInfo) error) error {
	if f.FailList != nil {
		if err := f.FailList(t); err != nil {
			return err
		}
	}
	return f.Backend.List(ctx, t, fn)
}

// FailTimes returns a hook for Faulty that fails the first n calls with err
// and lets later calls through, as a flaky connection would. It is safe for
// concurrent use.
func FailTimes(n int, err error) func(backends.Handle) error {
	var calls atomic.Int64
	return func(backends.Handle) error {
		if calls.Add(1) <= int64(n) {
			return err
		}
		return nil
	}
}

// cutReader yields left bytes of r, then fails with ErrInjected.
type cutReader struct {
	r    io.Reader
	left int64
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, ErrInjected
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// cutRewindReader is a RewindReader whose reads go through a cutReader; a
// Rewind restarts the cut, so every attempt fails after n bytes.
type cutRewindReader struct {
	backends.RewindReader
	n   int64
	cut cutReader
}

func (c *cutRewindReader) Read(p []byte) (int, error) { return c.cut.Read(p) }

func (c *cutRewindReader) Rewind() error {
	c.cut.left = c.n
	return c.RewindReader.Rewind()
}
