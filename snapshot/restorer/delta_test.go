package restorer_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/backendtest"
	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/chunk"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/archiver"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

// seriesDay is day d of a dump whose rows change a little every day,
// scattered, so that nearly every chunk of a later day is a delta.
func seriesDay(d int) []byte {
	var b bytes.Buffer
	for i := range 110000 + 40*d {
		seen := 0
		for v := 2; v <= d; v++ {
			if (i*2654435761+v*40503)%97 == 0 {
				seen = v
			}
		}
		h := id.Hash(fmt.Appendf(nil, "%d", i))
		fmt.Fprintf(&b, "INSERT INTO visits VALUES (%d, 'host%x.example.org', %d, 'seen on day %d');\n", i, h[:5], h[6], seen)
	}
	return b.Bytes()
}

// TestRestoreDeepDeltaSeries backs up seven days of a dump, each against
// the day before, so that the last day is nearly all delta blobs whose
// bases lie in the packs of earlier days; then restores and dumps day 7
// from a freshly opened repository (no base cached) and requires the same
// bytes, and that the bases were read in batches with their packs: fewer
// pack reads than delta blobs (one read per delta's base before).
func TestRestoreDeepDeltaSeries(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	const pass = "delta restore"
	dump := chunk.DumpParams()
	r, err := repo.Init(ctx, be, repo.InitOptions{Options: repo.Options{Passphrase: []byte(pass)},
		S2K: crypto.S2KIterated, PackSize: 1 << 20, Chunker: &dump})
	if err != nil {
		t.Fatal(err)
	}
	var parent *snapshot.Snapshot
	for d := 1; d <= 7; d++ {
		a := archiver.New(r, archiver.Options{Parent: parent})
		sn, err := a.BackupReader(ctx, bytes.NewReader(seriesDay(d)), "dump.sql", archiver.Meta{Host: "h"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		parent = sn
	}
	r.Close()

	var loads atomic.Int64
	counted := &backendtest.Faulty{Backend: be, FailLoad: func(h backends.Handle) error {
		if h.Type == backends.PackFile {
			loads.Add(1)
		}
		return nil
	}}
	r, err = repo.Open(ctx, counted, repo.Options{Passphrase: []byte(pass)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if probs, err := r.LoadIndex(ctx); err != nil || len(probs) > 0 {
		t.Fatalf("LoadIndex: %v %v", err, probs)
	}
	n, err := restorer.FindNode(ctx, r, parent, "/dump.sql")
	if err != nil {
		t.Fatal(err)
	}
	deltas := 0
	for _, c := range n.Content {
		if loc := r.Index().Lookup(pack.DataBlob, c)[0]; !loc.Base.IsNull() {
			deltas++
		}
	}
	if deltas < len(n.Content)/2 || deltas < 20 {
		t.Fatalf("day 7 has %d delta blobs of %d: the test wants mostly deltas", deltas, len(n.Content))
	}
	want := seriesDay(7)

	target := t.TempDir()
	loads.Store(0)
	if _, err := restorer.Restore(ctx, r, parent, target, restorer.Options{Workers: 4}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(target, "dump.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("restore: %d bytes differ from the %d backed up", len(got), len(want))
	}
	restoreLoads := loads.Load()

	loads.Store(0)
	var out bytes.Buffer
	if err := restorer.Dump(ctx, r, n, &out, 2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("dump: %d bytes differ from the %d backed up", out.Len(), len(want))
	}
	dumpLoads := loads.Load()
	t.Logf("%d blobs, %d deltas, %d packs; pack reads: restore %d, dump %d", len(n.Content), deltas, len(r.Index().Packs()), restoreLoads, dumpLoads)
	for name, l := range map[string]int64{"restore": restoreLoads, "dump": dumpLoads} {
		if l*2 > int64(deltas) {
			t.Errorf("%s made %d pack reads for %d delta blobs: bases not read in batches", name, l, deltas)
		}
	}
}
