package repo_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/index"
	"github.com/hoard-backup/hoard/repo/pack"
)

// TestLoadIndexUnion replaces the index file of a pack by two that each
// name the pack with part of its blobs (as two index files naming the same
// pack do). Before the index was the union of its files, the pack's entries
// came from whichever file was added first, and half the blobs were "not
// in index"; every load must now find every blob.
func TestLoadIndexUnion(t *testing.T) {
	ctx := context.Background()
	r, be := newRepo(t)
	var blobs [][]byte
	var ids []id.ID
	for i := range 6 {
		b := []byte(fmt.Sprintf("blob %d of the union test, long enough to be compressed: %s", i, bytes.Repeat([]byte{'x'}, 100+i)))
		res, err := r.SaveBlob(ctx, pack.DataBlob, b)
		if err != nil {
			t.Fatal(err)
		}
		blobs, ids = append(blobs, b), append(ids, res.ID)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	names, err := r.List(ctx, backends.IndexFile)
	if err != nil || len(names) != 1 {
		t.Fatalf("index files %v, %v", names, err)
	}
	plain, err := r.LoadUnpacked(ctx, backends.IndexFile, names[0])
	if err != nil {
		t.Fatal(err)
	}
	f, err := index.Decode(plain)
	if err != nil || len(f.Packs) != 1 || len(f.Packs[0].Blobs) != 6 {
		t.Fatalf("index file: %+v, %v", f, err)
	}
	for _, part := range [][2]int{{0, 3}, {3, 6}} {
		p := f.Packs[0]
		p.Blobs = p.Blobs[part[0]:part[1]]
		if _, err := r.SaveUnpacked(ctx, backends.IndexFile, index.Encode(&index.File{Packs: []index.Pack{p}})); err != nil {
			t.Fatal(err)
		}
	}
	if err := be.Remove(ctx, backends.Handle{Type: backends.IndexFile, Name: names[0].String()}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	for round := range 10 {
		r := reopen(t, be, passphrase)
		for i, bid := range ids {
			got, err := r.LoadBlob(ctx, pack.DataBlob, bid, nil)
			if err != nil || !bytes.Equal(got, blobs[i]) {
				t.Fatalf("round %d: blob %d: %v", round, i, err)
			}
		}
		if n := r.Index().Len(); n != 6 {
			t.Fatalf("round %d: %d index entries, want 6", round, n)
		}
		r.Close()
	}
}
