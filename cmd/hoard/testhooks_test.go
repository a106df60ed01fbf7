//go:build !hoardtest

package main

import (
	"context"
	"testing"

	"github.com/hoard-backup/hoard/backends/local"
	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/backends/retry"
)

// TestNoTestHooks checks the build users get (no hoardtest tag): the
// variables the end-to-end tests steer a test build with change nothing.
func TestNoTestHooks(t *testing.T) {
	t.Setenv("HOARD_TEST_STALL_AT", "data")
	t.Setenv("HOARD_TEST_CHUNKER_POLYNOMIAL", "3da3358b4dc173")
	if testCheckpoint(&globals{}) != nil {
		t.Error("HOARD_TEST_STALL_AT set a checkpoint hook")
	}
	if p, ok, err := testPolynomial(); ok || err != nil {
		t.Errorf("HOARD_TEST_CHUNKER_POLYNOMIAL gave %v, %v, %v", p, ok, err)
	}
}

// TestUploadsLocal: a local disk, found by its type through decorators,
// gets one upload at a time; other backends their own connection count.
func TestUploadsLocal(t *testing.T) {
	t.Setenv("HOARD_CONNECTIONS", "")
	lb, err := local.Open(context.Background(), local.Config{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if n := uploads(retry.New(lb, retry.Options{})); n != 1 {
		t.Errorf("uploads to a local disk behind retries = %d, want 1", n)
	}
	m := mem.New()
	if n, want := uploads(retry.New(m, retry.Options{})), m.Properties().Connections; n != want {
		t.Errorf("uploads to a mem backend = %d, want its %d connections", n, want)
	}
}
