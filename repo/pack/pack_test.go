package pack_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
)

func testKey(label string) []byte {
	k := sha256.Sum256([]byte("pack test " + label))
	return k[:]
}

func testAEAD(t *testing.T, label string) *crypto.AEAD {
	t.Helper()
	a, err := crypto.NewAEAD(testKey(label))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func blobID(i int) id.ID { return id.Hash([]byte{byte(i), byte(i >> 8)}) }

// entries returns n entries of type t laid out from offset 0.
func entries(t pack.BlobType, lengths ...uint32) []pack.Entry {
	out := []pack.Entry{}
	var off uint32
	for i, l := range lengths {
		out = append(out, pack.Entry{Type: t, ID: blobID(i), Offset: off, Length: l, RawLength: l * 3})
		off += l
	}
	return out
}

const minLen = crypto.Overhead + 1

func TestHeaderRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    pack.Header
	}{
		{"empty data pack", pack.Header{Kind: pack.DataBlob, WrappedKey: bytes.Repeat([]byte{7}, 190), Entries: entries(pack.DataBlob)}},
		{"data pack", pack.Header{Kind: pack.DataBlob, WrappedKey: bytes.Repeat([]byte{7}, 190), Entries: entries(pack.DataBlob, minLen, 1000, 1<<20)}},
		{"tree pack", pack.Header{Kind: pack.TreeBlob, WrappedKey: testKey("tree"), Entries: entries(pack.TreeBlob, 300)}},
		{"no key", pack.Header{Kind: pack.TreeBlob, Entries: entries(pack.TreeBlob, minLen, minLen)}},
		{"4 GiB", pack.Header{Kind: pack.DataBlob, Entries: entries(pack.DataBlob, 1<<31, 1<<31-minLen, minLen)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := pack.EncodeHeader(tc.h)
			if want := 8 + len(tc.h.WrappedKey) + pack.EntrySize*len(tc.h.Entries); len(b) != want {
				t.Fatalf("encoded %d bytes, want %d", len(b), want)
			}
			got, err := pack.DecodeHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.h) {
				t.Fatalf("got %+v\nwant %+v", got, tc.h)
			}
		})
	}
}

func TestDecodeHeaderRejects(t *testing.T) {
	valid := pack.EncodeHeader(pack.Header{Kind: pack.DataBlob, WrappedKey: []byte{1, 2, 3}, Entries: entries(pack.DataBlob, 100, 200)})
	change := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	const entriesAt = 4 + 3 + 4
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"seven bytes", valid[:7]},
		{"version 0", change(func(b []byte) []byte { b[0] = 0; return b })},
		{"version 2", change(func(b []byte) []byte { b[0] = 2; return b })},
		{"kind 2", change(func(b []byte) []byte { b[1] = 2; return b })},
		{"key beyond the end", change(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[2:], uint16(len(b))); return b })},
		{"key eats the count", change(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[2:], uint16(len(b)-6)); return b })},
		{"count too large", change(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[7:], 3); return b })},
		{"count huge", change(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[7:], 1<<32-1); return b })},
		{"count too small", change(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[7:], 1); return b })},
		{"trailing byte", append(bytes.Clone(valid), 0)},
		{"truncated entry", valid[:len(valid)-1]},
		{"tree blob in data pack", change(func(b []byte) []byte { b[entriesAt+pack.EntrySize] = byte(pack.TreeBlob); return b })},
		{"blob shorter than a seal", change(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[entriesAt+1:], crypto.Overhead)
			return b
		})},
		{"pack over 4 GiB", pack.EncodeHeader(pack.Header{Kind: pack.DataBlob, Entries: entries(pack.DataBlob, 1<<32-1, 1<<32-1, minLen)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if h, err := pack.DecodeHeader(tc.b); !errors.Is(err, pack.ErrInvalid) {
				t.Fatalf("got %+v, %v; want pack.ErrInvalid", h, err)
			}
		})
	}
}

func TestParseTrailer(t *testing.T) {
	trailer := func(n uint32, magic string) []byte {
		return append(binary.LittleEndian.AppendUint32(nil, n), magic...)
	}
	for _, tc := range []struct {
		name     string
		tail     []byte
		packSize int64
		want     int // 0: error
	}{
		{"smallest header", trailer(crypto.Overhead+8, pack.Magic), crypto.Overhead + 16, crypto.Overhead + 8},
		{"after blobs", trailer(500, pack.Magic), 10000, 500},
		{"largest header", trailer(pack.MaxHeaderSize, pack.Magic), pack.MaxHeaderSize + 8, pack.MaxHeaderSize},
		{"wrong magic", trailer(500, "HPK2"), 10000, 0},
		{"short tail", trailer(500, pack.Magic)[1:], 10000, 0},
		{"header shorter than a sealed empty header", trailer(crypto.Overhead+7, pack.Magic), 10000, 0},
		{"header over the limit", trailer(pack.MaxHeaderSize+1, pack.Magic), 1 << 30, 0},
		{"header longer than the pack", trailer(500, pack.Magic), 507, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := pack.ParseTrailer(tc.tail, tc.packSize)
			switch {
			case tc.want == 0 && !errors.Is(err, pack.ErrInvalid):
				t.Fatalf("got %d, %v; want pack.ErrInvalid", n, err)
			case tc.want != 0 && (err != nil || n != tc.want):
				t.Fatalf("got %d, %v; want %d", n, err, tc.want)
			}
		})
	}
}

// writePack builds a pack of the given payloads (compression byte || body).
func writePack(t *testing.T, kind pack.BlobType, meta *crypto.AEAD, payloads ...[]byte) ([]byte, pack.Header) {
	t.Helper()
	w, err := pack.NewWriter(kind, testKey("pack key"), []byte("wrapped"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range payloads {
		w.Add(blobID(i), p, len(p)-1)
	}
	if w.Count() != len(payloads) {
		t.Fatalf("Count %d, want %d", w.Count(), len(payloads))
	}
	return w.Finish(meta)
}

func TestWriterParseOpen(t *testing.T) {
	meta := testAEAD(t, "meta")
	blobKey := testAEAD(t, "pack key")
	for _, tc := range []struct {
		name     string
		kind     pack.BlobType
		payloads [][]byte
	}{
		{"empty", pack.DataBlob, nil},
		{"one data blob", pack.DataBlob, [][]byte{{pack.CompressionNone, 'x'}}},
		{"tree blobs", pack.TreeBlob, [][]byte{{pack.CompressionNone}, append([]byte{pack.CompressionZstd}, bytes.Repeat([]byte("z"), 5000)...), {pack.CompressionNone, 1, 2, 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, h := writePack(t, tc.kind, meta, tc.payloads...)
			got, err := pack.Parse(meta, data)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Entries)+len(h.Entries) > 0 && !reflect.DeepEqual(got, h) {
				t.Fatalf("Parse: %+v\nFinish: %+v", got, h)
			}
			if got.Kind != tc.kind || !bytes.Equal(got.WrappedKey, []byte("wrapped")) || len(got.Entries) != len(tc.payloads) {
				t.Fatalf("header %+v", got)
			}
			for i, e := range got.Entries {
				if e.ID != blobID(i) || e.Type != tc.kind || int(e.RawLength) != len(tc.payloads[i])-1 ||
					int(e.Length) != len(tc.payloads[i])+crypto.Overhead {
					t.Fatalf("entry %d: %+v", i, e)
				}
				p, err := pack.OpenBlob([]byte("prefix"), blobKey, e.ID, data[e.Offset:e.Offset+e.Length])
				if err != nil {
					t.Fatalf("entry %d: %v", i, err)
				}
				if !bytes.Equal(p, append([]byte("prefix"), tc.payloads[i]...)) {
					t.Fatalf("entry %d: payload %x", i, p)
				}
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	meta := testAEAD(t, "meta")
	data, h := writePack(t, pack.DataBlob, meta, []byte{0, 1, 2, 3}, []byte{0, 4, 5})
	blobsEnd := int(h.Entries[1].Offset + h.Entries[1].Length)
	resealed := func(label string, hdr pack.Header, blobs []byte) []byte {
		p := meta.Seal(bytes.Clone(blobs), pack.EncodeHeader(hdr), []byte(label))
		p = binary.LittleEndian.AppendUint32(p, uint32(len(p)-len(blobs)))
		return append(p, pack.Magic...)
	}
	for _, tc := range []struct {
		name string
		data []byte
		meta *crypto.AEAD
		want error
	}{
		{"nothing", nil, meta, pack.ErrInvalid},
		{"trailer only", data[len(data)-pack.TrailerSize:], meta, pack.ErrInvalid},
		{"flipped header byte", flipped(data, blobsEnd+20), meta, crypto.ErrUnauthenticated},
		{"flipped magic", flipped(data, len(data)-1), meta, pack.ErrInvalid},
		{"wrong metadata key", data, testAEAD(t, "other"), crypto.ErrUnauthenticated},
		{"first byte missing", data[1:], meta, pack.ErrInvalid},
		{"byte appended", append(bytes.Clone(data), 0), meta, pack.ErrInvalid},
		{"header under the index label", resealed(crypto.LabelIndex, h, data[:blobsEnd]), meta, crypto.ErrUnauthenticated},
		{"blobs longer than the header says", resealed(crypto.LabelPackHeader, h, append(bytes.Clone(data[:blobsEnd]), 0)), meta, pack.ErrInvalid},
		{"blobs shorter than the header says", resealed(crypto.LabelPackHeader, h, data[:blobsEnd-1]), meta, pack.ErrInvalid},
		{"empty header after blobs", resealed(crypto.LabelPackHeader, pack.Header{Kind: pack.DataBlob}, data[:blobsEnd]), meta, pack.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := pack.Parse(tc.meta, tc.data); !errors.Is(err, tc.want) {
				t.Fatalf("got %+v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func flipped(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func TestOpenBlobRejects(t *testing.T) {
	a := testAEAD(t, "pack key")
	good := pack.SealBlob(nil, a, blobID(1), []byte{pack.CompressionNone, 'x'})
	for _, tc := range []struct {
		name   string
		a      *crypto.AEAD
		id     id.ID
		stored []byte
		want   error
	}{
		{"another ID", a, blobID(2), good, crypto.ErrUnauthenticated},
		{"another key", testAEAD(t, "other"), blobID(1), good, crypto.ErrUnauthenticated},
		{"flipped nonce", a, blobID(1), flipped(good, 0), crypto.ErrUnauthenticated},
		{"flipped tag", a, blobID(1), flipped(good, len(good)-1), crypto.ErrUnauthenticated},
		{"shorter than a seal", a, blobID(1), good[:crypto.Overhead-1], crypto.ErrUnauthenticated},
		{"empty payload", a, blobID(1), pack.SealBlob(nil, a, blobID(1), nil), pack.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := pack.OpenBlob(nil, tc.a, tc.id, tc.stored); !errors.Is(err, tc.want) {
				t.Fatalf("got %x, %v; want %v", p, err, tc.want)
			}
		})
	}
}

func TestBlobType(t *testing.T) {
	for _, tc := range []struct {
		t     pack.BlobType
		s     string
		valid bool
	}{
		{pack.DataBlob, "data", true},
		{pack.TreeBlob, "tree", true},
		{2, "blobtype(2)", false},
		{255, "blobtype(255)", false},
	} {
		if tc.t.String() != tc.s || tc.t.Valid() != tc.valid {
			t.Errorf("BlobType(%d): %q %v, want %q %v", uint8(tc.t), tc.t.String(), tc.t.Valid(), tc.s, tc.valid)
		}
	}
}

// TestWriterFits: blobs added while Fits says so, and the header, stay in
// the buffer the Writer was given; Fits refuses the blob that would not.
func TestWriterFits(t *testing.T) {
	meta := testAEAD(t, "meta")
	for _, size := range []int{100, 4000, 70000} {
		buf := make([]byte, 0, 1<<20)
		w, err := pack.NewWriter(pack.DataBlob, testKey("pack key"), []byte("wrapped"), buf)
		if err != nil {
			t.Fatal(err)
		}
		payload := make([]byte, size)
		n := 0
		for w.Fits(len(payload)) {
			w.Add(blobID(n), payload, size)
			n++
		}
		data, h := w.Finish(meta)
		if &data[:1][0] != &buf[:1][0] {
			t.Errorf("payloads of %d bytes: the buffer grew after %d blobs", size, n)
		}
		// One more would have overflowed: the refusal was not premature.
		if slack := cap(buf) - len(data); slack >= size+crypto.Overhead+pack.EntrySize {
			t.Errorf("payloads of %d bytes: refused with %d bytes left", size, slack)
		}
		if len(h.Entries) != n {
			t.Errorf("%d entries, want %d", len(h.Entries), n)
		}
	}
}

// TestDecodeHeaderShortV2: a version 2 header whose count fits the bytes
// at the shortest entry size, but whose delta entries leave too few bytes
// for the last entry, is an error, not a panic (found by FuzzPackHeader).
func TestDecodeHeaderShortV2(t *testing.T) {
	b := []byte{2, byte(pack.DataBlob), 0, 0, 2, 0, 0, 0}
	entry := make([]byte, pack.EntrySize)
	entry[0] = byte(pack.DataBlob)
	entry[1] = 200 // length
	entry[9] = 1   // ID
	b = append(b, entry...)
	b = append(b, pack.FlagDelta)
	base := make([]byte, 32)
	base[0] = 7
	b = append(b, base...)
	b = append(b, make([]byte, 2*(pack.EntrySize+1)-len(b)+8)...) // 10 bytes: less than an entry
	b = b[:len(b):len(b)]                                         // as read: nothing beyond the header
	if _, err := pack.DecodeHeader(b); !errors.Is(err, pack.ErrInvalid) {
		t.Fatalf("got %v, want pack.ErrInvalid", err)
	}
}
