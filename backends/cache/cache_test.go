package cache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/backendtest"
	"github.com/hoard-backup/hoard/backends/cache"
	"github.com/hoard-backup/hoard/backends/mem"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		c, err := cache.New(mem.New(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

func named(t backends.FileType, data []byte) backends.Handle {
	sum := sha256.Sum256(data)
	return backends.Handle{Type: t, Name: hex.EncodeToString(sum[:])}
}

func TestCaching(t *testing.T) {
	ctx := context.Background()
	var loads atomic.Int32
	inner := &backendtest.Faulty{Backend: mem.New(), FailLoad: func(backends.Handle) error { loads.Add(1); return nil }}
	dir := t.TempDir()
	c, err := cache.New(inner, dir)
	if err != nil {
		t.Fatal(err)
	}
	snap := []byte("a sealed snapshot")
	tree := []byte("a tree pack")
	data := []byte("a data pack")
	hs, ht, hd := named(backends.SnapshotFile, snap), named(backends.PackFile, tree), named(backends.PackFile, data)
	// Written by another host: straight into the backend.
	for h, b := range map[backends.Handle][]byte{hs: snap, ht: tree, hd: data} {
		if err := inner.Backend.Save(ctx, h, backends.NewByteReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	c.MarkTreePacks([]string{ht.Name})
	get := func(h backends.Handle) []byte {
		b, err := backends.LoadAll(ctx, c, h)
		if err != nil {
			t.Fatalf("load %s: %v", h, err)
		}
		return b
	}
	for i := 0; i < 3; i++ {
		if !bytes.Equal(get(hs), snap) || !bytes.Equal(get(ht), tree) || !bytes.Equal(get(hd), data) {
			t.Fatal("wrong content")
		}
	}
	// Snapshot and tree pack once each; the data pack every time.
	if n := loads.Load(); n != 2+3 {
		t.Fatalf("%d loads from the backend, want 5", n)
	}
	// A tampered cached copy is not used.
	if err := os.WriteFile(filepath.Join(dir, "snapshots", hs.Name), []byte("forged"), 0o600); err != nil {
		t.Fatal(err)
	}
	c2, _ := cache.New(inner, dir)
	loads.Store(0)
	b, err := backends.LoadAll(ctx, c2, hs)
	if err != nil || !bytes.Equal(b, snap) || loads.Load() != 1 {
		t.Fatalf("tampered cache: %q %v, %d loads", b, err, loads.Load())
	}
	// A file removed from the backend by another host leaves the cache at the next listing.
	if err := inner.Backend.Remove(ctx, hs); err != nil {
		t.Fatal(err)
	}
	if err := c2.List(ctx, backends.SnapshotFile, func(backends.FileInfo) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "snapshots", hs.Name)); !os.IsNotExist(err) {
		t.Fatalf("stale cache entry kept: %v", err)
	}
	// Ranged loads from the cache.
	part, err := loadRange(ctx, c2, ht, 3, 2)
	if err != nil || string(part) != string(tree[2:5]) {
		t.Fatalf("range: %q %v", part, err)
	}
}

func loadRange(ctx context.Context, be backends.Backend, h backends.Handle, length int, off int64) ([]byte, error) {
	var out []byte
	err := be.Load(ctx, h, length, off, func(rd io.Reader) error {
		var buf bytes.Buffer
		_, err := buf.ReadFrom(rd)
		out = buf.Bytes()
		return err
	})
	return out, err
}
