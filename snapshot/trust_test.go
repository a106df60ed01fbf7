package snapshot_test

import (
	"context"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
)

// TestRepairDoesNotLaunder: repair rewrites a snapshot another key wrote
// without authenticating it as its own, so that a write-only holder cannot
// have a forged snapshot (made to need repair) turned into one the
// repairing host takes as a trusted parent. Its own snapshots stay its own.
func TestRepairDoesNotLaunder(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	ra, err := repo.Init(ctx, be, repo.InitOptions{Options: repo.Options{Passphrase: []byte("a")}, S2K: crypto.S2KIterated})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ra.AddKey(ctx, repo.AddKeyOptions{Kind: crypto.WriteOnly, Passphrase: []byte("b"), S2K: crypto.S2KIterated}); err != nil {
		t.Fatal(err)
	}
	rb, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte("b")})
	if err != nil {
		t.Fatal(err)
	}
	// One snapshot by each key, each naming a blob that is not stored.
	save := func(r *repo.Repository, host string) *snapshot.Snapshot {
		tree := &snapshot.Tree{Nodes: []snapshot.Node{{Name: "f", Type: snapshot.TypeFile, Mode: 0o600, Size: 3,
			ModTime: time.Unix(1, 0).UTC(), Content: []id.ID{id.Hash([]byte("missing " + host))}}}}
		tid, _, err := snapshot.SaveTree(ctx, r, tree)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		sn := &snapshot.Snapshot{Time: time.Now(), Host: host, Paths: []string{"/srv"}, Source: snapshot.Source{Kind: snapshot.KindFiles}, Tree: tid}
		if err := snapshot.Save(ctx, r, sn); err != nil {
			t.Fatal(err)
		}
		return sn
	}
	own, other := save(ra, "a"), save(rb, "b")
	if snapshot.Verify(ra, own) != repo.TrustThisKey || snapshot.Verify(ra, other) != repo.TrustVerified {
		t.Fatalf("before repair: own %s, other %s", snapshot.Verify(ra, own), snapshot.Verify(ra, other))
	}
	if _, err := ra.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := snapshot.RepairSnapshots(ctx, ra, snapshot.RepairOptions{})
	if err != nil || len(rep.Repaired) != 2 {
		t.Fatalf("repair: %v, %+v", err, rep)
	}
	for _, rs := range rep.Repaired {
		sn, err := snapshot.Load(ctx, ra, rs.New)
		if err != nil {
			t.Fatal(err)
		}
		want := repo.TrustThisKey
		if rs.Old == other.ID {
			want = repo.TrustNone
		}
		if got := snapshot.Verify(ra, sn); got != want {
			t.Errorf("repaired snapshot of host %s: %s, want %s", sn.Host, got, want)
		}
	}
}
