package main

// End-to-end test of delta blobs and format versions (docs/FORMAT.md,
// section 14) against the real binary.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoard-backup/hoard/backends/local"
	"github.com/hoard-backup/hoard/chunk"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
	"github.com/hoard-backup/hoard/snapshot"
)

// deltaDump is day d of a small dump whose login column changes on about
// 1 % of the rows a day, scattered: every chunk changes daily.
func deltaDump(d int) []byte {
	var b bytes.Buffer
	for i := 0; i < 20000+40*d; i++ {
		login := 0
		for v := 2; v <= d; v++ {
			if (i*2654435761+v*40503)%100 == 0 {
				login = v
			}
		}
		h := id.Hash(fmt.Appendf(nil, "%d", i))
		fmt.Fprintf(&b, "INSERT INTO users VALUES (%d, 'user%x@example.com', 'login on day %d', %d);\n", i, h[:6], login, h[7])
	}
	return b.Bytes()
}

// TestE2EDeltaVersions: a version 1 repository is read and written
// without deltas; hoard migrate makes it version 2, after which a daily
// dump stores deltas; check --read-data passes; a damaged base makes
// check --read-data and the dump of a dependant exit 14.
func TestE2EDeltaVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnvNoInit(t)
	be, err := local.Open(ctx, local.Config{Path: e.repo})
	if err != nil {
		t.Fatal(err)
	}
	dump := chunk.DumpParams()
	r, err := repo.Init(ctx, be, repo.InitOptions{Options: repo.Options{Passphrase: []byte(testPassphrase)},
		S2K: crypto.S2KIterated, Chunker: &dump, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()

	// added is what each backup adds to the repository.
	added := map[int]int64{}
	backup := func(d int) backupResult {
		before := e.repoSize()
		res := e.mustBackup(bytes.NewReader(deltaDump(d)), "--stdin", "--stdin-filename", "dump.sql")
		added[d] = e.repoSize() - before
		return res
	}
	day1 := backup(1)
	day2 := backup(2)
	if added[2]*2 < added[1] {
		t.Fatalf("version 1: day 2 added %d bytes, day 1 %d: deltas in a version 1 repository?", added[2], added[1])
	}
	if out := e.mustRun("migrate"); !strings.Contains(out, "from format version 1 to 2") {
		t.Fatalf("migrate: %q", out)
	}
	if out := e.mustRun("migrate"); !strings.Contains(out, "at format version 2 already") {
		t.Fatalf("second migrate: %q", out)
	}
	day3 := backup(3)
	if added[3]*8 > added[1] {
		t.Fatalf("version 2: day 3 added %d bytes, day 1 %d: no deltas", added[3], added[1])
	}
	t.Logf("added per day: %v", added)
	e.mustRun("check", "--read-data")
	for d, sn := range []string{day1.ID, day2.ID, day3.ID} {
		if got := e.mustRun("dump", sn, "/dump.sql"); got != string(deltaDump(d+1)) {
			t.Fatalf("dump of day %d differs", d+1)
		}
	}

	// Damage the base of one of day 3's deltas.
	be, err = local.Open(ctx, local.Config{Path: e.repo})
	if err != nil {
		t.Fatal(err)
	}
	r, err = repo.Open(ctx, be, repo.Options{Passphrase: []byte(testPassphrase)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	snID, err := id.Parse(day3.ID)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := snapshot.Load(ctx, r, snID)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := snapshot.LoadTree(ctx, r, sn.Tree)
	if err != nil {
		t.Fatal(err)
	}
	var base id.ID
	for _, c := range tr.Find("dump.sql").Content {
		if loc := r.Index().Lookup(pack.DataBlob, c)[0]; !loc.Base.IsNull() {
			base = loc.Base
			break
		}
	}
	if base.IsNull() {
		t.Fatal("day 3 has no delta blob")
	}
	loc := r.Index().Lookup(pack.DataBlob, base)[0]
	name := loc.Pack.ID.String()
	path := filepath.Join(e.repo, "data", name[:2], name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[loc.Offset+loc.Length/2] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := e.run("check", "--read-data"); code != exitDamaged {
		t.Fatalf("check --read-data with a damaged base: exit %d\n%s\n%s", code, out, stderr)
	}
	if _, stderr, code := e.run("dump", day3.ID, "/dump.sql"); code != exitDamaged {
		t.Fatalf("dump of a dependant of a damaged base: exit %d\n%s", code, stderr)
	}
}
