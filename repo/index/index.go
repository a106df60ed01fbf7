package index

import (
	"slices"
	"strings"
	"sync"

	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
)

// entry is one blob location: 32 + 5*4 + 1 bytes, padded to 56 (a delta
// blob's base is named by position in Index.bases, 32 bytes more for each
// delta). With the pack table this is the whole cost of the index: 56 bytes per blob plus
// about 300 bytes per pack (ID, size, kind, wrapped key and the map entry
// from ID to position); measured: 76 bytes per blob with 16 blobs a pack,
// 60 with 1,000 (TestIndexMemoryPerBlob).
type entry struct {
	id     id.ID
	pack   uint32 // position in Index.packs
	offset uint32
	length uint32
	raw    uint32
	base   uint32 // 1 + position in Index.bases of a delta blob's base; 0 for a full blob
	typ    pack.BlobType
}

// PackRef is what the index knows of one pack.
type PackRef struct {
	ID         id.ID
	Size       uint64
	Kind       pack.BlobType
	WrappedKey []byte
}

// Location is where one blob is stored.
type Location struct {
	Pack      PackRef
	Type      pack.BlobType
	Offset    uint32
	Length    uint32
	RawLength uint32
	Base      id.ID // the base of a delta blob; null for a full blob
}

// Index maps blob IDs to locations. It keeps its entries in a few sorted
// runs: new entries form a run of their own, and runs of similar size are
// merged (a binary counter), so adding n entries one pack at a time costs
// O(n log n) in all and a lookup is one binary search per run (at most
// about log2 of the number of packs). Safe for concurrent use.
type Index struct {
	mu      sync.RWMutex
	packs   []PackRef
	packPos map[id.ID]uint32 // the first ref of each pack
	runs    [][]entry        // sorted; each at least twice as long as the next
	// dup is set when a pack already known was added again: its entries
	// may repeat ones in other runs, so the next pushRun merges every run
	// into one and drops the repeats.
	dup bool
	// bases holds the base IDs of delta blobs, which entries name by
	// position: full blobs, the most, pay 4 bytes for them, not 32.
	bases []id.ID
}

// New returns an empty index.
func New() *Index { return &Index{packPos: map[id.ID]uint32{}} }

// cmpKey orders entries by blob: lookups search by it.
func cmpKey(a, b entry) int {
	if c := a.id.Compare(b.id); c != 0 {
		return c
	}
	return int(a.typ) - int(b.typ)
}

// cmpEntry is a total order: by blob, then by location, so that equal
// entries are neighbours and the order never depends on how the entries
// arrived.
func cmpEntry(a, b entry) int {
	if c := cmpKey(a, b); c != 0 {
		return c
	}
	switch {
	case a.pack != b.pack:
		return cmpU32(a.pack, b.pack)
	case a.offset != b.offset:
		return cmpU32(a.offset, b.offset)
	case a.length != b.length:
		return cmpU32(a.length, b.length)
	}
	return cmpU32(a.raw, b.raw)
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sameRef(a PackRef, p Pack) bool {
	return a.Size == p.Size && a.Kind == p.Kind && string(a.WrappedKey) == string(p.WrappedKey)
}

// addPackLocked records p's pack and appends its blobs to run. A pack
// already known adds the blobs it lists that are not known yet (the index
// is the union of the index files, docs/FORMAT.md section 7). If it
// describes the pack differently (size, kind or wrapped key), one of the
// two descriptions is wrong and the index cannot tell which: the second
// becomes a pack ref of its own, so that both are tried.
func (x *Index) addPackLocked(p Pack, run []entry) []entry {
	pos, ok := x.packPos[p.ID]
	if ok {
		x.dup = true
		found := false
		for i := int(pos); i < len(x.packs); i++ {
			if x.packs[i].ID == p.ID && sameRef(x.packs[i], p) {
				pos, found = uint32(i), true
				break
			}
		}
		if !found {
			pos = uint32(len(x.packs))
			x.packs = append(x.packs, PackRef{ID: p.ID, Size: p.Size, Kind: p.Kind, WrappedKey: p.WrappedKey})
		}
	} else {
		pos = uint32(len(x.packs))
		x.packs = append(x.packs, PackRef{ID: p.ID, Size: p.Size, Kind: p.Kind, WrappedKey: p.WrappedKey})
		x.packPos[p.ID] = pos
	}
	for _, b := range p.Blobs {
		e := entry{id: b.ID, pack: pos, offset: b.Offset, length: b.Length, raw: b.RawLength, typ: b.Type}
		if b.IsDelta() {
			x.bases = append(x.bases, b.Base)
			e.base = uint32(len(x.bases))
		}
		run = append(run, e)
	}
	return run
}

// pushRun adds a run and merges runs until each is at least twice as long
// as the one after it.
func (x *Index) pushRun(run []entry) {
	if len(run) == 0 {
		return
	}
	slices.SortFunc(run, cmpEntry)
	run = slices.CompactFunc(run, func(a, b entry) bool { return cmpEntry(a, b) == 0 })
	x.runs = append(x.runs, run)
	if x.dup {
		// Merge every run into one, dropping entries that repeat.
		for len(x.runs) >= 2 {
			n := len(x.runs)
			x.runs[n-2] = mergeSorted(x.runs[n-2], x.runs[n-1])
			x.runs = x.runs[:n-1]
		}
		x.runs[0] = slices.CompactFunc(x.runs[0], func(a, b entry) bool { return cmpEntry(a, b) == 0 })
		x.dup = false
		return
	}
	for n := len(x.runs); n >= 2 && len(x.runs[n-2]) < 2*len(x.runs[n-1]); n = len(x.runs) {
		x.runs[n-2] = mergeSorted(x.runs[n-2], x.runs[n-1])
		x.runs = x.runs[:n-1]
	}
}

// AddPack records every blob of p. For a pack already known, the blobs not
// known yet are added.
func (x *Index) AddPack(p Pack) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.pushRun(x.addPackLocked(p, nil))
}

// AddFile records every pack of f.
func (x *Index) AddFile(f *File) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for _, p := range f.Packs {
		n += len(p.Blobs)
	}
	run := make([]entry, 0, n)
	for _, p := range f.Packs {
		run = x.addPackLocked(p, run)
	}
	x.pushRun(run)
}

func mergeSorted(a, b []entry) []entry {
	out := make([]entry, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if cmpEntry(a[i], b[j]) <= 0 {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

func find(s []entry, t pack.BlobType, bid id.ID) (int, bool) {
	return slices.BinarySearchFunc(s, entry{id: bid, typ: t}, cmpKey)
}

// Has reports whether a blob of type t and ID bid is stored.
func (x *Index) Has(t pack.BlobType, bid id.ID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, r := range x.runs {
		if _, ok := find(r, t, bid); ok {
			return true
		}
	}
	return false
}

// Lookup returns every location of the blob in a fixed order, whatever
// order the index files were added in: by pack ID, then by offset (the
// first is the one to try first).
func (x *Index) Lookup(t pack.BlobType, bid id.ID) []Location {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []Location
	for _, s := range x.runs {
		i, ok := find(s, t, bid)
		for ok && i < len(s) && s[i].id == bid && s[i].typ == t {
			e := s[i]
			out = append(out, Location{Pack: x.packs[e.pack], Type: e.typ, Offset: e.offset, Length: e.length, RawLength: e.raw, Base: x.baseOf(e)})
			i++
		}
	}
	if len(out) > 1 {
		slices.SortFunc(out, cmpLocation)
	}
	return out
}

func cmpLocation(a, b Location) int {
	if c := a.Pack.ID.Compare(b.Pack.ID); c != 0 {
		return c
	}
	switch {
	case a.Offset != b.Offset:
		return cmpU32(a.Offset, b.Offset)
	case a.Length != b.Length:
		return cmpU32(a.Length, b.Length)
	case a.RawLength != b.RawLength:
		return cmpU32(a.RawLength, b.RawLength)
	case a.Pack.Size != b.Pack.Size:
		if a.Pack.Size < b.Pack.Size {
			return -1
		}
		return 1
	}
	return strings.Compare(string(a.Pack.WrappedKey), string(b.Pack.WrappedKey))
}

// Packs returns every pack the index names, once each (with the first
// description of it that was added).
func (x *Index) Packs() []PackRef {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]PackRef, 0, len(x.packPos))
	for i, p := range x.packs {
		if x.packPos[p.ID] == uint32(i) {
			out = append(out, p)
		}
	}
	return out
}

// Pack returns what the index knows of pack pid.
func (x *Index) Pack(pid id.ID) (PackRef, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	pos, ok := x.packPos[pid]
	if !ok {
		return PackRef{}, false
	}
	return x.packs[pos], true
}

// Len returns the number of blob entries.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := 0
	for _, r := range x.runs {
		n += len(r)
	}
	return n
}

// Each calls fn for every blob entry with its pack, in no particular order.
func (x *Index) Each(fn func(p PackRef, e pack.Entry)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, s := range x.runs {
		for _, e := range s {
			fn(x.packs[e.pack], pack.Entry{Type: e.typ, ID: e.id, Offset: e.offset, Length: e.length, RawLength: e.raw, Base: x.baseOf(e)})
		}
	}
}

// baseOf returns the base of e, null for a full blob.
func (x *Index) baseOf(e entry) id.ID {
	if e.base == 0 {
		return id.ID{}
	}
	return x.bases[e.base-1]
}
