//go:build !hoardtest

package main

import "github.com/hoard-backup/hoard/chunk"

// The hooks through which the end-to-end tests steer the binary exist only
// in a test build (go build -tags hoardtest, see testhooks_hoardtest.go).
// In every other build, the binary users get, they do nothing and no
// HOARD_TEST_* variable is read.

// testCheckpoint returns the archiver's checkpoint hook: none.
func testCheckpoint(*globals) func(string) { return nil }

// testPolynomial returns the chunker polynomial a test asks init for: none.
func testPolynomial() (chunk.Pol, bool, error) { return 0, false, nil }

// pauseAt lets a test run a command in the middle of another: a no-op.
func pauseAt(*globals, string) {}
