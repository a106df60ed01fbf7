package backendtest

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends"
)

// RunNetFaults checks, as parallel subtests of t, that a network backend
// fails cleanly when the network breaks in the middle of a transfer, and
// works again afterwards: an upload that is cut or stalls fails and leaves
// no visible file; a download that is cut or stalls fails (fn sees an
// error); the next call after the failure succeeds (it reconnects).
//
// open is called once per subtest with a Net's Dial and must return a
// backend over a new, empty location that dials all its connections
// through it. Its timeouts should be short (a few seconds): a stalled
// transfer fails only when they expire, and must do so within maxWait.
// RunNetFaults creates the backend if it is a backends.Creator and closes it.
func RunNetFaults(t *testing.T, maxWait time.Duration, open func(t *testing.T, dial DialFunc) backends.Backend) {
	t.Helper()
	s := &suite{seed: seed(t)}
	t.Logf("backendtest: seed %d (set %s to reproduce)", s.seed, SeedEnv)
	const size = 4 << 20 // large enough to outlast socket buffers
	tests := []struct {
		name   string
		fault  Fault
		upload bool
	}{
		{"SaveCut", Cut, true},
		{"SaveStall", Stall, true},
		{"LoadCut", Cut, false},
		{"LoadStall", Stall, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := NewNet(t)
			s := &suite{seed: s.seed, open: func(t *testing.T) backends.Backend { return open(t, n.Dial) }}
			be := s.backend(t)
			rng := s.rng(t)
			h := randomHandle(rng, backends.PackFile)
			data := randomBytes(rng, size)
			// A first call makes the connections, so that the fault hits
			// them in the middle of the transfer.
			save(t, be, randomHandle(rng, backends.KeyFile), randomBytes(rng, 100))

			var err error
			if tc.upload {
				n.BreakAfter(tc.fault, -1, size/4)
				err = within(t, n, maxWait, "Save", func() error {
					return be.Save(context.Background(), h, backends.NewByteReader(data))
				})
			} else {
				save(t, be, h, data)
				n.BreakAfter(tc.fault, size/4, -1)
				err = within(t, n, maxWait, "Load", func() error {
					return be.Load(context.Background(), h, 0, 0, func(rd io.Reader) error {
						_, err := io.Copy(io.Discard, rd)
						return err
					})
				})
			}
			if err == nil {
				t.Fatalf("transfer over a broken network (%v) succeeded", tc.fault)
			}
			t.Logf("transfer over a broken network failed with: %v", err)
			n.Heal()

			// The next calls reconnect.
			if tc.upload {
				AssertAbsent(t, be, h)
				save(t, be, h, data)
			}
			if got := LoadAll(t, be, h); !bytes.Equal(got, data) {
				t.Errorf("Load after the network healed: got %d bytes, want the %d saved", len(got), len(data))
			}
		})
	}
	t.Run("IdleCut", func(t *testing.T) {
		t.Parallel()
		n := NewNet(t)
		s := &suite{seed: s.seed, open: func(t *testing.T) backends.Backend { return open(t, n.Dial) }}
		be := s.backend(t)
		rng := s.rng(t)
		h := randomHandle(rng, backends.IndexFile)
		data := randomBytes(rng, 1000)
		save(t, be, h, data)
		n.Break(Cut)
		n.Heal()
		// The first call may fail on the dead connection it finds; the one
		// after it must not.
		for i := range 2 {
			_, err := be.Stat(context.Background(), h)
			if err == nil {
				break
			}
			if i == 1 {
				t.Fatalf("second Stat after the connections were cut: %v", err)
			}
			t.Logf("first Stat after the connections were cut: %v", err)
		}
		if got := LoadAll(t, be, h); !bytes.Equal(got, data) {
			t.Errorf("Load after the connections were cut: got %d bytes, want %d", len(got), len(data))
		}
	})
}

// within runs fn and fails t if fn takes longer than maxWait; it then
// closes n's connections to unblock fn.
func within(t *testing.T, n *Net, maxWait time.Duration, op string, fn func() error) error {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(maxWait):
		t.Errorf("%s on a broken network still runs after %v: a hang", op, maxWait)
		n.Close()
		err := <-done
		t.Logf("%s returned after %v", op, time.Since(start))
		return err
	}
}
