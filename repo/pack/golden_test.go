package pack

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"reflect"
	"testing"

	"github.com/hoard-backup/hoard/internal/testenv"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenKey returns 32 bytes that make a fixed test key.
func goldenKey(label string) []byte {
	k := sha256.Sum256([]byte("hoard golden test key: " + label))
	return k[:]
}

// goldenBlobs are the payloads (compression byte || body) of the golden pack.
func goldenBlobs() [][]byte {
	return [][]byte{
		append([]byte{CompressionNone}, "first blob of the golden pack"...),
		append([]byte{CompressionNone}, bytes.Repeat([]byte("second "), 40)...),
	}
}

func goldenID(i int) id.ID { return id.ID(sha256.Sum256([]byte{byte(i)})) }

// TestGoldenHeader freezes the plaintext pack header (FORMAT.md 6.1).
func TestGoldenHeader(t *testing.T) {
	h := Header{Kind: TreeBlob, WrappedKey: []byte("a wrapped pack key"), Entries: []Entry{
		{Type: TreeBlob, ID: goldenID(1), Length: 100, RawLength: 300},
		{Type: TreeBlob, ID: goldenID(2), Length: 29, RawLength: 0},
	}}
	want := testenv.Golden(t, "testdata/header-v1.golden", EncodeHeader(h), *update)
	got, err := DecodeHeader(want)
	if err != nil {
		t.Fatal(err)
	}
	h.Entries[1].Offset = 100
	if !reflect.DeepEqual(got, h) {
		t.Errorf("DecodeHeader of the golden header = %+v, want %+v", got, h)
	}
}

// TestGoldenPack reads a whole pack written by the version-1 Writer under
// fixed keys: the trailer, the sealed header and every sealed blob. Seals
// take random nonces, so the pack is written only with -update.
func TestGoldenPack(t *testing.T) {
	meta, err := crypto.NewAEAD(goldenKey("metadata"))
	if err != nil {
		t.Fatal(err)
	}
	packKey := goldenKey("pack")
	var made []byte
	if *update {
		w, err := NewWriter(DataBlob, packKey, []byte("wrapped"), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range goldenBlobs() {
			w.Add(goldenID(i), b, len(b)-1)
		}
		made, _ = w.Finish(meta)
	}
	data := testenv.Golden(t, "testdata/pack-v1.golden", made, *update)
	h, err := Parse(meta, data)
	if err != nil {
		t.Fatalf("Parse of the golden pack: %v", err)
	}
	blobs := goldenBlobs()
	if h.Kind != DataBlob || string(h.WrappedKey) != "wrapped" || len(h.Entries) != len(blobs) {
		t.Fatalf("golden pack header %+v", h)
	}
	a, err := crypto.NewAEAD(packKey)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range h.Entries {
		if e.ID != goldenID(i) || int(e.RawLength) != len(blobs[i])-1 {
			t.Errorf("entry %d: %+v", i, e)
			continue
		}
		got, err := OpenBlob(nil, a, e.ID, data[e.Offset:e.Offset+e.Length])
		if err != nil || !bytes.Equal(got, blobs[i]) {
			t.Errorf("blob %d: %q, %v; want %q", i, got, err, blobs[i])
		}
	}
}
