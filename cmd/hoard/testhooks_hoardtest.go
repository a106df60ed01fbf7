//go:build hoardtest

package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hoard-backup/hoard/chunk"
)

// The hooks of a test build (go build -tags hoardtest), which the
// end-to-end tests use; testhooks.go holds the empty ones of every other
// build.

// testCheckpoint returns a checkpoint hook that, at the point named by
// HOARD_TEST_STALL_AT, says so on standard error and waits to be killed:
// the crash tests stop a backup there.
func testCheckpoint(g *globals) func(string) {
	point := os.Getenv("HOARD_TEST_STALL_AT")
	if point == "" {
		return nil
	}
	var once sync.Once
	return func(p string) {
		if p != point {
			return
		}
		once.Do(func() {
			fmt.Fprintf(g.stderr, "hoard-test: stalled at %s\n", p)
			for {
				time.Sleep(time.Hour)
			}
		})
	}
}

// testPolynomial returns the chunker polynomial in
// HOARD_TEST_CHUNKER_POLYNOMIAL, for tests that need the same cut points
// every run.
func testPolynomial() (chunk.Pol, bool, error) {
	v := os.Getenv("HOARD_TEST_CHUNKER_POLYNOMIAL")
	if v == "" {
		return 0, false, nil
	}
	p, err := chunk.ParsePolynomial(v)
	if err != nil {
		return 0, false, fmt.Errorf("HOARD_TEST_CHUNKER_POLYNOMIAL: %w", err)
	}
	return p, true, nil
}

// pauseAt pauses for HOARD_TEST_PAUSE_FOR (default 3s) when
// HOARD_TEST_PAUSE_AT names point, after saying so on standard error, so
// that a test can run another command meanwhile (a prune during a restore).
func pauseAt(g *globals, point string) {
	if os.Getenv("HOARD_TEST_PAUSE_AT") != point {
		return
	}
	d, err := time.ParseDuration(os.Getenv("HOARD_TEST_PAUSE_FOR"))
	if err != nil {
		d = 3 * time.Second
	}
	fmt.Fprintf(g.stderr, "hoard-test: paused at %s\n", point)
	time.Sleep(d)
}
