// Package retry is a Backend decorator that retries transient failures
// (timeouts, dropped connections, 5xx, throttling) with exponential backoff
// and a bound, and gives up at once on permanent ones (a missing file, a
// bad range, permissions, credentials, a full disk, a cancelled context).
// Concrete backends contain no retry loops: retrying is a decorator, so
// every backend gets the same.
package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hoard-backup/hoard/backends"
)

// Options bound the retries.
type Options struct {
	// Tries is the number of attempts in all (default 6).
	Tries int
	// Initial is the first backoff (default 500 ms); it doubles up to Max (default 30 s).
	Initial, Max time.Duration
	// Logger receives one line per retry.
	Logger *slog.Logger
	// Sleep waits d or until ctx is done; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Backend retries the operations of the backend it wraps.
type Backend struct {
	be backends.Backend
	o  Options
}

var _ backends.Backend = (*Backend)(nil)

// New wraps be.
func New(be backends.Backend, o Options) *Backend {
	if o.Tries <= 0 {
		o.Tries = 6
	}
	if o.Initial <= 0 {
		o.Initial = 500 * time.Millisecond
	}
	if o.Max <= 0 {
		o.Max = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return &Backend{be: be, o: o}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Unwrap returns the wrapped backend.
func (b *Backend) Unwrap() backends.Backend { return b.be }

// Permanent reports whether retrying err cannot help.
func Permanent(err error) bool {
	return errors.Is(err, backends.ErrNotExist) || errors.Is(err, backends.ErrPermanent) ||
		errors.Is(err, backends.ErrRange) || errors.Is(err, backends.ErrExist) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// do runs op until it succeeds, fails permanently or runs out of tries.
func (b *Backend) do(ctx context.Context, what string, op func() error) error {
	delay := b.o.Initial
	var err error
	for try := 1; ; try++ {
		err = op()
		if err == nil || Permanent(err) || ctx.Err() != nil {
			return err
		}
		if try >= b.o.Tries {
			return fmt.Errorf("%s on %s: giving up after %d tries: %w (%w)", what, b.be.Location(), try, err, backends.ErrUnavailable)
		}
		// Full jitter keeps many hosts from retrying in step.
		d := delay/2 + rand.N(delay/2+1)
		// A server that says when to come back (HTTP 429/503 Retry-After) is obeyed, within Max.
		var ra interface{ RetryAfter() time.Duration }
		if errors.As(err, &ra) && ra.RetryAfter() > d {
			d = min(ra.RetryAfter(), b.o.Max)
		}
		b.o.Logger.Warn("retrying", "op", what, "backend", b.be.Location(), "try", try, "in", d.Round(time.Millisecond), "error", err)
		if serr := b.o.Sleep(ctx, d); serr != nil {
			return err
		}
		delay = min(2*delay, b.o.Max)
	}
}

// Location implements backends.Backend.
func (b *Backend) Location() string { return b.be.Location() }

// Save implements backends.Backend; the reader is rewound before each try.
func (b *Backend) Save(ctx context.Context, h backends.Handle, rd backends.RewindReader) error {
	first := true
	return b.do(ctx, "save "+h.String(), func() error {
		if !first {
			if err := rd.Rewind(); err != nil {
				return fmt.Errorf("rewind: %w (%w)", err, backends.ErrPermanent)
			}
		}
		first = false
		return b.be.Save(ctx, h, rd)
	})
}

// Load implements backends.Backend; fn is called again on a retry, as the
// interface allows.
func (b *Backend) Load(ctx context.Context, h backends.Handle, length int, offset int64, fn func(io.Reader) error) error {
	return b.do(ctx, "load "+h.String(), func() error {
		return b.be.Load(ctx, h, length, offset, fn)
	})
}

// Stat implements backends.Backend.
func (b *Backend) Stat(ctx context.Context, h backends.Handle) (backends.FileInfo, error) {
	var fi backends.FileInfo
	err := b.do(ctx, "stat "+h.String(), func() error {
		var err error
		fi, err = b.be.Stat(ctx, h)
		return err
	})
	return fi, err
}

// List implements backends.Backend. A listing that fails part way is
// started again, and names already passed to fn are skipped.
func (b *Backend) List(ctx context.Context, t backends.FileType, fn func(backends.FileInfo) error) error {
	seen := map[string]bool{}
	var fnErr error
	err := b.do(ctx, "list "+string(t), func() error {
		err := b.be.List(ctx, t, func(fi backends.FileInfo) error {
			if seen[fi.Name] {
				return nil
			}
			seen[fi.Name] = true
			if err := fn(fi); err != nil {
				fnErr = err
				return err
			}
			return nil
		})
		if fnErr != nil {
			return errors.Join(fnErr, backends.ErrPermanent) // the caller's own error: do not retry
		}
		return err
	})
	if fnErr != nil {
		return fnErr
	}
	return err
}

// Remove implements backends.Backend. A retried remove whose first try
// went through reports ErrNotExist; that counts as done.
func (b *Backend) Remove(ctx context.Context, h backends.Handle) error {
	tried := false
	return b.do(ctx, "remove "+h.String(), func() error {
		err := b.be.Remove(ctx, h)
		if tried && errors.Is(err, backends.ErrNotExist) {
			return nil
		}
		tried = true
		return err
	})
}

// Properties implements backends.Backend.
func (b *Backend) Properties() backends.Properties { return b.be.Properties() }

// Close implements backends.Backend.
func (b *Backend) Close() error { return b.be.Close() }

// Create implements backends.Creator when the wrapped backend does.
func (b *Backend) Create(ctx context.Context) error {
	c, ok := b.be.(backends.Creator)
	if !ok {
		return nil
	}
	return b.do(ctx, "create", func() error { return c.Create(ctx) })
}
