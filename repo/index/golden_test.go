package index

import (
	"crypto/sha256"
	"flag"
	"reflect"
	"testing"

	"github.com/hoard-backup/hoard/internal/testenv"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func goldenID(s string) id.ID { return id.ID(sha256.Sum256([]byte(s))) }

// TestGoldenFile freezes the plaintext of an index file (FORMAT.md
// section 7): it encodes to the golden bytes, and they decode to it.
func TestGoldenFile(t *testing.T) {
	f := &File{
		Supersedes: []id.ID{goldenID("old index")},
		Packs: []Pack{
			{ID: goldenID("pack 1"), Size: 1234, Kind: pack.DataBlob, WrappedKey: []byte("wrapped 1"), Blobs: []pack.Entry{
				{Type: pack.DataBlob, ID: goldenID("blob a"), Offset: 0, Length: 600, RawLength: 1000},
				{Type: pack.DataBlob, ID: goldenID("blob b"), Offset: 600, Length: 500, RawLength: 471},
			}},
			{ID: goldenID("pack 2"), Size: 200, Kind: pack.TreeBlob, WrappedKey: []byte("wrapped 2"), Blobs: []pack.Entry{
				{Type: pack.TreeBlob, ID: goldenID("tree"), Offset: 0, Length: 100, RawLength: 250},
			}},
		},
	}
	want := testenv.Golden(t, "testdata/index-v1.golden", Encode(f), *update)
	got, err := Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, f) {
		t.Errorf("Decode of the golden index = %+v, want %+v", got, f)
	}
}
