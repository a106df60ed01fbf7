package main

// End-to-end tests of check --read-data-subset, repair index and repair
// snapshots.

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
	"github.com/hoard-backup/hoard/snapshot"
)

type checkResult struct {
	OK        bool `json:"ok"`
	Packs     int  `json:"packs"`
	PacksRead int  `json:"packs_read"`
	Problems  []struct {
		File string `json:"file"`
	} `json:"problems"`
}

// historyEnv makes a repository with three snapshots of a changing tree and
// returns it with each snapshot's expected digest.
func historyEnv(t *testing.T, seed uint64) (*env, map[string]string) {
	e := newEnv(t)
	src := newPruneSrc(t, testSeed(t, seed))
	truth := map[string]string{}
	for i := range 3 {
		if i > 0 {
			src.change(t)
		}
		res := e.mustBackup(nil, src.dir)
		truth[res.ID] = digest(t, src.dir)
	}
	return e, truth
}

func (e *env) indexFiles() []string {
	e.t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(e.repo, "index"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func TestE2ECheckSubset(t *testing.T) {
	t.Parallel()
	e, _ := historyEnv(t, 21)
	var full checkResult
	e.mustRunJSON(&full, "check", "--read-data")
	total := 0
	for _, s := range []string{"1/2", "2/2"} {
		var c checkResult
		e.mustRunJSON(&c, "check", "--read-data-subset", s)
		total += c.PacksRead
	}
	if total != full.Packs || full.PacksRead != full.Packs {
		t.Fatalf("1/2 + 2/2 read %d packs; there are %d (full check read %d)", total, full.Packs, full.PacksRead)
	}
	var c checkResult
	e.mustRunJSON(&c, "check", "--read-data-subset", "100%")
	if c.PacksRead != full.Packs {
		t.Errorf("100%% read %d of %d packs", c.PacksRead, full.Packs)
	}
	// A size: random packs up to it, at least one; all when it is larger
	// than the repository.
	e.mustRunJSON(&c, "check", "--read-data-subset", "1K")
	if c.PacksRead != 1 {
		t.Errorf("1K read %d packs, want 1 (every pack is larger)", c.PacksRead)
	}
	e.mustRunJSON(&c, "check", "--read-data-subset", "1T")
	if c.PacksRead != full.Packs {
		t.Errorf("1T read %d of %d packs", c.PacksRead, full.Packs)
	}
	if out := e.mustRun("check", "--read-data-subset", "1t"); !strings.Contains(out, "(subset 1T)") {
		t.Errorf("text output:\n%s", out)
	}
	for _, bad := range []string{"0/2", "3/2", "0%", "x", "0M", "5X"} {
		if _, _, code := e.run("check", "--read-data-subset", bad); code != exitUsage {
			t.Errorf("--read-data-subset %s: exit %d, want %d", bad, code, exitUsage)
		}
	}
	// Damage a data pack (tree packs are read by every check): exactly one
	// of the two subsets finds it.
	r := dmgOpen(t, e.repo)
	var victim string
	for _, p := range r.Index().Packs() {
		if p.Kind == pack.DataBlob {
			victim = filepath.Join(e.repo, dmgPackOf(p.ID.String()))
		}
	}
	r.Close()
	fi, err := os.Stat(victim)
	if err != nil {
		t.Fatal(err)
	}
	dmgFlipByte(t, victim, fi.Size()/2)
	found := 0
	for _, s := range []string{"1/2", "2/2"} {
		out, _, code := e.run("check", "--read-data-subset", s)
		if code == exitDamaged && strings.Contains(out, filepath.Base(victim)) {
			found++
		} else if code != 0 {
			t.Errorf("check subset %s: exit %d\n%s", s, code, out)
		}
	}
	if found != 1 {
		t.Errorf("%d subsets found the damaged pack, want 1", found)
	}
}

func TestE2ERepairIndex(t *testing.T) {
	t.Parallel()
	e, truth := historyEnv(t, 22)
	verifyAll := func() {
		t.Helper()
		e.checkReadData()
		for id, want := range truth {
			e.verifyRestore(id, want)
		}
	}
	// Every index file deleted.
	for _, p := range e.indexFiles() {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, code := e.run("check"); code == 0 {
		t.Fatal("check passed without an index")
	}
	var st struct {
		Packs             int      `json:"packs"`
		IndexFilesRemoved int      `json:"index_files_removed"`
		Unreadable        []string `json:"unreadable_packs"`
	}
	e.mustRunJSON(&st, "repair", "index")
	if st.Packs == 0 || st.IndexFilesRemoved != 0 || len(st.Unreadable) != 0 || len(e.indexFiles()) != 1 {
		t.Fatalf("repair index: %+v, %d index files", st, len(e.indexFiles()))
	}
	verifyAll()

	// One index file of several damaged.
	src := newPruneSrc(t, 23)
	res := e.mustBackup(nil, src.dir)
	truth[res.ID] = digest(t, src.dir)
	files := e.indexFiles()
	if len(files) != 2 {
		t.Fatalf("%d index files", len(files))
	}
	dmgFlipByte(t, files[0], 40)
	if _, _, code := e.run("check"); code != exitDamaged {
		t.Fatalf("check with a damaged index file: exit %d", code)
	}
	e.mustRunJSON(&st, "repair", "index")
	if st.IndexFilesRemoved != 2 || len(e.indexFiles()) != 1 {
		t.Fatalf("repair index: %+v, %d index files", st, len(e.indexFiles()))
	}
	verifyAll()
}

func TestE2ERepairSnapshots(t *testing.T) {
	t.Parallel()
	e, truth := historyEnv(t, 24)
	ids := e.snapshotIDs()
	newest := ids[len(ids)-1]
	// Damage the first blob of the newest snapshot's src/f0 (random data
	// each snapshot rewrote or kept; find which snapshots use it).
	r := dmgOpen(t, e.repo)
	ctx := context.Background()
	nid, _ := id.Parse(newest)
	sn, err := snapshot.Load(ctx, r, nid)
	if err != nil {
		t.Fatal(err)
	}
	root, err := snapshot.LoadTree(ctx, r, sn.Tree)
	if err != nil {
		t.Fatal(err)
	}
	srcTree, err := snapshot.LoadTree(ctx, r, *root.Find("src").Subtree)
	if err != nil {
		t.Fatal(err)
	}
	blob := srcTree.Find("f0").Content[0]
	loc := r.Index().Lookup(pack.DataBlob, blob)[0]
	dmgFlipByte(t, filepath.Join(e.repo, dmgPackOf(loc.Pack.ID.String())), int64(loc.Offset+loc.Length/2))
	r.Close()

	type report struct {
		Repaired []struct {
			Old     string   `json:"old"`
			New     string   `json:"new"`
			Removed []string `json:"removed"`
		} `json:"repaired"`
	}
	// A dry run names the same snapshots and files, and writes nothing.
	filesBefore := e.repoFiles()
	var dry report
	e.mustRunJSON(&dry, "repair", "snapshots", "--read-data", "--forget", "--dry-run")
	if len(dry.Repaired) == 0 {
		t.Fatal("dry run: nothing would be repaired")
	}
	if after := e.repoFiles(); !slices.Equal(after, filesBefore) {
		t.Fatalf("the dry run changed the repository: %d files before, %d after", len(filesBefore), len(after))
	}
	var rep report
	e.mustRunJSON(&rep, "repair", "snapshots", "--read-data", "--forget")
	if len(rep.Repaired) != len(dry.Repaired) {
		t.Errorf("repaired %d snapshots, the dry run named %d", len(rep.Repaired), len(dry.Repaired))
	}
	for i := range min(len(rep.Repaired), len(dry.Repaired)) {
		if d, r := dry.Repaired[i], rep.Repaired[i]; d.Old != r.Old || !slices.Equal(d.Removed, r.Removed) {
			t.Errorf("dry run named %s %v, the repair %s %v", d.Old[:8], d.Removed, r.Old[:8], r.Removed)
		}
	}
	if len(rep.Repaired) == 0 {
		t.Fatal("nothing repaired")
	}
	for _, s := range rep.Repaired {
		if len(s.Removed) != 1 || s.Removed[0] != "src/f0" {
			t.Fatalf("snapshot %s: removed %v, want [src/f0]", s.Old[:8], s.Removed)
		}
		want := truth[s.Old]
		delete(truth, s.Old)
		var lines []string
		for _, l := range strings.Split(want, "\n") {
			if !strings.HasPrefix(l, "f0 ") {
				lines = append(lines, l)
			}
		}
		truth[s.New] = strings.Join(lines, "\n")
	}
	t.Logf("repaired %d of %d snapshots", len(rep.Repaired), len(ids))
	if got := len(e.snapshotIDs()); got != len(ids) {
		t.Fatalf("%d snapshots after repair --forget, want %d", got, len(ids))
	}
	// Structure is whole; reading data still finds the damaged pack (it is
	// still indexed) but no snapshot needs it. Prune --max-unused 0 repacks
	// it without the damaged blob; then check --read-data passes.
	e.mustRun("check")
	out, _, code := e.run("--json", "check", "--read-data")
	if code != exitDamaged || !strings.Contains(out, loc.Pack.ID.String()) || strings.Contains(out, `"affected_snapshots": [`) {
		t.Fatalf("check --read-data after repair: exit %d\n%s", code, out)
	}
	e.mustRun("prune", "--max-unused", "0%")
	e.checkReadData()
	for id, want := range truth {
		e.verifyRestore(id, want)
	}
	var tagged []struct {
		Tags []string `json:"tags"`
	}
	e.mustRunJSON(&tagged, "snapshots")
	n := 0
	for _, s := range tagged {
		if len(s.Tags) == 1 && s.Tags[0] == snapshot.RepairTag {
			n++
		}
	}
	if n != len(rep.Repaired) {
		t.Errorf("%d snapshots tagged repaired, want %d", n, len(rep.Repaired))
	}
}
