package fuzz

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/index"
)

func sampleIndexFiles(tb testing.TB) []*index.File {
	tb.Helper()
	var packs []index.Pack
	for i, h := range sampleHeaders(tb) {
		size := uint64(checkEnd(h)) + 100
		packs = append(packs, index.Pack{ID: fixedID("pack" + string(rune('0'+i))), Size: size, Kind: h.Kind, WrappedKey: h.WrappedKey, Blobs: h.Entries})
	}
	return []*index.File{
		{},
		{Packs: packs[1:2]},
		{Supersedes: []id.ID{fixedID("old index 1"), fixedID("old index 2")}, Packs: packs},
	}
}

// FuzzIndexFile feeds index.Decode arbitrary plaintext. The index format has
// one encoding, so an accepted file must encode back to the same bytes, and
// every blob it names must be found by an index built from it.
func FuzzIndexFile(f *testing.F) {
	for _, file := range sampleIndexFiles(f) {
		b := index.Encode(file)
		f.Add(b)
		f.Add(b[:len(b)-1])
	}
	f.Add([]byte(index.Magic + "\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := index.Decode(data)
		if err != nil {
			if !errors.Is(err, index.ErrInvalid) {
				t.Fatalf("error without index.ErrInvalid: %v", err)
			}
			return
		}
		for _, p := range file.Packs {
			if !p.Kind.Valid() {
				t.Fatalf("pack %s of kind %d accepted", p.ID.Str(), p.Kind)
			}
			for _, b := range p.Blobs {
				if b.Type != p.Kind {
					t.Fatalf("%s blob in %s pack accepted", b.Type, p.Kind)
				}
				if uint64(b.Offset)+uint64(b.Length) > p.Size {
					t.Fatalf("blob at %d+%d beyond pack of %d bytes accepted", b.Offset, b.Length, p.Size)
				}
			}
		}
		enc := index.Encode(file)
		if !bytes.Equal(enc, data) {
			t.Fatalf("Encode(Decode(b)) != b\n got %x\nwant %x", enc, data)
		}
		file2, err := index.Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded index rejected: %v", err)
		}
		if !reflect.DeepEqual(file, file2) {
			t.Fatalf("round trip changed the index:\n%+v\n%+v", file, file2)
		}
		x := index.New()
		x.AddFile(file)
		for _, p := range file.Packs {
			if _, ok := x.Pack(p.ID); !ok {
				t.Fatalf("pack %s missing from the index", p.ID.Str())
			}
			for _, b := range p.Blobs {
				if !x.Has(b.Type, b.ID) || len(x.Lookup(b.Type, b.ID)) == 0 {
					t.Fatalf("blob %s missing from the index", b.ID.Str())
				}
			}
		}
	})
}
