package snapshot_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/snapshot"
)

// pruneFixture is a repository in memory with snapshots made of blobs
// drawn from a sliding window over a pool, so that snapshots share data
// and forgetting some leaves packs partly used.
type pruneFixture struct {
	be    *mem.Backend
	files map[string]map[string][]byte // snapshot ID -> file name -> content
}

const prunePass = "prune test"

func newPruneFixture(t *testing.T, seed uint64, nSnaps int) *pruneFixture {
	t.Helper()
	ctx := context.Background()
	be := mem.New()
	r, err := repo.Init(ctx, be, repo.InitOptions{Options: repo.Options{Passphrase: []byte(prunePass)},
		S2K: crypto.S2KIterated, PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	pool := make([][]byte, nSnaps+8)
	for i := range pool {
		pool[i] = make([]byte, 40<<10+rng.IntN(40<<10))
		for j := range pool[i] {
			pool[i][j] = byte(rng.Uint32())
		}
	}
	f := &pruneFixture{be: be, files: map[string]map[string][]byte{}}
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for s := range nSnaps {
		content := map[string][]byte{}
		var nodes []snapshot.Node
		for k := range 3 { // three files of three blobs each, from the window s..s+8
			var data []byte
			n := snapshot.Node{Name: fmt.Sprintf("f%d", k), Type: snapshot.TypeFile, Mode: 0o644}
			for b := range 3 {
				blob := pool[s+(k*3+b)%9]
				res, err := r.SaveBlob(ctx, repo.DataBlob, blob)
				if err != nil {
					t.Fatal(err)
				}
				n.Content = append(n.Content, res.ID)
				data = append(data, blob...)
			}
			n.Size = uint64(len(data))
			content[n.Name] = data
			nodes = append(nodes, n)
		}
		sub := &snapshot.Tree{Nodes: nodes}
		subID, _, err := snapshot.SaveTree(ctx, r, sub)
		if err != nil {
			t.Fatal(err)
		}
		root := &snapshot.Tree{Nodes: []snapshot.Node{{Name: "dir", Type: snapshot.TypeDir, Mode: 0o755, Subtree: &subID}}}
		rootID, _, err := snapshot.SaveTree(ctx, r, root)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		sn := &snapshot.Snapshot{Time: base.Add(time.Duration(s) * time.Hour), Host: "h", Paths: []string{"/dir"},
			Source: snapshot.Source{Kind: snapshot.KindFiles}, Tree: rootID}
		if err := snapshot.Save(ctx, r, sn); err != nil {
			t.Fatal(err)
		}
		f.files[sn.ID.String()] = content
	}
	return f
}

func (f *pruneFixture) open(t *testing.T) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), f.be, repo.Options{Passphrase: []byte(prunePass)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// verify checks the repository and that every snapshot left reads back
// byte-identical.
func (f *pruneFixture) verify(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	r := f.open(t)
	rep, err := snapshot.Check(ctx, r, snapshot.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("check: %+v", rep)
	}
	sns, probs, err := snapshot.List(ctx, r)
	if err != nil || len(probs) > 0 {
		t.Fatal(err, probs)
	}
	if len(sns) != len(f.files) {
		t.Fatalf("%d snapshots, want %d", len(sns), len(f.files))
	}
	for _, sn := range sns {
		want := f.files[sn.ID.String()]
		root, err := snapshot.LoadTree(ctx, r, sn.Tree)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := snapshot.LoadTree(ctx, r, *root.Find("dir").Subtree)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range sub.Nodes {
			var got []byte
			for _, c := range n.Content {
				b, err := r.LoadBlob(ctx, repo.DataBlob, c, nil)
				if err != nil {
					t.Fatalf("snapshot %s file %s: %v", sn.ID.Str(), n.Name, err)
				}
				got = append(got, b...)
			}
			if !bytes.Equal(got, want[n.Name]) {
				t.Fatalf("snapshot %s file %s differs", sn.ID.Str(), n.Name)
			}
		}
	}
}

func (f *pruneFixture) size(t *testing.T) (n int64, files int) {
	t.Helper()
	err := f.be.List(context.Background(), backends.PackFile, func(fi backends.FileInfo) error {
		n += fi.Size
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, files
}

func TestPruneAfterForget(t *testing.T) {
	ctx := context.Background()
	f := newPruneFixture(t, 42, 10)
	f.verify(t)
	before, _ := f.size(t)

	// Forget every other snapshot (restic-style keep-last would keep the newest; here by hand).
	r := f.open(t)
	sns, _, err := snapshot.List(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	for i, sn := range sns {
		if i%2 == 0 {
			if err := f.be.Remove(ctx, backends.Handle{Type: backends.SnapshotFile, Name: sn.ID.String()}); err != nil {
				t.Fatal(err)
			}
			delete(f.files, sn.ID.String())
		}
	}
	// A pack no index names, as a crashed backup leaves it.
	orphan := []byte("not really a pack, but named as one")
	if err := f.be.Save(ctx, backends.Handle{Type: backends.PackFile, Name: fmt.Sprintf("%064x", 7)}, backends.NewByteReader(orphan)); err != nil {
		t.Fatal(err)
	}

	// A dry run changes nothing.
	plan, _, err := snapshot.Prune(ctx, f.open(t), repo.PruneOptions{MaxUnused: 0.05}, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Delete)+len(plan.Repack) == 0 || len(plan.Unindexed) != 1 || plan.CopyBlobs == 0 {
		t.Fatalf("plan: delete %d repack %d unindexed %d copy %d", len(plan.Delete), len(plan.Repack), len(plan.Unindexed), plan.CopyBlobs)
	}
	if n, _ := f.size(t); n != before+int64(len(orphan)) {
		t.Fatalf("dry run changed the repository")
	}

	plan, st, err := snapshot.Prune(ctx, f.open(t), repo.PruneOptions{MaxUnused: 0.05}, true, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan: delete %d repack %d keep %d copy %d blobs; stats %+v", len(plan.Delete), len(plan.Repack), plan.Keep, plan.CopyBlobs, st)
	after, _ := f.size(t)
	if after >= before {
		t.Errorf("packs: %d bytes before, %d after", before, after)
	}
	f.verify(t)
	idx, err := f.open(t).List(ctx, repo.IndexFile)
	if err != nil || len(idx) != 1 {
		t.Fatalf("%d index files after prune (%v), want 1", len(idx), err)
	}

	// A second prune finds nothing to do.
	plan, _, err = snapshot.Prune(ctx, f.open(t), repo.PruneOptions{MaxUnused: 0.05}, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Delete)+len(plan.Repack)+len(plan.Unindexed) != 0 || plan.UnusedBlobs != 0 {
		t.Errorf("second prune: delete %d repack %d unindexed %d unused %d", len(plan.Delete), len(plan.Repack), len(plan.Unindexed), plan.UnusedBlobs)
	}
	f.verify(t)

	// Forget everything: prune empties the repository of packs.
	for id := range f.files {
		if err := f.be.Remove(ctx, backends.Handle{Type: backends.SnapshotFile, Name: id}); err != nil {
			t.Fatal(err)
		}
		delete(f.files, id)
	}
	if _, _, err := snapshot.Prune(ctx, f.open(t), repo.PruneOptions{MaxUnused: 0.05}, true, false); err != nil {
		t.Fatal(err)
	}
	if n, files := f.size(t); files != 0 {
		t.Errorf("%d packs (%d bytes) left after forgetting everything", files, n)
	}
	f.verify(t)
}

// TestPruneRefuses checks that prune removes nothing when what it would
// need to know is unreadable.
func TestPruneRefuses(t *testing.T) {
	ctx := context.Background()
	f := newPruneFixture(t, 7, 4)
	r := f.open(t)
	idx, err := r.List(ctx, repo.IndexFile)
	if err != nil {
		t.Fatal(err)
	}
	// Damage one index file: its packs would look unindexed.
	h := backends.Handle{Type: backends.IndexFile, Name: idx[0].String()}
	raw, err := backends.LoadAll(ctx, f.be, h)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 1
	if err := f.be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := f.be.Save(ctx, h, backends.NewByteReader(raw)); err != nil {
		t.Fatal(err)
	}
	before, nb := f.size(t)
	_, _, err = snapshot.Prune(ctx, f.open(t), repo.PruneOptions{MaxUnused: 0.05}, true, false)
	if err == nil {
		t.Fatal("prune with a damaged index file succeeded")
	}
	t.Log(err)
	if after, na := f.size(t); after != before || na != nb {
		t.Fatal("a refused prune changed the packs")
	}
}
