package fuzz

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/pack"
)

// sampleHeaders returns headers of both kinds, empty and full, with the
// offsets DecodeHeader computes.
func sampleHeaders(tb testing.TB) []pack.Header {
	tb.Helper()
	keys, err := crypto.NewKeys(testSecrets(tb))
	if err != nil {
		tb.Fatal(err)
	}
	wrapped, err := keys.WrapPackKey(fixedKey("pack"))
	if err != nil {
		tb.Fatal(err)
	}
	entries := func(t pack.BlobType, n int) []pack.Entry {
		var out []pack.Entry
		var off uint32
		for i := 0; i < n; i++ {
			l := uint32(crypto.Overhead + 1 + i*100)
			out = append(out, pack.Entry{Type: t, ID: fixedID(string(rune('a' + i))), Offset: off, Length: l, RawLength: uint32(i * 300)})
			off += l
		}
		return out
	}
	deltas := entries(pack.DataBlob, 4)
	deltas[1].Base = fixedID("base")
	deltas[3].Base = fixedID("a")
	return []pack.Header{
		{Kind: pack.DataBlob, WrappedKey: wrapped, Entries: deltas},
		{Kind: pack.DataBlob, WrappedKey: wrapped, Entries: []pack.Entry{}},
		{Kind: pack.DataBlob, WrappedKey: wrapped, Entries: entries(pack.DataBlob, 3)},
		{Kind: pack.TreeBlob, WrappedKey: fixedKey("tree pack"), Entries: entries(pack.TreeBlob, 1)},
		{Kind: pack.TreeBlob, Entries: entries(pack.TreeBlob, 5)},
	}
}

// checkHeader asserts what a decoded header must satisfy: entries of the
// pack's kind, laid out from offset 0 without gaps, each able to hold a
// sealed payload.
func checkHeader(t *testing.T, h pack.Header) uint64 {
	t.Helper()
	if !h.Kind.Valid() {
		t.Fatalf("accepted pack kind %d", h.Kind)
	}
	var off uint64
	for i, e := range h.Entries {
		if e.Type != h.Kind {
			t.Fatalf("entry %d: %s blob in %s pack", i, e.Type, h.Kind)
		}
		if uint64(e.Offset) != off {
			t.Fatalf("entry %d at offset %d, want %d", i, e.Offset, off)
		}
		if e.Length < crypto.Overhead+1 {
			t.Fatalf("entry %d of %d bytes accepted", i, e.Length)
		}
		off += uint64(e.Length)
	}
	return off
}

// FuzzPackHeader feeds DecodeHeader arbitrary plaintext. The header format
// has exactly one encoding, so an accepted header must encode back to the
// same bytes and decode to the same value.
func FuzzPackHeader(f *testing.F) {
	for _, h := range sampleHeaders(f) {
		b := pack.EncodeHeader(h)
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(bytes.Clone(b), 0))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := pack.DecodeHeader(data)
		if err != nil {
			if !errors.Is(err, pack.ErrInvalid) {
				t.Fatalf("error without pack.ErrInvalid: %v", err)
			}
			return
		}
		checkHeader(t, h)
		want := 8 + len(h.WrappedKey) + len(h.Entries)*pack.EntrySize
		if data[0] == 2 {
			want += len(h.Entries)
			for _, e := range h.Entries {
				if e.IsDelta() {
					want += 32
				}
			}
		}
		if want != len(data) {
			t.Fatalf("accepted %d bytes for a header of %d", len(data), want)
		}
		enc := pack.EncodeHeader(h)
		if !bytes.Equal(enc, data) {
			t.Fatalf("EncodeHeader(DecodeHeader(b)) != b\n got %x\nwant %x", enc, data)
		}
		h2, err := pack.DecodeHeader(enc)
		if err != nil {
			t.Fatalf("re-encoded header rejected: %v", err)
		}
		if !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip changed the header:\n%+v\n%+v", h, h2)
		}
	})
}

// FuzzPackParse runs pack.Parse with a fixed metadata key over arbitrary
// bytes, and over packs the target assembles itself from arbitrary blob bytes
// and an arbitrary header plaintext sealed with that key, so that the checks
// behind the seal (OpenHeader) are reached.
func FuzzPackParse(f *testing.F) {
	meta := fixedAEAD(f, "metadata")
	for i, h := range sampleHeaders(f) {
		w, err := pack.NewWriter(h.Kind, fixedKey("pack"), h.WrappedKey, nil)
		if err != nil {
			f.Fatal(err)
		}
		for j := 0; j < i; j++ {
			payload := append([]byte{pack.CompressionNone}, bytes.Repeat([]byte{byte(j)}, j*50)...)
			w.Add(fixedID(string(rune('A'+j))), payload, len(payload)-1)
		}
		data, hdr := w.Finish(meta)
		f.Add(data, pack.EncodeHeader(hdr))
		blobsEnd := checkEnd(hdr)
		f.Add(data[:blobsEnd], pack.EncodeHeader(hdr))
	}
	f.Add([]byte(pack.Magic), []byte{})
	f.Fuzz(func(t *testing.T, data, header []byte) {
		parse := func(p []byte) (pack.Header, bool) {
			h, err := pack.Parse(meta, p)
			if err != nil {
				if !errors.Is(err, pack.ErrInvalid) && !errors.Is(err, crypto.ErrUnauthenticated) {
					t.Fatalf("error is neither pack.ErrInvalid nor crypto.ErrUnauthenticated: %v", err)
				}
				return h, false
			}
			end := checkHeader(t, h)
			n := int(binary.LittleEndian.Uint32(p[len(p)-pack.TrailerSize:]))
			if want := uint64(len(p) - pack.TrailerSize - n); end != want {
				t.Fatalf("blobs end at %d, sealed header starts at %d", end, want)
			}
			h2, err := pack.DecodeHeader(pack.EncodeHeader(h))
			if err != nil || !reflect.DeepEqual(h, h2) {
				t.Fatalf("header round trip: %v\n%+v\n%+v", err, h, h2)
			}
			return h, true
		}
		parse(data)

		// data as the blobs, header as the plaintext header.
		p := meta.Seal(bytes.Clone(data), header, []byte(crypto.LabelPackHeader))
		p = binary.LittleEndian.AppendUint32(p, uint32(len(p)-len(data)))
		p = append(p, pack.Magic...)
		if h, ok := parse(p); ok && !bytes.Equal(pack.EncodeHeader(h), header) {
			t.Fatalf("accepted header %x encodes as %x", header, pack.EncodeHeader(h))
		}
		// The same header under another label must not open.
		q := bytes.Clone(p)
		copy(q[len(data):], meta.Seal(nil, header, []byte(crypto.LabelIndex)))
		if _, err := pack.Parse(meta, q); err == nil {
			t.Fatal("header sealed under the index label accepted")
		}
	})
}

func checkEnd(h pack.Header) int {
	if len(h.Entries) == 0 {
		return 0
	}
	e := h.Entries[len(h.Entries)-1]
	return int(e.Offset + e.Length)
}
