package fuzz

import (
	"reflect"
	"testing"

	"github.com/hoard-backup/hoard/repo/wal"
)

// FuzzWALEntry feeds wal.Decode arbitrary bytes. An accepted entry must
// encode, and decoding that must give the same entry.
func FuzzWALEntry(f *testing.F) {
	f.Add([]byte(`{"hoard_wal":1,"cluster":"main","file":"000000010000000000000003","size":3,"content":["` +
		fixedID("a").String() + `"],"time":"2026-12-01T14:03:00Z","host":"db1"}`))
	f.Add([]byte(`{"hoard_wal":1,"cluster":"m","file":"00000002.history","size":0,"content":null,"time":"2026-12-01T14:03:00Z"}`))
	f.Add([]byte(`{"hoard_wal":1,"cluster":"main","file":"000000010000000000000003","size":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := wal.Decode(data)
		if err != nil {
			return
		}
		b, err := wal.Encode(e)
		if err != nil {
			t.Fatalf("accepted entry does not encode: %v", err)
		}
		e2, err := wal.Decode(b)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if !e.Time.Equal(e2.Time) || !reflect.DeepEqual(e.Content, e2.Content) || e.Size != e2.Size || e.File != e2.File || e.Cluster != e2.Cluster {
			t.Fatalf("round trip changed the entry: %+v -> %+v", e, e2)
		}
	})
}

// FuzzWALName checks that every catalog file name that parses gives back
// the same name, so listing and loading agree.
func FuzzWALName(f *testing.F) {
	for _, s := range []string{"main_000000010000000000000003", "a_b_00000002-history", "x_000000010000000000000003-00000028-backup",
		"db_000000010000000000000007-partial", "_000000010000000000000003", "main_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c, file, err := wal.SplitHandleName(name)
		if err != nil {
			return
		}
		back, err := wal.HandleName(c, file)
		if err != nil || back != name {
			t.Fatalf("%q -> %q %q -> %q %v", name, c, file, back, err)
		}
		n, err := wal.ParseName(file)
		if err != nil || n.File != file {
			t.Fatalf("ParseName(%q) = %+v %v", file, n, err)
		}
	})
}
