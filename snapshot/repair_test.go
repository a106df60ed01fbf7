package snapshot_test

import (
	"context"
	"testing"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/pack"
	"github.com/hoard-backup/hoard/snapshot"
)

func indexFiles(t *testing.T, f *pruneFixture) []string {
	t.Helper()
	var names []string
	err := f.be.List(context.Background(), backends.IndexFile, func(fi backends.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestRebuildIndex(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []string{"deleted", "damaged"} {
		t.Run(tc, func(t *testing.T) {
			f := newPruneFixture(t, 9, 6)
			old := indexFiles(t, f)
			if len(old) < 2 {
				t.Fatalf("%d index files", len(old))
			}
			for i, n := range old {
				h := backends.Handle{Type: backends.IndexFile, Name: n}
				switch {
				case tc == "deleted":
					if err := f.be.Remove(ctx, h); err != nil {
						t.Fatal(err)
					}
				case i == 0:
					corruptFile(t, f.be, h)
				}
			}
			st, err := f.open(t).RebuildIndex(ctx)
			if err != nil || len(st.Problems) > 0 {
				t.Fatalf("rebuild: %v %+v", err, st.Problems)
			}
			wantRemoved := len(old)
			if tc == "deleted" {
				wantRemoved = 0
			}
			if st.IndexFilesRemoved != wantRemoved || st.Packs == 0 {
				t.Errorf("stats %+v", st)
			}
			if got := indexFiles(t, f); len(got) != 1 || got[0] != st.IndexFile.String() {
				t.Errorf("index files after rebuild: %v", got)
			}
			f.verify(t)
		})
	}
}

func TestRebuildIndexUnreadablePack(t *testing.T) {
	ctx := context.Background()
	f := newPruneFixture(t, 10, 3)
	r := f.open(t)
	if _, err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	var victim string
	var size uint64
	for _, p := range r.Index().Packs() {
		if p.Kind == repo.DataBlob {
			victim, size = p.ID.String(), p.Size
		}
	}
	// Damage the sealed header (just before the trailer).
	h := backends.Handle{Type: backends.PackFile, Name: victim}
	raw, err := backends.LoadAll(ctx, f.be, h)
	if err != nil || uint64(len(raw)) != size {
		t.Fatal(err)
	}
	raw[len(raw)-pack.TrailerSize-5] ^= 1
	if err := f.be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := f.be.Save(ctx, h, backends.NewByteReader(raw)); err != nil {
		t.Fatal(err)
	}
	st, err := f.open(t).RebuildIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Problems) != 1 || st.Problems[0].ID.String() != victim {
		t.Fatalf("problems %+v, want pack %s", st.Problems, victim[:8])
	}
	if _, err := f.be.Stat(ctx, h); err != nil {
		t.Errorf("the unreadable pack was not left alone: %v", err)
	}
	t.Log(st.Problems[0].Err)
}

func TestRepairSnapshots(t *testing.T) {
	ctx := context.Background()
	f := newPruneFixture(t, 11, 4)
	r := f.open(t)
	sns, _, err := snapshot.List(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	// Damage the one blob only the newest snapshot's file f2 holds
	// (the window slides: pool[s+8] is new in snapshot s).
	last := sns[len(sns)-1]
	root, _ := snapshot.LoadTree(ctx, r, last.Tree)
	sub, _ := snapshot.LoadTree(ctx, r, *root.Find("dir").Subtree)
	victim := sub.Find("f2").Content[2]
	loc := r.Index().Lookup(repo.DataBlob, victim)[0]
	h := backends.Handle{Type: backends.PackFile, Name: loc.Pack.ID.String()}
	raw, err := backends.LoadAll(ctx, f.be, h)
	if err != nil {
		t.Fatal(err)
	}
	raw[loc.Offset+loc.Length/2] ^= 1
	if err := f.be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := f.be.Save(ctx, h, backends.NewByteReader(raw)); err != nil {
		t.Fatal(err)
	}

	// Without reading data nothing looks wrong; with it, one snapshot is repaired.
	rep, err := snapshot.RepairSnapshots(ctx, f.open(t), snapshot.RepairOptions{})
	if err != nil || len(rep.Repaired) != 0 {
		t.Fatalf("repair without read-data: %v %+v", err, rep)
	}
	rep, err = snapshot.RepairSnapshots(ctx, f.open(t), snapshot.RepairOptions{ReadData: true, Forget: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Repaired) != 1 || rep.Repaired[0].Old != last.ID || len(rep.Repaired[0].Removed) != 1 || rep.Repaired[0].Removed[0] != "dir/f2" {
		t.Fatalf("repaired %+v", rep.Repaired)
	}
	want := f.files[last.ID.String()]
	delete(f.files, last.ID.String())
	delete(want, "f2")
	f.files[rep.Repaired[0].New.String()] = want
	nsn, err := snapshot.Load(ctx, f.open(t), rep.Repaired[0].New)
	if err != nil || len(nsn.Tags) != 1 || nsn.Tags[0] != snapshot.RepairTag || !nsn.Time.Equal(last.Time) {
		t.Fatalf("new snapshot %+v %v", nsn, err)
	}

	// The damaged pack is still there: check reads it and complains, but no
	// snapshot is affected. Prune with --max-unused 0 repacks it (its damaged
	// blob is unused now), after which check --read-data passes.
	rc, err := snapshot.Check(ctx, f.open(t), snapshot.CheckOptions{ReadData: true})
	if err != nil || len(rc.Affected) != 0 || len(rc.Problems) == 0 {
		t.Fatalf("check after repair: %v %+v", err, rc)
	}
	for _, p := range rc.Problems {
		if p.File != "data/"+h.Name[:2]+"/"+h.Name {
			t.Errorf("check after repair: problem in %s", p.File)
		}
	}
	if _, _, err := snapshot.Prune(ctx, f.open(t), repo.PruneOptions{MaxUnused: 0}, true, false); err != nil {
		t.Fatal(err)
	}
	f.verify(t)
}
