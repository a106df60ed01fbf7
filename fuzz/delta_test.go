package fuzz

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/pack"
)

// FuzzDeltaBlob opens hostile delta blobs (FORMAT.md 14.1) through
// repo.Repository.OpenEntry. The repository holds one full blob, the base;
// frame is the zstd frame of a delta against it that the target seals
// under a fixed pack key, naming the base (or, when otherBase is set, a
// base no index names), with rawLen as the claimed raw length.
//
// Every error is repo.ErrInvalidData; a blob that opens has the claimed
// length, its keyed ID, and the content a reference decoder with the base
// as raw dictionary gives. Opening allocates no more than FuzzBlob allows.
func FuzzDeltaBlob(f *testing.F) {
	ctx := context.Background()
	r, _ := newMemRepo(f)
	base := bytes.Repeat([]byte("INSERT INTO users VALUES (1, 'a@example.com', '2026-12-01');\n"), 300)
	res, err := r.SaveBlob(ctx, pack.DataBlob, base)
	if err != nil {
		f.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		f.Fatal(err)
	}
	baseID := res.ID
	a := fixedAEAD(f, "pack")
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderDictRaw(0, base))
	if err != nil {
		f.Fatal(err)
	}
	ref, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(16<<20),
		zstd.WithDecoderDictRaw(0, base))
	if err != nil {
		f.Fatal(err)
	}
	for _, plain := range [][]byte{
		bytes.Replace(base, []byte("2026-12-01"), []byte("2026-12-02"), 7),
		append(bytes.Clone(base), "INSERT INTO users VALUES (2, 'b@example.com', '2026-12-02');\n"...),
		[]byte("x"),
	} {
		frame := enc.EncodeAll(plain, nil)
		f.Add(frame, uint32(len(plain)), false)
		f.Add(frame, uint32(len(plain)+1), false)
		f.Add(frame, uint32(len(plain)), true)
		f.Add(frame[:len(frame)-1], uint32(len(plain)), false)
	}
	f.Add([]byte{}, uint32(0), false)
	f.Fuzz(func(t *testing.T, frame []byte, rawLen uint32, otherBase bool) {
		named := baseID
		if otherBase {
			named = fixedID("no such base")
		}
		payload := append([]byte{pack.CompressionDelta}, named[:]...)
		payload = append(payload, frame...)
		want, refErr := ref.DecodeAll(frame, nil)
		bid := fixedID("delta")
		if refErr == nil {
			bid = r.BlobID(want)
		}
		sealed := pack.SealBlob(nil, a, bid, payload)
		e := pack.Entry{Type: pack.DataBlob, ID: bid, RawLength: rawLen, Base: named}
		var out []byte
		if n := allocated(func() { out, err = r.OpenEntry(ctx, a, e, sealed, nil) }); n > maxBlobAlloc {
			t.Fatalf("opening a %d-byte delta (raw length %d) allocated %d MiB", len(sealed), rawLen, n>>20)
		}
		if err != nil {
			if !errors.Is(err, repo.ErrInvalidData) {
				t.Fatalf("error without repo.ErrInvalidData: %v", err)
			}
			return
		}
		if otherBase {
			t.Fatal("a delta against a base no index names opened")
		}
		if refErr != nil || !bytes.Equal(out, want) || uint32(len(out)) != rawLen || r.BlobID(out) != bid {
			t.Fatalf("opened %d bytes (raw length %d); reference: %d bytes, %v", len(out), rawLen, len(want), refErr)
		}
		// The index naming another base than the payload is damage.
		e.Base = fixedID("another base")
		if _, err := r.OpenEntry(ctx, a, e, pack.SealBlob(nil, a, bid, payload), nil); !errors.Is(err, repo.ErrInvalidData) {
			t.Fatalf("a delta whose index entry names another base: %v", err)
		}
	})
}
