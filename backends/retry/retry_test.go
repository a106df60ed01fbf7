package retry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/backendtest"
	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/backends/retry"
)

func noSleep(ctx context.Context, d time.Duration) error { return ctx.Err() }

// The decorated backend still honours the whole contract.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		return retry.New(mem.New(), retry.Options{Sleep: noSleep})
	})
}

var errTransient = errors.New("connection reset by peer")

func TestRetries(t *testing.T) {
	ctx := context.Background()
	h := backends.Handle{Type: backends.PackFile, Name: "aa11"}
	data := []byte("pack bytes")

	t.Run("transient save failures are retried, the reader rewound", func(t *testing.T) {
		f := &backendtest.Faulty{Backend: mem.New()}
		f.CutSave = func(backends.Handle) int64 { return 3 } // every try so far dies after 3 bytes
		var tries atomic.Int32
		f.FailSave = func(backends.Handle) error {
			if tries.Add(1) == 3 {
				f.CutSave = nil
			}
			return nil
		}
		b := retry.New(f, retry.Options{Sleep: noSleep})
		if err := b.Save(ctx, h, backends.NewByteReader(data)); err != nil {
			t.Fatalf("save: %v", err)
		}
		got, err := backends.LoadAll(ctx, b, h)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("load after retried save: %q %v", got, err)
		}
		if n := tries.Load(); n != 3 {
			t.Fatalf("%d tries, want 3", n)
		}
	})

	t.Run("permanent errors are not retried", func(t *testing.T) {
		for _, perm := range []error{backends.ErrNotExist, backends.ErrPermanent, backends.ErrRange} {
			var tries atomic.Int32
			f := &backendtest.Faulty{Backend: mem.New(), FailLoad: func(backends.Handle) error {
				tries.Add(1)
				return fmt.Errorf("wrapped: %w", perm)
			}}
			b := retry.New(f, retry.Options{Sleep: noSleep})
			err := b.Load(ctx, h, 0, 0, func(io.Reader) error { return nil })
			if !errors.Is(err, perm) || tries.Load() != 1 {
				t.Fatalf("%v: err %v after %d tries", perm, err, tries.Load())
			}
		}
	})

	t.Run("gives up after the bound, naming backend and file", func(t *testing.T) {
		var tries atomic.Int32
		f := &backendtest.Faulty{Backend: mem.New(), FailStat: func(backends.Handle) error {
			tries.Add(1)
			return errTransient
		}}
		var slept []time.Duration
		b := retry.New(f, retry.Options{Tries: 4, Initial: 100 * time.Millisecond, Max: 250 * time.Millisecond,
			Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }})
		_, err := b.Stat(ctx, h)
		if !errors.Is(err, errTransient) || tries.Load() != 4 {
			t.Fatalf("err %v after %d tries", err, tries.Load())
		}
		for _, want := range []string{"giving up after 4 tries", h.String(), f.Location()} {
			if !bytes.Contains([]byte(err.Error()), []byte(want)) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		if len(slept) != 3 || slept[2] > 250*time.Millisecond || slept[0] < 50*time.Millisecond {
			t.Fatalf("backoff %v", slept)
		}
	})

	t.Run("Retry-After is obeyed within the bound", func(t *testing.T) {
		var tries atomic.Int32
		f := &backendtest.Faulty{Backend: mem.New(), FailStat: func(backends.Handle) error {
			if tries.Add(1) == 1 {
				return throttled{wait: 7 * time.Second}
			}
			return nil
		}}
		var slept []time.Duration
		b := retry.New(f, retry.Options{Initial: 10 * time.Millisecond, Max: 5 * time.Second,
			Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }})
		if _, err := b.Stat(ctx, h); !errors.Is(err, backends.ErrNotExist) {
			t.Fatalf("stat after throttling: %v", err)
		}
		if len(slept) != 1 || slept[0] != 5*time.Second {
			t.Fatalf("slept %v, want [5s]", slept)
		}
	})

	t.Run("a cancelled context stops the retries", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		var tries atomic.Int32
		f := &backendtest.Faulty{Backend: mem.New(), FailStat: func(backends.Handle) error {
			if tries.Add(1) == 2 {
				cancel()
			}
			return errTransient
		}}
		b := retry.New(f, retry.Options{Sleep: noSleep})
		if _, err := b.Stat(cctx, h); err == nil || tries.Load() != 2 {
			t.Fatalf("err %v after %d tries", err, tries.Load())
		}
	})

	t.Run("list restarts without repeating names, and fn errors stop it", func(t *testing.T) {
		m := mem.New()
		for _, n := range []string{"a1", "b2", "c3"} {
			if err := m.Save(ctx, backends.Handle{Type: backends.IndexFile, Name: n}, backends.NewByteReader(data)); err != nil {
				t.Fatal(err)
			}
		}
		var lists atomic.Int32
		f := &backendtest.Faulty{Backend: m, FailList: func(backends.FileType) error {
			if lists.Add(1) == 1 {
				return errTransient
			}
			return nil
		}}
		b := retry.New(f, retry.Options{Sleep: noSleep})
		count := map[string]int{}
		if err := b.List(ctx, backends.IndexFile, func(fi backends.FileInfo) error { count[fi.Name]++; return nil }); err != nil {
			t.Fatal(err)
		}
		if len(count) != 3 || count["a1"] != 1 || count["b2"] != 1 || count["c3"] != 1 {
			t.Fatalf("listed %v", count)
		}
		stop := errors.New("enough")
		calls := 0
		err := b.List(ctx, backends.IndexFile, func(backends.FileInfo) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("fn error: %v after %d calls", err, calls)
		}
	})
}

type throttled struct{ wait time.Duration }

func (t throttled) Error() string             { return "429 too many requests" }
func (t throttled) RetryAfter() time.Duration { return t.wait }
