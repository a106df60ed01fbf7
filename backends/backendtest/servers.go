package backendtest

import (
	"context"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends"
)

// Server is one place an adapter's tests keep repositories, for the
// adapters tested against more than one server (an in-process one and a
// real one, with and without TLS). Config returns the configuration of a
// new, empty repository folder that is removed at the end of t.
type Server[C any] struct {
	Name   string
	Config func(t *testing.T) C
}

// OpenNow opens cfg with open, failing t on error, and cancels the context
// right away: a backend must not keep the context of its Open.
func OpenNow[C any, B backends.Backend](t *testing.T, cfg C, open func(context.Context, C) (B, error)) B {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b, err := open(ctx, cfg)
	cancel()
	if err != nil {
		t.Fatalf("Open(%v): %v", cfg, err)
	}
	return b
}

// RunServers runs the suite (Run) against every server, in parallel
// subtests named after them.
func RunServers[C any](t *testing.T, servers []Server[C], open func(*testing.T, C) backends.Backend) {
	for _, srv := range servers {
		t.Run(srv.Name, func(t *testing.T) {
			t.Parallel()
			Run(t, func(t *testing.T) backends.Backend { return open(t, srv.Config(t)) })
		})
	}
}

// RunNetFaultsServers runs RunNetFaults (deadline d) against every server,
// in parallel subtests; withDial returns cfg with its dial function set to
// dial and its timeout to the suite's, as the adapter spells them.
func RunNetFaultsServers[C any](t *testing.T, d time.Duration, servers []Server[C], withDial func(cfg C, dial DialFunc, timeout time.Duration) C, open func(*testing.T, C) backends.Backend) {
	for _, srv := range servers {
		t.Run(srv.Name, func(t *testing.T) {
			t.Parallel()
			RunNetFaults(t, d, func(t *testing.T, dial DialFunc) backends.Backend {
				return open(t, withDial(srv.Config(t), dial, NetFaultsTimeout))
			})
		})
	}
}

// NetFaultsTimeout is the server timeout the network-fault suite sets: the
// test servers are separate processes, starved on a loaded machine; with
// 2 s, a save after the network healed failed once at a load of 20 on 2
// cores ("connection lost").
const NetFaultsTimeout = 5 * time.Second
