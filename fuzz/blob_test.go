package fuzz

import (
	"bytes"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/hoard-backup/hoard/chunk"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/pack"
)

// maxBlobAlloc bounds what opening one blob may allocate: the 64 MiB that
// Repository.OpenBlob reserves for a claimed raw length, plus the output of
// a decompression it then refuses, plus slack.
const maxBlobAlloc = 64<<20 + 2*(chunk.MaxSize+1<<20) + 8<<20

// FuzzBlob opens stored blobs (FORMAT.md 6.2). Arguments: stored is a
// stored blob as it would be read from a pack; payload is a compression byte
// and body that the target seals itself, so that decompression and the ID
// check are reached; rawLen is the raw length the index would claim.
//
// Repository-free, pack.OpenBlob under a fixed pack key must refuse what it
// cannot authenticate and give back any payload sealed with pack.SealBlob.
// Through repo.Repository.OpenBlob, every error is repo.ErrInvalidData, and
// a blob it returns has the claimed length, the decompressed content (checked
// against a second zstd decoder) and its ID. A valid blob of at most
// chunk.MaxSize bytes whose zstd window is at most 8 MiB must open. Frames
// with a larger window may be refused (RFC 8878 allows it; hoard's limit is
// 9 MiB): testdata/fuzz/FuzzBlob/window-16MiB is one.
func FuzzBlob(f *testing.F) {
	r, _ := newMemRepo(f)
	a := fixedAEAD(f, "pack")
	// Two reference decoders: lax decodes what OpenBlob may return; strict
	// decodes what it must accept, frames whose window is at most the 8 MiB
	// that RFC 8878 asks every decoder to support.
	lax, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(16<<20))
	if err != nil {
		f.Fatal(err)
	}
	strict, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(16<<20),
		zstd.WithDecoderMaxWindow(8<<20))
	if err != nil {
		f.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		f.Fatal(err)
	}
	for _, plain := range [][]byte{
		[]byte("x"),
		bytes.Repeat([]byte("hoard "), 200),
		make([]byte, 10000),
	} {
		for _, payload := range [][]byte{
			append([]byte{pack.CompressionNone}, plain...),
			enc.EncodeAll(plain, []byte{pack.CompressionZstd}),
		} {
			stored := pack.SealBlob(nil, a, r.BlobID(plain), payload)
			f.Add(stored, payload, uint32(len(plain)))
		}
	}
	f.Add([]byte{}, []byte{}, uint32(0))
	f.Add(make([]byte, crypto.Overhead), []byte{2, 0}, uint32(1))
	f.Fuzz(func(t *testing.T, stored, payload []byte, rawLen uint32) {
		bid := fixedID("blob")

		// Repository-free: arbitrary stored bytes under a fixed key.
		if p, err := pack.OpenBlob(nil, a, bid, stored); err != nil {
			if !errors.Is(err, crypto.ErrUnauthenticated) && !errors.Is(err, pack.ErrInvalid) {
				t.Fatalf("pack.OpenBlob: error is neither ErrUnauthenticated nor pack.ErrInvalid: %v", err)
			}
		} else if len(p) == 0 {
			t.Fatal("pack.OpenBlob returned an empty payload")
		}
		// Repository.OpenBlob decrypts in place: give it copies.
		if out, err := r.OpenBlob(a, pack.DataBlob, bid, bytes.Clone(stored), rawLen, nil); err == nil {
			if uint32(len(out)) != rawLen || r.BlobID(out) != bid {
				t.Fatalf("Repository.OpenBlob returned %d bytes that do not match length %d or ID", len(out), rawLen)
			}
		} else if !errors.Is(err, repo.ErrInvalidData) {
			t.Fatalf("Repository.OpenBlob: error without repo.ErrInvalidData: %v", err)
		}

		// Seal/open round trip of payload, and its damage.
		if len(payload) == 0 {
			return
		}
		want, wantOK := decodePayload(lax, payload)
		_, mustOpen := decodePayload(strict, payload)
		if wantOK {
			bid = r.BlobID(want)
		}
		sealed := pack.SealBlob(nil, a, bid, payload)
		p, err := pack.OpenBlob(nil, a, bid, sealed)
		if err != nil || !bytes.Equal(p, payload) {
			t.Fatalf("pack.OpenBlob(SealBlob(p)) = %x, %v; want %x", p, err, payload)
		}
		if _, err := pack.OpenBlob(nil, a, bid, flip(sealed, len(sealed)/2)); !errors.Is(err, crypto.ErrUnauthenticated) {
			t.Fatalf("damaged blob: %v", err)
		}
		if _, err := pack.OpenBlob(nil, a, fixedID("other"), sealed); !errors.Is(err, crypto.ErrUnauthenticated) {
			t.Fatalf("blob opened under another ID: %v", err)
		}

		open := func(rawLen uint32) ([]byte, error) {
			var out []byte
			var err error
			if n := allocated(func() { out, err = r.OpenBlob(a, pack.DataBlob, bid, bytes.Clone(sealed), rawLen, nil) }); n > maxBlobAlloc {
				t.Fatalf("opening a %d-byte blob (raw length %d) allocated %d MiB", len(sealed), rawLen, n>>20)
			}
			if err != nil {
				if !errors.Is(err, repo.ErrInvalidData) {
					t.Fatalf("error without repo.ErrInvalidData: %v", err)
				}
				return nil, err
			}
			if !wantOK || !bytes.Equal(out, want) {
				t.Fatalf("OpenBlob returned %d bytes; reference decoder: ok %v, %d bytes", len(out), wantOK, len(want))
			}
			if uint32(len(out)) != rawLen {
				t.Fatalf("OpenBlob returned %d bytes, raw length %d", len(out), rawLen)
			}
			return out, nil
		}
		open(rawLen)
		if mustOpen && len(want) <= chunk.MaxSize {
			// With the true raw length, as the index would give it, a data
			// blob of at most the chunker's maximum must open.
			if _, err := open(uint32(len(want))); err != nil {
				t.Fatalf("valid blob of %d bytes refused: %v", len(want), err)
			}
		}
	})
}

// decodePayload decodes a payload with a decoder independent of the
// repository's: the reference for what OpenBlob must return.
func decodePayload(dec *zstd.Decoder, payload []byte) ([]byte, bool) {
	switch payload[0] {
	case pack.CompressionNone:
		return payload[1:], true
	case pack.CompressionZstd:
		out, err := dec.DecodeAll(payload[1:], nil)
		return out, err == nil
	}
	return nil, false
}
