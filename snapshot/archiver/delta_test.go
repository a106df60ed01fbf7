package archiver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/chunk"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/archiver"
)

const deltaPass = "delta test"

var words = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
	"india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa"}

// dumpDay returns day d of a small dump series: rows whose login column
// changes on about 1 % of the rows a day, scattered over the whole dump,
// and a few rows appended each day, so that every chunk changes daily.
func dumpDay(d int) []byte {
	var b bytes.Buffer
	rows := 24000 + 50*d
	for i := 0; i < rows; i++ {
		login := 0
		for v := 2; v <= d; v++ {
			if (i*2654435761+v*40503)%100 == 0 {
				login = v
			}
		}
		h := id.Hash(fmt.Appendf(nil, "%d", i))
		fmt.Fprintf(&b, "INSERT INTO users VALUES (%d, 'user%x@example.com', '%s %s', 'login on day %d', %d);\n",
			i, h[:4], words[h[5]%16], words[h[6]%16], login, h[7])
	}
	return b.Bytes()
}

type deltaSeries struct {
	be  *mem.Backend
	sns []*snapshot.Snapshot
}

func openRepo(t *testing.T, be backends.Backend) *repo.Repository {
	t.Helper()
	ctx := context.Background()
	r, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte(deltaPass)})
	if err != nil {
		t.Fatal(err)
	}
	if probs, err := r.LoadIndex(ctx); err != nil || len(probs) > 0 {
		t.Fatalf("LoadIndex: %v %v", err, probs)
	}
	return r
}

// backupDays backs up days 1..n as one stream each, each with the one
// before as parent, in a repository of small packs.
func backupDays(t *testing.T, n int) *deltaSeries {
	t.Helper()
	ctx := context.Background()
	be := mem.New()
	dump := chunk.DumpParams()
	r, err := repo.Init(ctx, be, repo.InitOptions{Options: repo.Options{Passphrase: []byte(deltaPass)},
		S2K: crypto.S2KIterated, PackSize: 1 << 20, Chunker: &dump})
	if err != nil {
		t.Fatal(err)
	}
	s := &deltaSeries{be: be}
	var parent *snapshot.Snapshot
	for d := 1; d <= n; d++ {
		if d > 1 {
			r = openRepo(t, be)
		}
		a := archiver.New(r, archiver.Options{Parent: parent})
		sn, err := a.BackupReader(ctx, bytes.NewReader(dumpDay(d)), "dump.sql", archiver.Meta{Host: "h"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("day %d: %d bytes read, %d new blobs, %d bytes stored", d, sn.Summary.BytesRead, sn.Summary.DataBlobsNew, sn.Summary.BytesStored)
		if d > 1 && !deltaSized(sn.Summary.BytesStored, s.sns[0].Summary.BytesStored) {
			t.Errorf("day %d stored %d bytes, day 1 %d: no deltas?", d, sn.Summary.BytesStored, s.sns[0].Summary.BytesStored)
		}
		s.sns = append(s.sns, sn)
		parent = sn
	}
	return s
}

// deltaSized says whether a day that stored stored bytes, after a first
// day that stored first, stored deltas. Deltas alone take about 2 % of the
// first day here, but the chunker's polynomial is random per repository,
// and with some of them a change falls where a cut was: two old chunks
// become one new chunk, half of which no single base holds, so it is
// stored in full (repo.SaveDataBlob). That happens to about one chunk in
// ten a day, so a third of the first day is the bound: a series without
// deltas stores as much as the first day.
func deltaSized(stored, first uint64) bool { return stored*3 <= first }

// dumpContent reads the dump of sn back through the repository.
func dumpContent(ctx context.Context, r *repo.Repository, sn *snapshot.Snapshot) ([]byte, error) {
	t, err := snapshot.LoadTree(ctx, r, sn.Tree)
	if err != nil {
		return nil, err
	}
	n := t.Find("dump.sql")
	if n == nil {
		return nil, errors.New("no dump.sql")
	}
	var out []byte
	for _, c := range n.Content {
		b, err := r.LoadBlob(ctx, repo.DataBlob, c, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

// deltas returns the delta blobs of sn's dump and their bases.
func deltas(t *testing.T, r *repo.Repository, sn *snapshot.Snapshot) map[id.ID]id.ID {
	t.Helper()
	tr, err := snapshot.LoadTree(context.Background(), r, sn.Tree)
	if err != nil {
		t.Fatal(err)
	}
	out := map[id.ID]id.ID{}
	for _, c := range tr.Find("dump.sql").Content {
		if loc := r.Index().Lookup(repo.DataBlob, c)[0]; !loc.Base.IsNull() {
			out[c] = loc.Base
		}
	}
	return out
}

// TestDeltaSeries: daily backups of a dump store deltas against full
// chunks of earlier days (depth 1 at every day), read back byte for byte, and check
// --read-data finds nothing wrong.
func TestDeltaSeries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := backupDays(t, 5)
	r := openRepo(t, s.be)
	earlier := map[id.ID]bool{} // chunks of the days before
	for d, sn := range s.sns {
		got, err := dumpContent(ctx, r, sn)
		if err != nil || !bytes.Equal(got, dumpDay(d+1)) {
			t.Fatalf("day %d: %d bytes, %v", d+1, len(got), err)
		}
		ds := deltas(t, r, sn)
		if d > 0 && len(ds) == 0 {
			t.Errorf("day %d: no delta blobs", d+1)
		}
		for blob, base := range ds {
			if bl := r.Index().Lookup(repo.DataBlob, base); len(bl) == 0 || !bl[0].Base.IsNull() {
				t.Fatalf("day %d: delta %s has a base that is a delta or missing", d+1, blob.Str())
			}
			if !earlier[base] {
				t.Errorf("day %d: delta %s against %s, not a chunk of an earlier day", d+1, blob.Str(), base.Str())
			}
		}
		tr, _ := snapshot.LoadTree(ctx, r, sn.Tree)
		for _, c := range tr.Find("dump.sql").Content {
			earlier[c] = true
		}
	}
	rep, err := snapshot.Check(ctx, r, snapshot.CheckOptions{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("check: %v %+v", err, rep)
	}
}

// TestDeltaPruneForgetBase: forgetting day 1, whose chunks are the bases,
// and pruning with repacking keeps the bases and moves deltas as deltas;
// every later day reads back.
func TestDeltaPruneForgetBase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := backupDays(t, 4)
	// Day 5 with a second, unrelated file in the same pack, then day 5
	// again without it: forgetting the first leaves a pack of day 5's
	// deltas (used) and the other file's blobs (unused), to be repacked.
	open := func(b []byte) func(context.Context) (io.ReadCloser, error) {
		return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	other := bytes.Repeat([]byte("unrelated "), 20000)
	a := archiver.New(openRepo(t, s.be), archiver.Options{Parent: s.sns[3]})
	mixed, err := a.Backup(ctx, []archiver.Item{{Name: "dump.sql", Open: open(dumpDay(5))}, {Name: "other", Open: open(other)}}, archiver.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	a = archiver.New(openRepo(t, s.be), archiver.Options{Parent: mixed})
	day5, err := a.BackupReader(ctx, bytes.NewReader(dumpDay(5)), "dump.sql", archiver.Meta{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.sns = append(s.sns, day5)
	for _, sn := range []*snapshot.Snapshot{s.sns[0], s.sns[1], mixed} {
		if err := s.be.Remove(ctx, backends.Handle{Type: backends.SnapshotFile, Name: sn.ID.String()}); err != nil {
			t.Fatal(err)
		}
	}
	plan, st, err := snapshot.Prune(ctx, openRepo(t, s.be), repo.PruneOptions{MaxUnused: 0}, true, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prune: delete %d repack %d copy %d; %+v", len(plan.Delete), len(plan.Repack), plan.CopyBlobs, st)
	if len(plan.Repack) == 0 || plan.CopyBlobs == 0 {
		t.Fatalf("nothing repacked: the test does not test repacking")
	}
	r := openRepo(t, s.be)
	for d, sn := range s.sns[2:] {
		got, err := dumpContent(ctx, r, sn)
		if err != nil || !bytes.Equal(got, dumpDay(d+3)) {
			t.Fatalf("day %d after prune: %d bytes, %v", d+3, len(got), err)
		}
		if len(deltas(t, r, sn)) == 0 {
			t.Errorf("day %d: deltas were not kept as deltas", d+3)
		}
	}
	rep, err := snapshot.Check(ctx, r, snapshot.CheckOptions{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("check after prune: %v %+v", err, rep)
	}
	// Nothing is left to prune: the bases count as used.
	plan, _, err = snapshot.Prune(ctx, openRepo(t, s.be), repo.PruneOptions{MaxUnused: 0}, true, true)
	if err != nil || len(plan.Delete)+len(plan.Repack) != 0 {
		t.Fatalf("second prune would delete %d and repack %d packs: %v", len(plan.Delete), len(plan.Repack), err)
	}
}

// TestDeltaDamagedBase: a damaged base is found by check --read-data as
// damage of the snapshots whose deltas depend on it (and of day 1, which
// holds it), and reading a dependant fails with ErrInvalidData.
func TestDeltaDamagedBase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := backupDays(t, 3)
	r := openRepo(t, s.be)
	var blob, base id.ID
	for blob, base = range deltas(t, r, s.sns[2]) {
		break
	}
	loc := r.Index().Lookup(repo.DataBlob, base)[0]
	h := backends.Handle{Type: backends.PackFile, Name: loc.Pack.ID.String()}
	data, err := backends.LoadAll(ctx, s.be, h)
	if err != nil {
		t.Fatal(err)
	}
	data[loc.Offset+loc.Length/2] ^= 1
	if err := s.be.Save(ctx, h, backends.NewByteReader(data)); err != nil {
		t.Fatal(err)
	}
	r = openRepo(t, s.be)
	if _, err := r.LoadBlob(ctx, repo.DataBlob, blob, nil); !errors.Is(err, repo.ErrInvalidData) {
		t.Fatalf("loading a delta with a damaged base: %v", err)
	}
	if _, err := dumpContent(ctx, r, s.sns[2]); !errors.Is(err, repo.ErrInvalidData) {
		t.Fatalf("reading day 3: %v", err)
	}
	rep, err := snapshot.Check(ctx, r, snapshot.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, bad := rep.BadBlobs[blob]; !bad {
		t.Errorf("check does not report the dependant %s as bad", blob.Str())
	}
	affected := map[id.ID]bool{}
	for _, a := range rep.Affected {
		affected[a.ID] = true
	}
	if !affected[s.sns[0].ID] || !affected[s.sns[2].ID] {
		t.Fatalf("affected %+v; want day 1 (the base) and day 3 (a dependant)", rep.Affected)
	}
	// Without --read-data a base no index names is found too.
	if err := s.be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	rep, err = snapshot.Check(ctx, openRepo(t, s.be), snapshot.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, bad := rep.BadBlobs[blob]; !bad || rep.OK() {
		t.Fatalf("check without read-data after removing the base's pack: bad %v", rep.BadBlobs)
	}
}

// TestDeltaWriteOnlyHost: a host with a write-only key stores deltas
// across several days from its base cache, and full blobs without one; a
// full key reads every day back. Trim keeps the cache bounded.
func TestDeltaWriteOnlyHost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, withCache := range []bool{true, false} {
		t.Run(fmt.Sprintf("cache=%v", withCache), func(t *testing.T) {
			t.Parallel()
			be := mem.New()
			dump := chunk.DumpParams()
			full, err := repo.Init(ctx, be, repo.InitOptions{Options: repo.Options{Passphrase: []byte(deltaPass)},
				S2K: crypto.S2KIterated, Chunker: &dump})
			if err != nil {
				t.Fatal(err)
			}
			keyFile, err := crypto.EncryptWithPassphrase(full.Keys().Secrets.WriteOnlyCopy(), []byte("writer"), crypto.S2KIterated)
			if err != nil {
				t.Fatal(err)
			}
			if err := be.Save(ctx, backends.Handle{Type: backends.KeyFile, Name: id.Hash(keyFile).String()}, backends.NewByteReader(keyFile)); err != nil {
				t.Fatal(err)
			}
			var cache *archiver.BaseCache
			dir := t.TempDir()
			if withCache {
				if cache, err = archiver.OpenBaseCache(dir, 64<<20, nil); err != nil {
					t.Fatal(err)
				}
			}
			var sns []*snapshot.Snapshot
			var parent *snapshot.Snapshot
			for d := 1; d <= 4; d++ {
				w, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte("writer")})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.LoadIndex(ctx); err != nil {
					t.Fatal(err)
				}
				if w.CanRead() {
					t.Fatal("the writer's key can read")
				}
				a := archiver.New(w, archiver.Options{Parent: parent, Bases: cache})
				sn, err := a.BackupReader(ctx, bytes.NewReader(dumpDay(d)), "dump.sql", archiver.Meta{}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if cache != nil {
					if _, err := cache.Trim(time.Hour); err != nil {
						t.Fatal(err)
					}
				}
				sns = append(sns, sn)
				parent = sn
				t.Logf("day %d: %d bytes stored", d, sn.Summary.BytesStored)
			}
			r := openRepo(t, be)
			for d, sn := range sns {
				got, err := dumpContent(ctx, r, sn)
				if err != nil || !bytes.Equal(got, dumpDay(d+1)) {
					t.Fatalf("day %d: %v", d+1, err)
				}
				if n := len(deltas(t, r, sn)); d > 0 && (n > 0) != withCache {
					t.Errorf("day %d: %d delta blobs with cache %v", d+1, n, withCache)
				}
				if d > 0 && withCache && !deltaSized(sn.Summary.BytesStored, sns[0].Summary.BytesStored) {
					t.Errorf("day %d: stored %d bytes, day 1 %d", d+1, sn.Summary.BytesStored, sns[0].Summary.BytesStored)
				}
			}
			if cache != nil {
				// Trimmed to nothing, the cache gives nothing: full blobs again.
				small, err := archiver.OpenBaseCache(dir, 0, nil)
				if err != nil {
					t.Fatal(err)
				}
				if size, err := small.Trim(time.Hour); err != nil || size != 0 {
					t.Fatalf("trim to 0: %d bytes left, %v", size, err)
				}
			}
		})
	}
}
