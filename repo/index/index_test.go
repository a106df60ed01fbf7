package index_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/index"
	"github.com/hoard-backup/hoard/repo/pack"
)

func testID(s string) id.ID { return id.Hash([]byte(s)) }

// testPack returns a pack of n blobs of the given type laid out from offset 0.
func testPack(name string, t pack.BlobType, n int) index.Pack {
	p := index.Pack{ID: testID(name), Kind: t, WrappedKey: []byte("key of " + name)}
	var off uint32
	for i := 0; i < n; i++ {
		l := uint32(crypto.Overhead + 1 + i)
		p.Blobs = append(p.Blobs, pack.Entry{Type: t, ID: testID(name + "/" + string(rune('a'+i))), Offset: off, Length: l, RawLength: 2 * l})
		off += l
	}
	p.Size = uint64(off) + 100
	return p
}

func TestEncodeDecode(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    *index.File
	}{
		{"empty", &index.File{}},
		{"supersedes only", &index.File{Supersedes: []id.ID{testID("a"), testID("b")}}},
		{"one pack", &index.File{Packs: []index.Pack{testPack("p", pack.DataBlob, 3)}}},
		{"pack without blobs or key", &index.File{Packs: []index.Pack{{ID: testID("e"), Size: 36, Kind: pack.TreeBlob}}}},
		{"both kinds", &index.File{Supersedes: []id.ID{testID("old")},
			Packs: []index.Pack{testPack("d", pack.DataBlob, 5), testPack("t", pack.TreeBlob, 2)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := index.Encode(tc.f)
			if !strings.HasPrefix(string(b), index.Magic) {
				t.Fatalf("no magic: %x", b[:4])
			}
			got, err := index.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.f) {
				t.Fatalf("got %+v\nwant %+v", got, tc.f)
			}
			if !bytes.Equal(index.Encode(got), b) {
				t.Fatal("second encoding differs")
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	f := &index.File{Supersedes: []id.ID{testID("old")}, Packs: []index.Pack{testPack("p", pack.DataBlob, 2)}}
	valid := index.Encode(f)
	// Offsets in valid: magic 4, supersedes 4+32, pack count 4, then the pack.
	const (
		supersedesAt = 4
		packsAt      = 4 + 4 + 32
		packAt       = packsAt + 4
		kindAt       = packAt + 32 + 8
		keyLenAt     = kindAt + 1
	)
	keyLen := len(f.Packs[0].WrappedKey)
	blobsAt := keyLenAt + 2 + keyLen
	firstBlob := blobsAt + 4
	change := func(fn func(b []byte)) []byte {
		b := bytes.Clone(valid)
		fn(b)
		return b
	}
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"bad magic", change(func(b []byte) { b[3] = '2' })},
		{"trailing byte", append(bytes.Clone(valid), 0)},
		{"huge supersedes count", change(func(b []byte) { binary.LittleEndian.PutUint32(b[supersedesAt:], 1<<32-1) })},
		{"huge pack count", change(func(b []byte) { binary.LittleEndian.PutUint32(b[packsAt:], 1<<32-1) })},
		{"pack count one too many", change(func(b []byte) { binary.LittleEndian.PutUint32(b[packsAt:], 2) })},
		{"pack kind 2", change(func(b []byte) { b[kindAt] = 2 })},
		{"key beyond the end", change(func(b []byte) { binary.LittleEndian.PutUint16(b[keyLenAt:], 0xffff) })},
		{"huge blob count", change(func(b []byte) { binary.LittleEndian.PutUint32(b[blobsAt:], 1<<32-1) })},
		{"blob count one too many", change(func(b []byte) { binary.LittleEndian.PutUint32(b[blobsAt:], 3) })},
		{"blob count one too few", change(func(b []byte) { binary.LittleEndian.PutUint32(b[blobsAt:], 1) })},
		{"tree blob in data pack", change(func(b []byte) { b[firstBlob] = byte(pack.TreeBlob) })},
		{"blob beyond the pack", change(func(b []byte) { binary.LittleEndian.PutUint64(b[packAt+32:], 10) })},
		{"offset overflows the pack", change(func(b []byte) { binary.LittleEndian.PutUint32(b[firstBlob+33:], 1<<32-1) })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := index.Decode(tc.b); !errors.Is(err, index.ErrInvalid) {
				t.Fatalf("got %+v, %v; want index.ErrInvalid", got, err)
			}
		})
	}
	t.Run("every strict prefix", func(t *testing.T) {
		for n := 0; n < len(valid); n++ {
			if got, err := index.Decode(valid[:n]); !errors.Is(err, index.ErrInvalid) {
				t.Fatalf("%d of %d bytes: got %+v, %v; want index.ErrInvalid", n, len(valid), got, err)
			}
		}
	})
}

func TestIndexLookup(t *testing.T) {
	x := index.New()
	a := testPack("a", pack.DataBlob, 3)
	b := testPack("b", pack.DataBlob, 1)
	b.Blobs[0].ID = a.Blobs[1].ID // the same blob stored twice, by two hosts
	tr := testPack("t", pack.TreeBlob, 1)
	tr.Blobs[0].ID = a.Blobs[0].ID // a tree blob with a data blob's ID
	x.AddFile(&index.File{Packs: []index.Pack{a, b, tr}})
	x.AddPack(a) // known blobs of a known pack are not added again

	if x.Len() != 5 {
		t.Fatalf("Len %d, want 5", x.Len())
	}
	if got := len(x.Packs()); got != 3 {
		t.Fatalf("%d packs, want 3", got)
	}
	for _, tc := range []struct {
		name  string
		t     pack.BlobType
		id    id.ID
		packs []id.ID
	}{
		{"once", pack.DataBlob, a.Blobs[2].ID, []id.ID{a.ID}},
		{"in two packs", pack.DataBlob, a.Blobs[1].ID, []id.ID{a.ID, b.ID}},
		{"data of an ID a tree also has", pack.DataBlob, a.Blobs[0].ID, []id.ID{a.ID}},
		{"tree of an ID data also has", pack.TreeBlob, a.Blobs[0].ID, []id.ID{tr.ID}},
		{"absent", pack.DataBlob, testID("absent"), nil},
		{"absent type", pack.TreeBlob, a.Blobs[2].ID, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			locs := x.Lookup(tc.t, tc.id)
			var got []id.ID
			for _, l := range locs {
				got = append(got, l.Pack.ID)
				if l.Type != tc.t {
					t.Errorf("location of type %s", l.Type)
				}
			}
			if len(got) != len(tc.packs) {
				t.Fatalf("in packs %v, want %v", got, tc.packs)
			}
			for _, p := range tc.packs {
				found := false
				for _, g := range got {
					found = found || g == p
				}
				if !found {
					t.Fatalf("in packs %v, want %v", got, tc.packs)
				}
			}
			if x.Has(tc.t, tc.id) != (len(tc.packs) > 0) {
				t.Fatalf("Has = %v", !(len(tc.packs) > 0))
			}
		})
	}
	loc := x.Lookup(pack.DataBlob, a.Blobs[2].ID)[0]
	if want := a.Blobs[2]; loc.Offset != want.Offset || loc.Length != want.Length || loc.RawLength != want.RawLength ||
		loc.Pack.Size != a.Size || !bytes.Equal(loc.Pack.WrappedKey, a.WrappedKey) || loc.Pack.Kind != pack.DataBlob {
		t.Fatalf("location %+v, want %+v in %+v", loc, want, a)
	}
	if p, ok := x.Pack(tr.ID); !ok || p.Kind != pack.TreeBlob || p.Size != tr.Size {
		t.Fatalf("Pack(%s) = %+v, %v", tr.ID.Str(), p, ok)
	}
	if _, ok := x.Pack(testID("absent")); ok {
		t.Fatal("absent pack found")
	}
	n := 0
	x.Each(func(p index.PackRef, e pack.Entry) {
		n++
		if p.Kind != e.Type {
			t.Errorf("Each: %s blob in %s pack", e.Type, p.Kind)
		}
	})
	if n != 5 {
		t.Fatalf("Each yielded %d entries, want 5", n)
	}
}

// TestIndexMerge adds enough packs that the recent array is merged into the
// main one several times, and checks that every blob is still found.
func TestIndexMerge(t *testing.T) {
	x := index.New()
	var all []index.Pack
	for i := 0; i < 300; i++ {
		p := testPack(string(rune('A'+i%26))+string(rune(i)), pack.BlobType(i%2), 100)
		all = append(all, p)
		x.AddPack(p)
	}
	if x.Len() != 300*100 {
		t.Fatalf("Len %d", x.Len())
	}
	for _, p := range all {
		for _, b := range p.Blobs {
			locs := x.Lookup(b.Type, b.ID)
			if len(locs) != 1 || locs[0].Pack.ID != p.ID || locs[0].Offset != b.Offset {
				t.Fatalf("blob %s: %+v", b.ID.Str(), locs)
			}
		}
	}
	seen := map[id.ID]bool{}
	x.Each(func(_ index.PackRef, e pack.Entry) { seen[e.ID] = true })
	if len(seen) != x.Len() {
		t.Fatalf("Each yielded %d distinct blobs of %d", len(seen), x.Len())
	}
}

// TestIndexConcurrent adds and looks up from several goroutines (run with -race).
func TestIndexConcurrent(t *testing.T) {
	t.Parallel()
	x := index.New()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				p := testPack(string(rune('a'+g))+string(rune(i)), pack.DataBlob, 20)
				x.AddPack(p)
				for _, b := range p.Blobs {
					if !x.Has(pack.DataBlob, b.ID) {
						t.Errorf("blob %s of an added pack missing", b.ID.Str())
						return
					}
				}
				_ = x.Packs()
			}
		}()
	}
	wg.Wait()
	if x.Len() != 4*50*20 {
		t.Fatalf("Len %d", x.Len())
	}
}

// TestIndexMemoryPerBlob states the in-memory cost of the index: for 100,000
// blobs it must hold under 80 bytes per blob, pack table included. It
// measures the growth of the live heap across building the index, with the
// index files' own slices (the blob lists) already garbage, as after
// Repository.LoadIndex.
func TestIndexMemoryPerBlob(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap")
	}
	const blobs = 100000
	const maxPerBlob = 80
	// A data pack key wrapped to the data keypair, as stored in every index entry.
	wrapped := wrappedKeySize(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, wrapped key of %d bytes", seed, wrapped)
	for _, tc := range []struct {
		name         string
		blobsPerPack int
	}{
		// Default profile: 1 MiB chunks on average in 16 MiB packs.
		{"default data packs", 16},
		// Small files and trees: many blobs per pack.
		{"small blobs", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// IDs are random but increasing: AddPack sorts the whole recent
			// array on every call, which with IDs in random order makes the
			// 16-blob layout take about 16 s (30 times longer under -race).
			// The order does not change what the index keeps.
			rnd := rand.New(rand.NewPCG(seed, 1))
			var next uint64
			newID := func() (i id.ID) {
				next++
				binary.BigEndian.PutUint64(i[:], next)
				for k := 8; k < len(i); k += 8 {
					binary.LittleEndian.PutUint64(i[k:], rnd.Uint64())
				}
				return i
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			x := index.New()
			for n := 0; n < blobs; n += tc.blobsPerPack {
				p := index.Pack{ID: newID(), Size: 16 << 20, Kind: pack.DataBlob, WrappedKey: make([]byte, wrapped)}
				p.Blobs = make([]pack.Entry, tc.blobsPerPack)
				for i := range p.Blobs {
					p.Blobs[i] = pack.Entry{Type: pack.DataBlob, ID: newID(), Offset: uint32(i) << 20, Length: 1 << 20, RawLength: 1 << 20}
				}
				x.AddPack(p)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			if x.Len() != blobs {
				t.Fatalf("Len %d", x.Len())
			}
			per := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / blobs
			t.Logf("%d blobs in packs of %d: %.1f bytes per blob", blobs, tc.blobsPerPack, per)
			if per > maxPerBlob {
				t.Errorf("index costs %.1f bytes per blob, want under %d", per, maxPerBlob)
			}
			runtime.KeepAlive(x)
		})
	}
}

func wrappedKeySize(t *testing.T) int {
	t.Helper()
	s, err := crypto.NewSecrets(strings.Repeat("ab", 32), time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypto.NewKeys(s)
	if err != nil {
		t.Fatal(err)
	}
	w, err := k.WrapPackKey(crypto.NewPackKey())
	if err != nil {
		t.Fatal(err)
	}
	return len(w)
}

// TestIndexUnion adds index files that describe the same packs differently
// (one lists some blobs of a pack, another other blobs of it; one places a
// blob in a second pack; one gives a pack another wrapped key) in many
// orders, whole or pack by pack, and checks that the index is always the
// same union: every location of every blob, in the same order.
func TestIndexUnion(t *testing.T) {
	p := testPack("p", pack.DataBlob, 4)
	q := testPack("q", pack.DataBlob, 2)
	q.Blobs[1].ID = p.Blobs[3].ID // stored twice
	first := p
	first.Blobs = p.Blobs[:2]
	second := p
	second.Blobs = p.Blobs[1:] // blob 1 in both
	forged := p
	forged.WrappedKey = []byte("another key")
	forged.Blobs = p.Blobs[2:3]
	files := []*index.File{
		{Packs: []index.Pack{first}},
		{Packs: []index.Pack{second, q}},
		{Packs: []index.Pack{q}},
		{Packs: []index.Pack{forged}},
	}
	type view struct {
		Len   int
		Packs []index.PackRef
		Locs  map[id.ID][]index.Location
		Each  map[string]int
	}
	snap := func(x *index.Index) view {
		v := view{Len: x.Len(), Packs: x.Packs(), Locs: map[id.ID][]index.Location{}, Each: map[string]int{}}
		for _, b := range append(append([]pack.Entry(nil), p.Blobs...), q.Blobs...) {
			v.Locs[b.ID] = x.Lookup(pack.DataBlob, b.ID)
		}
		x.Each(func(pr index.PackRef, e pack.Entry) {
			v.Each[fmt.Sprintf("%s/%x/%+v", pr.ID.Str(), pr.WrappedKey, e)]++
		})
		return v
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	var want view
	for round := range 200 {
		x := index.New()
		order := rnd.Perm(len(files))
		// The forged description comes after the genuine one in the name
		// order LoadIndex uses; here only the union is compared, so the
		// genuine pack is added first in every round.
		x.AddPack(first)
		for _, i := range order {
			if rnd.IntN(2) == 0 {
				x.AddFile(files[i])
			} else {
				for _, pk := range files[i].Packs {
					x.AddPack(pk)
				}
			}
		}
		got := snap(x)
		if round == 0 {
			want = got
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("order %v gives another index:\n%+v\nwant\n%+v", order, got, want)
		}
	}
	// The union: p's four blobs, q's two, the forged entry; blob 1 once.
	if want.Len != 4+2+1 {
		t.Fatalf("Len %d, want 7", want.Len)
	}
	if len(want.Packs) != 2 {
		t.Fatalf("Packs %d, want 2 (one per pack ID)", len(want.Packs))
	}
	if l := want.Locs[p.Blobs[3].ID]; len(l) != 2 || l[0].Pack.ID.Compare(l[1].Pack.ID) >= 0 {
		t.Fatalf("blob in two packs: %+v, want both, by pack ID", l)
	}
	if l := want.Locs[p.Blobs[2].ID]; len(l) != 2 || string(l[0].Pack.WrappedKey)+string(l[1].Pack.WrappedKey) == "" {
		t.Fatalf("blob under two keys: %+v, want both", l)
	}
	for _, n := range want.Each {
		if n != 1 {
			t.Fatalf("Each yields an entry %d times: %v", n, want.Each)
		}
	}
}
