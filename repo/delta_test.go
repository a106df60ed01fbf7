package repo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
)

// textChunk returns n bytes of SQL-like text in which version v changed
// the login column of about 2 % of the rows, scattered, as the versions of
// a daily dump's chunk differ.
func textChunk(n, version int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		login := 0
		for v := 1; v <= version; v++ {
			if (i*2654435761+v*40503)%50 == 0 {
				login = v
			}
		}
		b = fmt.Appendf(b, "INSERT INTO users VALUES (%d, 'user%d@example.com', 'login on day %d', %d);\n", i, i*7919%10007, login, i*31%997)
	}
	return b[:n]
}

// newRepoVersion creates a repository of the given format version.
func newRepoVersion(t *testing.T, version int) (*repo.Repository, *mem.Backend) {
	t.Helper()
	be := mem.New()
	r, err := repo.Init(context.Background(), be, repo.InitOptions{
		Options: repo.Options{Passphrase: []byte(passphrase)}, S2K: crypto.S2KIterated, Version: version})
	if err != nil {
		t.Fatal(err)
	}
	return r, be
}

func saveData(t *testing.T, r *repo.Repository, data []byte, base id.ID) repo.SaveResult {
	t.Helper()
	res, err := r.SaveDataBlob(context.Background(), r.BlobID(data), data, base)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func flush(t *testing.T, r *repo.Repository) {
	t.Helper()
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestDeltaChain stores seven versions of a chunk, each with the one
// before as base: every one after the first is a delta against the first
// (depth 1, however long the series), far smaller than a full blob, and
// reads back after a reopen, from the index and from the pack headers.
func TestDeltaChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be := newRepo(t)
	var versions [][]byte
	var ids []id.ID
	var stored []int
	prev := id.ID{}
	for v := 0; v < 7; v++ {
		data := textChunk(128<<10, v)
		res := saveData(t, r, data, prev)
		versions, ids, stored = append(versions, data), append(ids, res.ID), append(stored, res.Stored)
		prev = res.ID
		flush(t, r) // the next version finds this one in the index
	}
	for v := 1; v < 7; v++ {
		loc := r.Index().Lookup(pack.DataBlob, ids[v])[0]
		if loc.Base != ids[0] {
			t.Errorf("version %d: base %s, want the first version %s", v, loc.Base.Str(), ids[0].Str())
		}
		if stored[v]*10 > stored[0] {
			t.Errorf("version %d: delta of %d bytes, full blob %d", v, stored[v], stored[0])
		}
	}
	t.Logf("stored: %v", stored)
	r2 := reopen(t, be, passphrase)
	for v := range versions {
		got, err := r2.LoadBlob(ctx, pack.DataBlob, ids[v], nil)
		if err != nil || !bytes.Equal(got, versions[v]) {
			t.Fatalf("version %d: %d bytes, %v", v, len(got), err)
		}
	}
	// The pack headers name the bases too.
	for v := 1; v < 7; v++ {
		loc := r2.Index().Lookup(pack.DataBlob, ids[v])[0]
		h, err := r2.ReadPackHeader(ctx, loc.Pack.ID, int64(loc.Pack.Size))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range h.Entries {
			found = found || e.ID == ids[v] && e.Base == ids[0]
		}
		if !found {
			t.Errorf("version %d: the pack header does not name its base", v)
		}
	}
}

// TestDeltaNotWorthIt: a chunk with nothing in common with its base is
// stored as a full blob.
func TestDeltaNotWorthIt(t *testing.T) {
	t.Parallel()
	r, _ := newRepo(t)
	base := saveData(t, r, textChunk(64<<10, 1), id.ID{})
	flush(t, r)
	other := saveData(t, r, randomBytes(t, 64<<10), base.ID)
	flush(t, r)
	if loc := r.Index().Lookup(pack.DataBlob, other.ID)[0]; !loc.Base.IsNull() {
		t.Fatalf("stored as a delta against %s", loc.Base.Str())
	}
}

// TestDeltaDamagedBase: a damaged or missing base makes its delta
// unreadable, reported as damage of the delta naming the base.
func TestDeltaDamagedBase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, remove := range []bool{false, true} {
		t.Run(fmt.Sprintf("removed=%v", remove), func(t *testing.T) {
			t.Parallel()
			r, be := newRepo(t)
			base := saveData(t, r, textChunk(100<<10, 1), id.ID{})
			flush(t, r)
			delta := saveData(t, r, textChunk(100<<10, 2), base.ID)
			flush(t, r)
			loc := r.Index().Lookup(pack.DataBlob, base.ID)[0]
			if dl := r.Index().Lookup(pack.DataBlob, delta.ID)[0]; dl.Pack.ID == loc.Pack.ID || dl.Base != base.ID {
				t.Fatal("base and delta in one pack, or no delta")
			}
			h := backends.Handle{Type: backends.PackFile, Name: loc.Pack.ID.String()}
			if remove {
				if err := be.Remove(ctx, h); err != nil {
					t.Fatal(err)
				}
			} else {
				data, err := backends.LoadAll(ctx, be, h)
				if err != nil {
					t.Fatal(err)
				}
				data[loc.Offset+loc.Length/2] ^= 1
				if err := be.Save(ctx, h, backends.NewByteReader(data)); err != nil {
					t.Fatal(err)
				}
			}
			r2 := reopen(t, be, passphrase)
			got, err := r2.LoadBlob(ctx, pack.DataBlob, delta.ID, nil)
			var berr *repo.BlobError
			if !errors.Is(err, repo.ErrInvalidData) || !errors.As(err, &berr) || berr.ID != delta.ID {
				t.Fatalf("got %d bytes, %v; want ErrInvalidData naming the delta", len(got), err)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(base.ID.Str())) {
				t.Fatalf("error %q does not name the base", err)
			}
		})
	}
}

// TestVersion1Repository: a version 1 repository is read, stores no
// deltas, and after Upgrade is version 2 and stores them.
func TestVersion1Repository(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be := newRepoVersion(t, 1)
	base := saveData(t, r, textChunk(64<<10, 1), id.ID{})
	flush(t, r)
	full := saveData(t, r, textChunk(64<<10, 2), base.ID)
	flush(t, r)
	if loc := r.Index().Lookup(pack.DataBlob, full.ID)[0]; !loc.Base.IsNull() {
		t.Fatal("a delta in a version 1 repository")
	}
	r1 := reopen(t, be, passphrase)
	if v := r1.Config().Version; v != 1 {
		t.Fatalf("version %d after reopen, want 1", v)
	}
	if got, err := r1.LoadBlob(ctx, pack.DataBlob, full.ID, nil); err != nil || !bytes.Equal(got, textChunk(64<<10, 2)) {
		t.Fatalf("reading version 1: %v", err)
	}
	if done, err := r1.Upgrade(ctx); err != nil || !done {
		t.Fatalf("Upgrade: %v, %v", done, err)
	}
	if done, err := r1.Upgrade(ctx); err != nil || done {
		t.Fatalf("second Upgrade: %v, %v", done, err)
	}
	r2 := reopen(t, be, passphrase)
	if v := r2.Config().Version; v != repo.FormatVersion {
		t.Fatalf("version %d after Upgrade", v)
	}
	delta := saveData(t, r2, textChunk(64<<10, 3), full.ID)
	flush(t, r2)
	if loc := r2.Index().Lookup(pack.DataBlob, delta.ID)[0]; loc.Base != full.ID {
		t.Fatalf("no delta after Upgrade: base %s", loc.Base.Str())
	}
	if got, err := reopen(t, be, passphrase).LoadBlob(ctx, pack.DataBlob, delta.ID, nil); err != nil || !bytes.Equal(got, textChunk(64<<10, 3)) {
		t.Fatalf("reading the delta: %v", err)
	}
}

// mapSource is a BaseSource of plaintexts kept by the host.
type mapSource map[id.ID][]byte

func (m mapSource) Get(bid id.ID) ([]byte, bool) { b, ok := m[bid]; return b, ok }

// TestDeltaWriteOnly: a write-only host stores full blobs when it has no
// copy of the base, and deltas from its own copies; the full key reads both.
func TestDeltaWriteOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	full, be := newRepo(t)
	wo := full.Keys().Secrets.WriteOnlyCopy()
	keyFile, err := crypto.EncryptWithPassphrase(wo, []byte("writer"), crypto.S2KIterated)
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Save(ctx, backends.Handle{Type: backends.KeyFile, Name: id.Hash(keyFile).String()}, backends.NewByteReader(keyFile)); err != nil {
		t.Fatal(err)
	}
	w := reopen(t, be, "writer")
	v1 := textChunk(64<<10, 1)
	base := saveData(t, w, v1, id.ID{})
	flush(t, w)
	v2 := textChunk(64<<10, 2)
	noCopy := saveData(t, w, v2, base.ID)
	flush(t, w)
	if loc := w.Index().Lookup(pack.DataBlob, noCopy.ID)[0]; !loc.Base.IsNull() {
		t.Fatal("a write-only host without a copy of the base stored a delta")
	}
	w.SetBaseSource(mapSource{base.ID: v1})
	v3 := textChunk(64<<10, 3)
	delta := saveData(t, w, v3, base.ID)
	flush(t, w)
	if loc := w.Index().Lookup(pack.DataBlob, delta.ID)[0]; loc.Base != base.ID {
		t.Fatal("a write-only host with a copy of the base stored no delta")
	}
	r := reopen(t, be, passphrase)
	for _, c := range []struct {
		id   id.ID
		want []byte
	}{{noCopy.ID, v2}, {delta.ID, v3}} {
		if got, err := r.LoadBlob(ctx, pack.DataBlob, c.id, nil); err != nil || !bytes.Equal(got, c.want) {
			t.Fatalf("full key reading the writer's blob: %v", err)
		}
	}
}

// TestDeltaRebuildIndex: repair index rebuilds the bases from the pack
// headers, and the deltas read back through the new index.
func TestDeltaRebuildIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be := newRepo(t)
	base := saveData(t, r, textChunk(80<<10, 1), id.ID{})
	flush(t, r)
	delta := saveData(t, r, textChunk(80<<10, 2), base.ID)
	flush(t, r)
	var names []string
	if err := be.List(ctx, backends.IndexFile, func(fi backends.FileInfo) error { names = append(names, fi.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := be.Remove(ctx, backends.Handle{Type: backends.IndexFile, Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	r2, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte(passphrase)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.RebuildIndex(ctx); err != nil {
		t.Fatal(err)
	}
	r3 := reopen(t, be, passphrase)
	if loc := r3.Index().Lookup(pack.DataBlob, delta.ID); len(loc) != 1 || loc[0].Base != base.ID {
		t.Fatalf("rebuilt index: %+v", loc)
	}
	if got, err := r3.LoadBlob(ctx, pack.DataBlob, delta.ID, nil); err != nil || !bytes.Equal(got, textChunk(80<<10, 2)) {
		t.Fatalf("delta after repair index: %v", err)
	}
}

// TestDeltaSmallChunks: the last chunk of a stream can be a few bytes to a
// few hundred; zstd may leave the content size out of such a frame, which
// readers require. Every size must read back, as a delta or stored full.
func TestDeltaSmallChunks(t *testing.T) {
	t.Parallel()
	r, _ := newRepo(t)
	base := saveData(t, r, textChunk(64<<10, 1), id.ID{})
	flush(t, r)
	full := textChunk(64<<10, 1)
	for _, n := range []int{1, 2, 17, 100, 196, 255, 300, 1000, 4095, 70000} {
		// A piece of the base with a byte changed: a delta pays.
		data := append([]byte(nil), full[1000:1000+n]...)
		data[n/2] ^= 0x55
		res := saveData(t, r, data, base.ID)
		flush(t, r)
		got, err := r.LoadBlob(context.Background(), pack.DataBlob, res.ID, nil)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
}

// TestStreamDeltaWrongBase: a writer stored a full blob under a base's ID
// with other content (its seal is valid, its ID is not), and a delta
// against the true base. StreamBlobs prefetches that base and, using it
// only as a dictionary, does not hash it; the delta's own ID must then
// catch the wrong plaintext: an error, never wrong bytes.
func TestStreamDeltaWrongBase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be := newRepo(t)
	truth := textChunk(100<<10, 1)
	bid := r.BlobID(truth)
	if _, err := r.SaveBlobWithID(ctx, pack.DataBlob, bid, textChunk(100<<10, 9)); err != nil {
		t.Fatal(err)
	}
	flush(t, r)
	r.SetBaseSource(mapSource{bid: truth})
	want := textChunk(100<<10, 2)
	delta := saveData(t, r, want, bid)
	flush(t, r)
	if dl := r.Index().Lookup(pack.DataBlob, delta.ID)[0]; dl.Base != bid {
		t.Fatal("the blob was not stored as a delta")
	}

	r2 := reopen(t, be, passphrase)
	reads := []repo.BlobRead{{ID: delta.ID, Loc: r2.Index().Lookup(pack.DataBlob, delta.ID)[0]}}
	calls := 0
	err := r2.StreamBlobs(ctx, reads, repo.StreamOptions{}, func(i int, plain []byte, err error) error {
		calls++
		if err == nil {
			t.Errorf("delta against a wrong base read without error (%d bytes, equal to the original: %v)", len(plain), bytes.Equal(plain, want))
		} else if !errors.Is(err, repo.ErrInvalidData) {
			t.Errorf("error %v, want ErrInvalidData", err)
		}
		return nil
	})
	if err != nil || calls != 1 {
		t.Fatalf("StreamBlobs: %v, %d calls", err, calls)
	}
}

// TestStreamDeltaBaseMissing: when the pack of a delta's base is gone, the
// prefetch of the base fails, and the delta must still be reported (as
// damage naming the base) rather than wait for its base forever.
func TestStreamDeltaBaseMissing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, be := newRepo(t)
	base := saveData(t, r, textChunk(100<<10, 1), id.ID{})
	flush(t, r)
	delta := saveData(t, r, textChunk(100<<10, 2), base.ID)
	flush(t, r)
	loc := r.Index().Lookup(pack.DataBlob, base.ID)[0]
	if err := be.Remove(ctx, backends.Handle{Type: backends.PackFile, Name: loc.Pack.ID.String()}); err != nil {
		t.Fatal(err)
	}
	r2 := reopen(t, be, passphrase)
	reads := []repo.BlobRead{{ID: delta.ID, Loc: r2.Index().Lookup(pack.DataBlob, delta.ID)[0]}}
	var got error
	err := r2.StreamBlobs(ctx, reads, repo.StreamOptions{}, func(i int, plain []byte, err error) error {
		got = err
		return nil
	})
	if ctx.Err() != nil {
		t.Fatal("the delta waited for its base until the deadline")
	}
	if err != nil {
		t.Fatalf("StreamBlobs: %v", err)
	}
	if !errors.Is(got, repo.ErrInvalidData) || !bytes.Contains([]byte(got.Error()), []byte(base.ID.Str())) {
		t.Fatalf("delta with a missing base: %v; want ErrInvalidData naming the base", got)
	}
}

// TestStreamDeltaBaseSecondCopy: a delta whose base has two copies, the
// first (the one the prefetch reads, without an ID check) with wrong
// content under the base's ID, is read from the second: the failed delta
// is loaded again with a checked base, as before the prefetch.
func TestStreamDeltaBaseSecondCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	truth := textChunk(100<<10, 1)
	want := textChunk(100<<10, 2)
	// Which copy the index lists first follows the names of the packs;
	// try seeds until the wrong copy comes first (each try: one in two).
	for seed := 9; seed < 60; seed++ {
		r, be := newRepo(t)
		bid := r.BlobID(truth)
		if _, err := r.SaveBlobWithID(ctx, pack.DataBlob, bid, textChunk(100<<10, seed)); err != nil {
			t.Fatal(err)
		}
		flush(t, r)
		wrongPack := r.Index().Lookup(pack.DataBlob, bid)[0].Pack.ID
		r.SetBaseSource(mapSource{bid: truth})
		delta := saveData(t, r, want, bid)
		flush(t, r)
		// A second writer that does not know the first copy stores the
		// right one.
		w, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte(passphrase)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.SaveBlobWithID(ctx, pack.DataBlob, bid, truth); err != nil {
			t.Fatal(err)
		}
		flush(t, w)

		r2 := reopen(t, be, passphrase)
		locs := r2.Index().Lookup(pack.DataBlob, bid)
		if len(locs) != 2 {
			t.Fatalf("%d copies of the base", len(locs))
		}
		if locs[0].Pack.ID != wrongPack {
			continue // the right copy is first: the prefetch would read it
		}
		reads := []repo.BlobRead{{ID: delta.ID, Loc: r2.Index().Lookup(pack.DataBlob, delta.ID)[0]}}
		var got []byte
		err = r2.StreamBlobs(ctx, reads, repo.StreamOptions{}, func(i int, plain []byte, err error) error {
			got = append([]byte(nil), plain...)
			return err
		})
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("StreamBlobs with a wrong first copy of the base: %v, %d bytes (equal %v)", err, len(got), bytes.Equal(got, want))
		}
		return
	}
	t.Fatal("the wrong copy of the base never came first")
}
