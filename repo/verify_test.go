package repo_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/pack"
)

// TestVerifyPacksEveryByte changes each byte of a pack in turn, and adds and
// removes one at its end: VerifyPacks, which does not hash the pack, must
// report every change as damage of the pack or of one of its blobs, since
// the seals of its blobs and header, laid end to end, cover every byte.
func TestVerifyPacksEveryByte(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be := newRepo(t)
	for _, data := range [][]byte{
		[]byte("short, stored as it is"),
		bytes.Repeat([]byte("compress me "), 100),
		[]byte("a third blob"),
	} {
		if _, err := r.SaveBlob(ctx, pack.DataBlob, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	packs := r.Index().Packs()
	if len(packs) != 1 {
		t.Fatalf("%d packs, want 1", len(packs))
	}
	read := repo.PackRead{Pack: packs[0]}
	r.Index().Each(func(_ repo.PackRef, e repo.PackEntry) { read.Blobs = append(read.Blobs, e) })
	h := backends.Handle{Type: backends.PackFile, Name: packs[0].ID.String()}
	orig, err := backends.LoadAll(ctx, be, h)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(stored []byte) (damaged bool) {
		t.Helper()
		if err := be.Save(ctx, h, backends.NewByteReader(stored)); err != nil {
			t.Fatal(err)
		}
		err := r.VerifyPacks(ctx, []repo.PackRead{read}, repo.StreamOptions{}, func(_ int, packErr error, bad []repo.BlobFailure) error {
			damaged = packErr != nil || len(bad) > 0
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return damaged
	}
	if verify(orig) {
		t.Fatal("the pack as written is reported damaged")
	}
	for i := range orig {
		for _, bit := range []byte{0x01, 0x80} {
			d := bytes.Clone(orig)
			d[i] ^= bit
			if !verify(d) {
				t.Fatalf("byte %d of %d changed (^%#x): not found", i, len(orig), bit)
			}
		}
	}
	if !verify(append(bytes.Clone(orig), 0)) {
		t.Error("a byte added at the end: not found")
	}
	if !verify(orig[:len(orig)-1]) {
		t.Error("the last byte removed: not found")
	}
}
