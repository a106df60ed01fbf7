package main

// End-to-end tests of damaged repositories and crashed backups, run against
// the real binary (see e2e_helpers_test.go).
//
// TestE2EDamage makes a repository with three snapshots of three distinct
// trees, each from its own backup run (so each has its own data packs, tree
// pack, index file and snapshot file), then damages one file of the middle
// snapshot's backup on a fresh copy per kind of damage and checks what
// `check`, `check --read-data` and `restore` say and do. Which snapshots
// and files a damage affects is computed independently through the Go API
// from the undamaged repository.
//
// TestE2ECrash kills backups at the named checkpoints (HOARD_TEST_STALL_AT)
// and at random moments and checks that the repository stays whole.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends/local"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/index"
	"github.com/hoard-backup/hoard/repo/pack"
	"github.com/hoard-backup/hoard/snapshot"
)

// dmgTree is a source tree on disk and what it holds.
type dmgTree struct {
	dir   string             // absolute path, as the snapshot records it
	files map[string]dmgFile // slash path relative to dir -> content
	links map[string]string  // slash path relative to dir -> link target
}

// dmgFile is a file's size and SHA-256: the trees are large, so the test
// does not keep their content in memory.
type dmgFile struct {
	size int
	sum  [32]byte
}

// dmgNewRand returns a seeded generator for file contents and choices.
func dmgNewRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
}

// dmgBytes returns n random bytes (fast: ChaCha8 seeded from rnd).
func dmgBytes(rnd *rand.Rand, n int) []byte {
	var seed [32]byte
	for i := range 4 {
		v := rnd.Uint64()
		for j := range 8 {
			seed[i*8+j] = byte(v >> (8 * j))
		}
	}
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

// dmgMakeTree writes a tree of random files under dir: the sizes are those
// of sizes (by relative path), plus an empty file and a symlink.
func dmgMakeTree(t *testing.T, dir string, rnd *rand.Rand, sizes map[string]int) *dmgTree {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	tr := &dmgTree{dir: abs, files: map[string]dmgFile{}, links: map[string]string{}}
	names := make([]string, 0, len(sizes))
	for n := range sizes {
		names = append(names, n)
	}
	sort.Strings(names) // deterministic use of rnd
	names = append(names, "empty")
	tr.links["link"] = "empty"
	for _, rel := range names {
		b := dmgBytes(rnd, sizes[rel])
		tr.files[rel] = dmgFile{size: len(b), sum: sha256.Sum256(b)}
		p := filepath.Join(abs, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for rel, target := range tr.links {
		if err := os.Symlink(target, filepath.Join(abs, filepath.FromSlash(rel))); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// snapPath is the path of rel inside a snapshot of tr: a backup of a
// path stores it at the root under its base name.
func (tr *dmgTree) snapPath(rel string) string { return "/" + filepath.Base(tr.dir) + "/" + rel }

// dmgVerifyRestore checks a restore of tr into target: every file that is
// there is byte-identical to the original; a file that is not there is
// allowed only when missingOK(its snapshot path) says so. It fails the
// test for any regular file in the target that tr does not have. It
// returns the snapshot paths of the missing files.
func dmgVerifyRestore(t *testing.T, target string, tr *dmgTree, missingOK func(string) bool) []string {
	t.Helper()
	var missing []string
	for rel, want := range tr.files {
		sp := tr.snapPath(rel)
		p := filepath.Join(target, filepath.FromSlash(sp))
		fi, err := os.Lstat(p)
		if err != nil {
			missing = append(missing, sp)
			if !missingOK(sp) {
				t.Errorf("restore: %s is missing (%v)", sp, err)
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			t.Errorf("restore: %s is a %v, not a regular file", sp, fi.Mode().Type())
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("restore: %s: %v", sp, err)
			continue
		}
		if len(got) != want.size || sha256.Sum256(got) != want.sum {
			zero := !slices.ContainsFunc(got, func(c byte) bool { return c != 0 })
			t.Errorf("restore left %s with WRONG bytes: %d bytes (want %d), all zero: %v", sp, len(got), want.size, zero)
		}
	}
	for rel, want := range tr.links {
		sp := tr.snapPath(rel)
		got, err := os.Readlink(filepath.Join(target, filepath.FromSlash(sp)))
		if err != nil {
			if !missingOK(sp) {
				t.Errorf("restore: symlink %s: %v", sp, err)
			}
			continue
		}
		if got != want {
			t.Errorf("restore: symlink %s -> %q, want %q", sp, got, want)
		}
	}
	// Nothing else: no temp files, no stray files.
	if _, err := os.Lstat(target); err != nil {
		return missing
	}
	err := filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(target, p)
		sp := "/" + filepath.ToSlash(rel)
		r, ok := strings.CutPrefix(sp, tr.snapPath(""))
		_, isFile := tr.files[r]
		_, isLink := tr.links[r]
		if !ok || !(isFile || isLink) {
			t.Errorf("restore created %s, which the snapshot does not have", sp)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(missing)
	return missing
}

// dmgNotRestored parses the "not restored: PATH: error" lines of a restore.
func dmgNotRestored(stderr string) []string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		rest, ok := strings.CutPrefix(line, "not restored: ")
		if !ok {
			continue
		}
		if i := strings.Index(rest, ": "); i >= 0 {
			rest = rest[:i]
		}
		out = append(out, rest)
	}
	sort.Strings(out)
	return out
}

// dmgCovered reports whether sp is one of the listed paths or below one.
func dmgCovered(listed []string, sp string) bool {
	for _, l := range listed {
		if sp == l || strings.HasPrefix(sp, strings.TrimSuffix(l, "/")+"/") {
			return true
		}
	}
	return false
}

// dmgFiles lists the regular files under dir, relative and slash-separated.
func dmgFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errorsIsNotExist(err) && p == dir {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func errorsIsNotExist(err error) bool { return err != nil && os.IsNotExist(err) }

// dmgCopyDir copies the directory tree src to dst.
func dmgCopyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(to, fi.Mode().Perm())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// dmgBackup runs `hoard --json backup args...` and returns the snapshot ID.
func dmgBackup(e *env, args ...string) string {
	e.t.Helper()
	var out struct {
		ID string `json:"id"`
	}
	e.mustRunJSON(&out, append([]string{"backup"}, args...)...)
	if len(out.ID) != 64 {
		e.t.Fatalf("backup printed no snapshot ID: %+v", out)
	}
	return out.ID
}

// dmgRepoFiles lists the repository's files of one kind ("data", "index",
// "snapshots"): for data the "data/xx/<id>" paths, else "<kind>/<id>".
func dmgRepoFiles(t *testing.T, repoDir, kind string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, f := range dmgFiles(t, filepath.Join(repoDir, kind)) {
		if strings.Contains(f, ".tmp-") {
			continue
		}
		out[kind+"/"+f] = true
	}
	return out
}

func dmgNew(after, before map[string]bool) []string {
	var out []string
	for f := range after {
		if !before[f] {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// dmgSnap is what the Go API says about one snapshot of the undamaged
// repository.
type dmgSnap struct {
	id    string
	tree  *dmgTree
	files map[string][]id.ID // snapshot path -> data blobs
	trees []id.ID            // every tree blob
}

// dmgTruth is an independent view of the undamaged repository.
type dmgTruth struct {
	r     *repo.Repository
	snaps []*dmgSnap
}

func dmgOpen(t *testing.T, repoDir string) *repo.Repository {
	t.Helper()
	ctx := context.Background()
	be, err := local.Open(ctx, local.Config{Path: repoDir})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte(testPassphrase)})
	if err != nil {
		t.Fatal(err)
	}
	probs, err := r.LoadIndex(ctx)
	if err != nil || len(probs) > 0 {
		t.Fatalf("load index: %v %v", err, probs)
	}
	return r
}

func (tr *dmgTruth) add(t *testing.T, snapID string, tree *dmgTree) {
	t.Helper()
	ctx := context.Background()
	sid, err := id.Parse(snapID)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := snapshot.Load(ctx, tr.r, sid)
	if err != nil {
		t.Fatal(err)
	}
	s := &dmgSnap{id: snapID, tree: tree, files: map[string][]id.ID{}}
	var walk func(tid id.ID, dir string)
	walk = func(tid id.ID, dir string) {
		s.trees = append(s.trees, tid)
		tt, err := snapshot.LoadTree(ctx, tr.r, tid)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range tt.Nodes {
			p := dir + "/" + n.Name
			switch n.Type {
			case snapshot.TypeDir:
				walk(*n.Subtree, p)
			case snapshot.TypeFile:
				s.files[p] = n.Content
			}
		}
	}
	walk(sn.Tree, "")
	for rel := range tree.files {
		if _, ok := s.files[tree.snapPath(rel)]; !ok {
			t.Fatalf("snapshot %s has no %s", snapID[:8], tree.snapPath(rel))
		}
	}
	tr.snaps = append(tr.snaps, s)
}

// lost reports whether every copy of the blob is in a lost place.
func (tr *dmgTruth) lost(t pack.BlobType, b id.ID, isLost func(loc dmgLoc) bool) bool {
	locs := tr.r.Index().Lookup(t, b)
	if len(locs) == 0 {
		return true
	}
	for _, l := range locs {
		if !isLost(dmgLoc{pack: l.Pack.ID.String(), offset: int64(l.Offset), end: int64(l.Offset) + int64(l.Length)}) {
			return false
		}
	}
	return true
}

type dmgLoc struct {
	pack        string
	offset, end int64
}

// damage returns, for every snapshot, the files that cannot be restored
// and whether any of its trees is lost, given which blob locations are lost.
func (tr *dmgTruth) damage(t *testing.T, isLost func(loc dmgLoc) bool) (files map[string][]string, treeLost map[string]bool) {
	files, treeLost = map[string][]string{}, map[string]bool{}
	for _, s := range tr.snaps {
		for _, tid := range s.trees {
			if tr.lost(pack.TreeBlob, tid, isLost) {
				treeLost[s.id] = true
			}
		}
		for p, content := range s.files {
			for _, b := range content {
				if tr.lost(pack.DataBlob, b, isLost) {
					files[s.id] = append(files[s.id], p)
					break
				}
			}
		}
		sort.Strings(files[s.id])
	}
	return files, treeLost
}

// dmgPackOf returns "data/xx/<id>" for a pack ID.
func dmgPackOf(p string) string { return "data/" + p[:2] + "/" + p }

// dmgBackupRun is what one backup run added to the repository.
type dmgBackupRun struct {
	snap               string
	tree               *dmgTree
	data, index, snaps []string
}

// dmgFixture is the undamaged repository shared by the damage subtests.
type dmgFixture struct {
	e     *env
	runs  []*dmgBackupRun
	truth *dmgTruth
}

func dmgMakeFixture(t *testing.T, rnd *rand.Rand) *dmgFixture {
	t.Helper()
	e := newEnv(t)
	src := t.TempDir()
	f := &dmgFixture{e: e}
	const mib = 1 << 20
	for i, name := range []string{"alpha", "bravo", "charlie"} {
		// Distinct random content: no blob is shared between the trees.
		tree := dmgMakeTree(t, filepath.Join(src, name), rnd, map[string]int{
			"big1":             3*mib + rnd.IntN(mib),
			"sub/big2":         2*mib + rnd.IntN(mib),
			"sub/deeper/big3":  2*mib + rnd.IntN(mib),
			"small.txt":        1000 + rnd.IntN(3000),
			"sub/deeper/tiny":  1 + rnd.IntN(100),
			fmt.Sprint("n", i): 10000,
		})
		before := map[string]map[string]bool{}
		for _, k := range []string{"data", "index", "snapshots"} {
			before[k] = dmgRepoFiles(t, e.repo, k)
		}
		run := &dmgBackupRun{tree: tree, snap: dmgBackup(e, tree.dir)}
		run.data = dmgNew(dmgRepoFiles(t, e.repo, "data"), before["data"])
		run.index = dmgNew(dmgRepoFiles(t, e.repo, "index"), before["index"])
		run.snaps = dmgNew(dmgRepoFiles(t, e.repo, "snapshots"), before["snapshots"])
		if len(run.index) != 1 || len(run.snaps) != 1 || len(run.data) < 2 {
			t.Fatalf("backup %s added data %v, index %v, snapshots %v; want >= 2 packs (data and tree), 1 index, 1 snapshot",
				name, run.data, run.index, run.snaps)
		}
		if run.snaps[0] != "snapshots/"+run.snap {
			t.Fatalf("backup printed %s but wrote %s", run.snap, run.snaps[0])
		}
		t.Logf("backup %s: snapshot %s, packs %v, index %v", name, run.snap[:8], run.data, run.index)
		f.runs = append(f.runs, run)
	}
	r := dmgOpen(t, e.repo)
	t.Cleanup(func() { r.Close() })
	f.truth = &dmgTruth{r: r}
	for _, run := range f.runs {
		f.truth.add(t, run.snap, run.tree)
	}
	return f
}

// dataPacks returns the data packs of a backup run (not its tree packs).
func (f *dmgFixture) dataPacks(t *testing.T, run *dmgBackupRun) []string {
	t.Helper()
	var out []string
	for _, p := range run.data {
		pid, err := id.Parse(filepath.Base(p))
		if err != nil {
			t.Fatal(err)
		}
		ref, ok := f.truth.r.Index().Pack(pid)
		if !ok {
			t.Fatalf("%s is not indexed", p)
		}
		if ref.Kind == pack.DataBlob {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatalf("backup %s wrote no data pack", run.snap[:8])
	}
	return out
}

// blobsOf returns the index entries of a pack, by offset.
func (f *dmgFixture) blobsOf(packFile string) []pack.Entry {
	var out []pack.Entry
	name := filepath.Base(packFile)
	f.truth.r.Index().Each(func(p index.PackRef, e pack.Entry) {
		if p.ID.String() == name {
			out = append(out, e)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	return out
}

func TestE2EDamage(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the binary on tens of MiB")
	}
	start := time.Now()
	rnd := dmgNewRand(testSeed(t, uint64(time.Now().UnixNano())))
	f := dmgMakeFixture(t, rnd)
	victim := f.runs[1] // bravo; alpha and charlie must stay whole
	packs := f.dataPacks(t, victim)
	dataPack := packs[rnd.IntN(len(packs))]
	t.Logf("setup took %v", time.Since(start).Round(time.Millisecond))

	type kind struct {
		name string
		// damage changes the copy of the repository in dir and returns the
		// damaged file (as check names it), which blob locations are lost
		// for check (whole packs), which are certainly lost for restore,
		// and whether plain check must fail.
		damage func(t *testing.T, dir string) (file string, checkLost, restoreLost func(dmgLoc) bool, plainFails bool)
	}
	inPack := func(p string) func(dmgLoc) bool {
		name := filepath.Base(p)
		return func(l dmgLoc) bool { return l.pack == name }
	}
	kinds := []kind{
		{"flipped byte in data pack", func(t *testing.T, dir string) (string, func(dmgLoc) bool, func(dmgLoc) bool, bool) {
			blobs := f.blobsOf(dataPack)
			b := blobs[rnd.IntN(len(blobs))]
			off := int64(b.Offset) + rnd.Int64N(int64(b.Length))
			dmgFlipByte(t, filepath.Join(dir, dataPack), off)
			t.Logf("flipped byte %d of %s (blob %s)", off, dataPack, b.ID.Str())
			lost := func(l dmgLoc) bool { return inPack(dataPack)(l) && l.offset <= off && off < l.end }
			return dataPack, lost, lost, false
		}},
		{"truncated data pack", func(t *testing.T, dir string) (string, func(dmgLoc) bool, func(dmgLoc) bool, bool) {
			p := filepath.Join(dir, dataPack)
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			size := fi.Size() / 2
			if err := os.Truncate(p, size); err != nil {
				t.Fatal(err)
			}
			t.Logf("truncated %s from %d to %d bytes", dataPack, fi.Size(), size)
			return dataPack, inPack(dataPack), func(l dmgLoc) bool { return inPack(dataPack)(l) && l.end > size }, true
		}},
		{"deleted data pack", func(t *testing.T, dir string) (string, func(dmgLoc) bool, func(dmgLoc) bool, bool) {
			if err := os.Remove(filepath.Join(dir, dataPack)); err != nil {
				t.Fatal(err)
			}
			return dataPack, inPack(dataPack), inPack(dataPack), true
		}},
		{"damaged index file", func(t *testing.T, dir string) (string, func(dmgLoc) bool, func(dmgLoc) bool, bool) {
			file := victim.index[0]
			fi, err := os.Stat(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			dmgFlipByte(t, filepath.Join(dir, file), rnd.Int64N(fi.Size()))
			// Every pack that index names is unknown now.
			lost := func(l dmgLoc) bool {
				for _, p := range victim.data {
					if inPack(p)(l) {
						return true
					}
				}
				return false
			}
			return file, lost, lost, true
		}},
		{"damaged snapshot file", func(t *testing.T, dir string) (string, func(dmgLoc) bool, func(dmgLoc) bool, bool) {
			file := victim.snaps[0]
			fi, err := os.Stat(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			dmgFlipByte(t, filepath.Join(dir, file), rnd.Int64N(fi.Size()))
			none := func(dmgLoc) bool { return false }
			return file, none, none, true
		}},
	}
	for _, k := range kinds {
		t.Run(strings.ReplaceAll(k.name, " ", "_"), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "repo")
			dmgCopyDir(t, f.e.repo, dir)
			e := &env{t: t, repo: dir, pwFile: f.e.pwFile}
			file, checkLost, restoreLost, plainFails := k.damage(t, dir)

			checkFiles, checkTrees := f.truth.damage(t, checkLost)
			isAffected := func(s *dmgSnap) bool {
				return len(checkFiles[s.id]) > 0 || checkTrees[s.id] || (k.name == "damaged snapshot file" && s.id == victim.snap)
			}
			var affected, unaffected []*dmgSnap
			for _, s := range f.truth.snaps {
				if isAffected(s) {
					affected = append(affected, s)
				} else {
					unaffected = append(unaffected, s)
				}
			}
			if len(affected) != 1 || affected[0].id != victim.snap {
				t.Fatalf("test setup: the damage should affect exactly snapshot %s, affects %d", victim.snap[:8], len(affected))
			}

			// check --read-data names the file and the affected snapshot only.
			out, stderr, code := e.run("check", "--read-data")
			t.Logf("check --read-data: exit %d\n%s%s", code, out, stderr)
			if code != exitDamaged {
				t.Errorf("check --read-data: exit %d, want %d", code, exitDamaged)
			}
			dmgAssertCheckOutput(t, "check --read-data", out+stderr, file, affected, unaffected)

			out, stderr, code = e.run("check")
			t.Logf("check: exit %d\n%s%s", code, out, stderr)
			switch {
			case plainFails && code != exitDamaged:
				t.Errorf("check: exit %d, want %d", code, exitDamaged)
			case plainFails:
				dmgAssertCheckOutput(t, "check", out+stderr, file, affected, unaffected)
			case code != 0 && code != exitDamaged:
				t.Errorf("check: exit %d, want 0 (structure intact) or %d", code, exitDamaged)
			}

			// Restore of the affected snapshot: never a file with wrong bytes.
			restoreFiles, restoreTrees := f.truth.damage(t, restoreLost)
			certain := restoreFiles[victim.snap]
			target := filepath.Join(t.TempDir(), "strict")
			out, stderr, code = e.run("restore", victim.snap[:8], "--target", target)
			t.Logf("restore %s: exit %d\n%s%s", victim.snap[:8], code, out, stderr)
			if code != exitDamaged {
				t.Errorf("restore of the affected snapshot: exit %d, want %d", code, exitDamaged)
			}
			dmgVerifyRestore(t, target, victim.tree, func(string) bool { return true })

			// With --ignore-errors: all it can, and the rest named on stderr.
			target = filepath.Join(t.TempDir(), "ignore")
			out, stderr, code = e.run("restore", victim.snap[:8], "--target", target, "--ignore-errors")
			t.Logf("restore --ignore-errors %s: exit %d\n%s%s", victim.snap[:8], code, out, stderr)
			if code != exitDamaged {
				t.Errorf("restore --ignore-errors of the affected snapshot: exit %d, want %d", code, exitDamaged)
			}
			listed := dmgNotRestored(stderr)
			switch {
			case k.name == "damaged snapshot file":
				// Nothing can be restored; the error names the file.
				if !strings.Contains(stderr, file) {
					t.Errorf("restore --ignore-errors: stderr does not name %s", file)
				}
				if got := dmgFiles(t, target); len(got) > 0 {
					t.Errorf("restore of an unreadable snapshot wrote %v", got)
				}
			default:
				if len(listed) == 0 {
					t.Errorf("restore --ignore-errors listed no damaged file on stderr")
				}
				missing := dmgVerifyRestore(t, target, victim.tree, func(sp string) bool { return dmgCovered(listed, sp) })
				for _, sp := range certain {
					if !slices.Contains(missing, sp) {
						t.Errorf("restore --ignore-errors: %s, whose blob is damaged, was restored", sp)
					}
					if !dmgCovered(listed, sp) {
						t.Errorf("restore --ignore-errors: damaged %s is not listed on stderr", sp)
					}
				}
				possible := checkFiles[victim.snap]
				for _, sp := range missing {
					if !slices.Contains(possible, sp) && !restoreTrees[victim.snap] && !checkTrees[victim.snap] {
						t.Errorf("restore --ignore-errors: %s is intact in the repository but was not restored", sp)
					}
				}
				if len(missing) == len(victim.tree.files) && !restoreTrees[victim.snap] {
					t.Errorf("restore --ignore-errors restored no file at all")
				}
			}

			// Unaffected snapshots restore byte-identical.
			for _, s := range unaffected {
				target := filepath.Join(t.TempDir(), "ok-"+s.id[:8])
				out, stderr, code := e.run("restore", s.id[:8], "--target", target)
				if code != 0 {
					t.Errorf("restore of unaffected snapshot %s: exit %d\n%s%s", s.id[:8], code, out, stderr)
					continue
				}
				dmgVerifyRestore(t, target, s.tree, func(string) bool { return false })
			}
		})
	}
	t.Logf("TestE2EDamage took %v", time.Since(start).Round(time.Millisecond))
}

// dmgAssertCheckOutput checks that a check's output names the damaged file
// and every affected snapshot, and no unaffected one.
func dmgAssertCheckOutput(t *testing.T, what, out, file string, affected, unaffected []*dmgSnap) {
	t.Helper()
	if !strings.Contains(out, file) {
		t.Errorf("%s does not name the damaged file %s", what, file)
	}
	for _, s := range affected {
		if !strings.Contains(out, "affected snapshot "+s.id[:8]) {
			t.Errorf("%s does not name affected snapshot %s", what, s.id[:8])
		}
	}
	for _, s := range unaffected {
		if strings.Contains(out, s.id[:8]) {
			t.Errorf("%s names unaffected snapshot %s", what, s.id[:8])
		}
	}
}

// dmgFlipByte inverts the bits of the byte at off.
func dmgFlipByte(t *testing.T, p string, off int64) { xorByte(t, p, off, 0xff) }

// flipBit flips the lowest bit of the byte at off.
func flipBit(t *testing.T, p string, off int64) { xorByte(t, p, off, 1) }

// xorByte changes the byte at off of file p by xor with mask.
func xorByte(t *testing.T, p string, off int64, mask byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= mask
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// dmgKilledBackup starts `hoard backup paths...` and SIGKILLs it: with
// point set, once it says it stalled there (HOARD_TEST_STALL_AT); with
// point empty, after the given time counted from when a new file appears
// in the repository folder anchor: "locks" (it has opened the repository)
// or "data" (it has stored its first pack), so that the kill falls in the
// backup proper. It returns the backup's standard error and whether it
// exited by itself before the kill (an error with point set).
func dmgKilledBackup(e *env, point, anchor string, after time.Duration, paths ...string) (stderr string, finished bool) {
	e.t.Helper()
	cmd := e.command(append([]string{"backup"}, paths...)...)
	if point != "" {
		cmd.Env = append(cmd.Env, "HOARD_TEST_STALL_AT="+point)
	}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	count := func() int {
		if anchor == "" {
			return 0
		}
		fs := dmgFiles(e.t, filepath.Join(e.repo, anchor))
		return len(slices.DeleteFunc(fs, func(f string) bool { return strings.Contains(f, ".tmp-") }))
	}
	countBefore := count()
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	lines := make(chan string, 100)
	readDone := make(chan string)
	go func() {
		var all strings.Builder
		s := bufio.NewScanner(pipe)
		for s.Scan() {
			all.WriteString(s.Text() + "\n")
			select {
			case lines <- s.Text():
			default:
			}
		}
		close(lines)
		readDone <- all.String()
	}()
	stall := "hoard-test: stalled at " + point
	deadline := time.After(90 * time.Second)
	var kill <-chan time.Time // set once the repository is open (point == "")
	poll := time.NewTicker(2 * time.Millisecond)
	defer poll.Stop()
	exited := false
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				exited = true // stderr closed: the process ended by itself
				break wait
			}
			if point != "" && l == stall {
				break wait
			}
		case <-poll.C:
			if point == "" && kill == nil && count() > countBefore {
				kill = time.After(after)
			}
		case <-kill:
			break wait
		case <-deadline:
			_ = cmd.Process.Kill()
			e.t.Fatalf("backup did not stall at %q within 90s", point)
		}
	}
	_ = cmd.Process.Kill()
	stderr = <-readDone
	err = cmd.Wait()
	if exited && point != "" {
		e.t.Fatalf("backup exited before stalling at %s (%v):\n%s", point, err, stderr)
	}
	// Killed: the wait status says so; exited by itself: it does not.
	finished = cmd.ProcessState.Exited()
	return stderr, finished
}

// dmgRestoreSame restores snapshot ref and checks it byte-identical to trees.
func dmgRestoreSame(e *env, ref string, trees ...*dmgTree) {
	e.t.Helper()
	target := filepath.Join(e.t.TempDir(), "restore")
	out, stderr, code := e.run("restore", ref, "--target", target)
	if code != 0 {
		e.t.Fatalf("restore %s: exit %d\n%s%s", ref, code, out, stderr)
	}
	for _, tr := range trees {
		dmgVerifyRestore(e.t, target, tr, func(string) bool { return false })
	}
	// No file besides those of trees.
	n := 0
	for _, tr := range trees {
		n += len(tr.files) + len(tr.links)
	}
	var got int
	_ = filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			got++
		}
		return nil
	})
	if got != n {
		e.t.Errorf("restore %s: %d files and symlinks, want %d", ref, got, n)
	}
}

// dmgCheckOK runs check and fails unless it exits 0; it returns the output.
func dmgCheckOK(e *env, args ...string) string {
	e.t.Helper()
	out, stderr, code := e.run(append([]string{"check"}, args...)...)
	if code != 0 {
		e.t.Errorf("check %v after a crash: exit %d, want 0\n%s%s", args, code, out, stderr)
	}
	return out + stderr
}

func TestE2ECrash(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the binary on tens of MiB")
	}
	start := time.Now()
	rnd := dmgNewRand(testSeed(t, uint64(time.Now().UnixNano())))
	src := t.TempDir()
	const mib = 1 << 20
	small := dmgMakeTree(t, filepath.Join(src, "small"), rnd, map[string]int{"a": 200000, "b/c": 300000})
	// 40 MiB in files of 6 to 10 MiB: several 16 MiB packs.
	bigSizes := map[string]int{}
	for i, total := 0, 0; total < 40*mib; i++ {
		n := 6*mib + rnd.IntN(4*mib)
		bigSizes[fmt.Sprintf("d%d/f%d", i%2, i)] = n
		total += n
	}
	big := dmgMakeTree(t, filepath.Join(src, "big"), rnd, bigSizes)
	t.Logf("source trees made in %v", time.Since(start).Round(time.Millisecond))

	for _, point := range []string{"data", "index", "snapshot"} {
		t.Run(point, func(t *testing.T) {
			e := newEnv(t)
			first := dmgBackup(e, small.dir)
			packsBefore := len(dmgRepoFiles(t, e.repo, "data"))
			indexBefore := len(dmgRepoFiles(t, e.repo, "index"))
			stderr, _ := dmgKilledBackup(e, point, "", 0, big.dir)
			newPacks := len(dmgRepoFiles(t, e.repo, "data")) - packsBefore
			newIndex := len(dmgRepoFiles(t, e.repo, "index")) - indexBefore
			t.Logf("killed at %s after writing %d packs and %d index files; stderr:\n%s", point, newPacks, newIndex, stderr)

			if ids := e.snapshotIDs(); len(ids) != 1 || ids[0] != first {
				t.Errorf("after a crash at %s the snapshots are %v, want only %s", point, ids, first[:8])
			}
			if n := len(dmgRepoFiles(t, e.repo, "snapshots")); n != 1 {
				t.Errorf("after a crash at %s there are %d snapshot files, want 1", point, n)
			}
			out := dmgCheckOK(e)
			// Before the index every new pack is unindexed (and with 40 MiB
			// and 16 MiB packs at least one full pack was stored); after it,
			// none is.
			wantUnindexed := newPacks
			switch point {
			case "index":
				if newPacks == 0 || newIndex != 0 {
					t.Errorf("stalled before the index with %d new packs and %d new index files; want > 0 and 0", newPacks, newIndex)
				}
			case "snapshot":
				if newPacks == 0 || newIndex == 0 {
					t.Errorf("stalled before the snapshot with %d new packs and %d new index files; want > 0 and > 0", newPacks, newIndex)
				}
				wantUnindexed = 0
			}
			msg := fmt.Sprintf("%d packs are not in any index", wantUnindexed)
			if gotMsg := strings.Contains(out, "packs are not in any index"); gotMsg != (wantUnindexed > 0) ||
				(wantUnindexed > 0 && !strings.Contains(out, msg)) {
				t.Errorf("check after a crash at %s: want %q (or nothing for 0):\n%s", point, msg, out)
			}
			dmgCheckOK(e, "--read-data")
			dmgRestoreSame(e, first[:8], small)

			// The next backup succeeds and restores.
			next := dmgBackup(e, big.dir)
			dmgRestoreSame(e, next[:8], big)
			dmgCheckOK(e)
			if ids := e.snapshotIDs(); len(ids) != 2 {
				t.Errorf("snapshots after the next backup: %v, want 2", ids)
			}
		})
	}

	t.Run("random", func(t *testing.T) {
		// One path: backups of several paths have a bug of their own
		// (archiver.BackupPaths sorts the root's children by names that
		// are not set yet), which this test is not about.
		e := newEnv(t)
		largeSizes := map[string]int{}
		for i, total := 0, 0; total < 96*mib; i++ {
			n := 4*mib + rnd.IntN(8*mib)
			largeSizes[fmt.Sprintf("d%d/f%d", i%3, i)] = n
			total += n
		}
		large := dmgMakeTree(t, filepath.Join(src, "large"), rnd, largeSizes)
		first := dmgBackup(e, small.dir)
		snaps := []string{first}
		for i := range 4 {
			after := time.Duration(50+rnd.IntN(451)) * time.Millisecond
			anchor := []string{"locks", "data"}[i%2]
			stderr, finished := dmgKilledBackup(e, "", anchor, after, large.dir)
			all := dmgFiles(t, filepath.Join(e.repo, "data"))
			tmp := slices.DeleteFunc(slices.Clone(all), func(f string) bool { return !strings.Contains(f, ".tmp-") })
			t.Logf("kill %d %v after a new file in %s/ (finished by itself: %v): %d files in data/ (%d temporary); stderr:\n%s",
				i, after, anchor, finished, len(all), len(tmp), stderr)
			ids := e.snapshotIDs()
			switch {
			case slices.Equal(ids, snaps):
				if finished {
					t.Errorf("the backup exited by itself but made no snapshot:\n%s", stderr)
				}
			case len(ids) == len(snaps)+1 && slices.Equal(ids[:len(snaps)], snaps):
				// It finished, or was killed after writing its snapshot:
				// the snapshot is whole.
				t.Logf("the backup saved snapshot %s", ids[len(ids)-1][:8])
				dmgRestoreSame(e, ids[len(ids)-1][:8], large)
				snaps = ids
			default:
				t.Fatalf("snapshots after kill %d: %v, want %v (or one more)", i, ids, snaps)
			}
			dmgCheckOK(e)
		}
		dmgCheckOK(e, "--read-data")
		dmgRestoreSame(e, first[:8], small)
		next := dmgBackup(e, large.dir)
		dmgRestoreSame(e, next[:8], large)
		dmgCheckOK(e)
	})
	t.Logf("TestE2ECrash took %v", time.Since(start).Round(time.Millisecond))
}
