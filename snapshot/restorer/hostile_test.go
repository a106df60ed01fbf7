package restorer_test

// Hostile repositories: tree blobs written directly with SaveBlob, so that
// they break the rules of FORMAT.md section 8 (names "..", "a/b", "",
// duplicates, ...) that Tree.Encode would refuse. A restore of such a
// snapshot must report an error and must never create anything outside its
// target, even where a symlink to an outside directory comes first.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends/local"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

// hostileEnv is one repository in base/repo, an outside directory
// base/outside that symlinks in the hostile trees point to, and targets
// under base/work.
type hostileEnv struct {
	t       *testing.T
	ctx     context.Context
	base    string
	outside string
	r       *repo.Repository
	rnd     *rand.Rand
	mtime   time.Time
	large   []byte
}

func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	ctx := context.Background()
	base := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	e := &hostileEnv{t: t, ctx: ctx, base: base, outside: filepath.Join(base, "outside"),
		rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), mtime: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}
	for _, d := range []string{e.outside, filepath.Join(base, "work")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	be, err := local.Open(ctx, local.Config{Path: filepath.Join(base, "repo")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, be, repo.InitOptions{Options: repo.Options{Passphrase: []byte("hostile test")}, S2K: crypto.S2KIterated})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	e.r = r
	return e
}

// rawNode is a tree node as JSON, built by hand so that nothing validates it.
type rawNode map[string]any

// fileNode stores content in data blobs of at most blobSize bytes.
func (e *hostileEnv) fileNode(name string, content []byte, blobSize int) rawNode {
	e.t.Helper()
	ids := []string{}
	for rest := content; len(rest) > 0; {
		n := min(len(rest), blobSize)
		res, err := e.r.SaveBlob(e.ctx, repo.DataBlob, rest[:n])
		if err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, res.ID.String())
		rest = rest[n:]
	}
	return rawNode{"name": name, "type": "file", "mode": 0o600, "uid": 0, "gid": 0,
		"mtime": e.mtime, "ctime": e.mtime, "size": len(content), "content": ids}
}

func (e *hostileEnv) randomBytes(n int) []byte {
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(e.rnd.Uint32())
	}
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

func (e *hostileEnv) randomFile(name string) (rawNode, []byte) {
	content := e.randomBytes(1000 + e.rnd.IntN(5000))
	return e.fileNode(name, content, len(content)), content
}

// largeFile is a file of 8 blobs of 512 KiB, so that its restore is still
// running when the restore meets a hostile tree that comes after it. Its
// content is the same on every call (the blobs are stored once).
func (e *hostileEnv) largeFile(name string) (rawNode, []byte) {
	if e.large == nil {
		e.large = e.randomBytes(4 << 20)
	}
	return e.fileNode(name, e.large, 512<<10), e.large
}

func dirNode(name string, subtree id.ID) rawNode {
	return rawNode{"name": name, "type": "dir", "mode": uint32(fs.ModeDir | 0o700), "uid": 0, "gid": 0,
		"mtime": time.Unix(0, 0).UTC(), "ctime": time.Unix(0, 0).UTC(), "subtree": subtree.String()}
}

func symlinkNode(name, target string) rawNode {
	return rawNode{"name": name, "type": "symlink", "mode": uint32(fs.ModeSymlink | 0o777), "uid": 0, "gid": 0,
		"mtime": time.Unix(0, 0).UTC(), "ctime": time.Unix(0, 0).UTC(), "linktarget": target}
}

// rawName replaces a node's name with name_raw (base64 of the bytes).
func rawName(n rawNode, name string) rawNode {
	delete(n, "name")
	n["name_raw"] = base64.StdEncoding.EncodeToString([]byte(name))
	return n
}

// tree stores the nodes, in the order given, as a tree blob, bypassing
// Tree.Encode and its validation.
func (e *hostileEnv) tree(nodes ...rawNode) id.ID {
	e.t.Helper()
	if nodes == nil {
		nodes = []rawNode{}
	}
	raw, err := json.Marshal(map[string]any{"nodes": nodes})
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.r.SaveBlob(e.ctx, repo.TreeBlob, raw)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.ID
}

// snapshot flushes the repository and saves a snapshot of root.
func (e *hostileEnv) snapshot(root id.ID) *snapshot.Snapshot {
	e.t.Helper()
	if err := e.r.Flush(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	sn := &snapshot.Snapshot{Time: time.Now(), Host: "hostile", Paths: []string{"/hostile"},
		Source: snapshot.Source{Kind: snapshot.KindFiles}, Tree: root, Program: "hostile_test"}
	if err := snapshot.Save(e.ctx, e.r, sn); err != nil {
		e.t.Fatal(err)
	}
	return sn
}

// listing describes everything under dir except the subtree skip: path,
// mode, and for all but directories size, modification time and link
// target.
func listing(t *testing.T, dir, skip string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", p, fi.Mode())
		if !fi.IsDir() {
			// A directory's size and time change when a target is made
			// in it; a file's change when anything writes to it.
			line += fmt.Sprintf(" %d %d", fi.Size(), fi.ModTime().UnixNano())
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			line += " -> " + l
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// restore restores sn into a fresh target under base/work and checks that
// nothing outside the target changed: not the rest of base (which holds
// the repository, the outside directory and the parent of every "../"
// escape up to two levels), and not the directory above base.
func (e *hostileEnv) restore(sn *snapshot.Snapshot, target string, ignoreErrors bool) error {
	e.t.Helper()
	above := filepath.Dir(e.base)
	beforeBase := listing(e.t, e.base, target)
	beforeAbove := topLevel(e.t, above)
	_, err := restorer.Restore(e.ctx, e.r, sn, target, restorer.Options{IgnoreErrors: ignoreErrors})
	afterBase := listing(e.t, e.base, target)
	if d := diff(beforeBase, afterBase); d != "" {
		e.t.Errorf("restore changed files outside its target:\n%s", d)
	}
	if d := diff(beforeAbove, topLevel(e.t, above)); d != "" {
		e.t.Errorf("restore changed %s:\n%s", above, d)
	}
	e.outsideEmpty()
	return err
}

func (e *hostileEnv) outsideEmpty() {
	e.t.Helper()
	ents, err := os.ReadDir(e.outside)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(ents) != 0 {
		var names []string
		for _, d := range ents {
			names = append(names, d.Name())
		}
		e.t.Errorf("the outside directory %s is not empty: %v", e.outside, names)
	}
}

func topLevel(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ents {
		out = append(out, d.Name())
	}
	return out
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func diff(a, b []string) string {
	in := func(s []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range s {
			m[x] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, x := range a {
		if !mb[x] {
			out = append(out, "- "+x)
		}
	}
	for _, x := range b {
		if !ma[x] {
			out = append(out, "+ "+x)
		}
	}
	return strings.Join(out, "\n")
}

// insideTarget walks the target and fails if any path resolves outside it,
// returning what is there.
func insideTarget(t *testing.T, target string) []string {
	t.Helper()
	if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var out []string
	err := filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(target, p)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("%s is outside %s", p, target)
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHostileInvalidTrees(t *testing.T) {
	e := newHostileEnv(t)
	abs := filepath.Join(e.base, "abs-escape")
	cases := []struct {
		name  string
		nodes func() []rawNode
	}{
		{"dotdot dir", func() []rawNode {
			f, _ := e.randomFile("escaped-by-dotdot")
			return []rawNode{dirNode("..", e.tree(f))}
		}},
		{"dotdot file", func() []rawNode {
			f, _ := e.randomFile("..")
			return []rawNode{f}
		}},
		{"dotdot path", func() []rawNode {
			f, _ := e.randomFile("../../escape")
			return []rawNode{f}
		}},
		{"dotdot path dir", func() []rawNode {
			f, _ := e.randomFile("escaped-by-dir")
			return []rawNode{dirNode("../../escape-dir", e.tree(f))}
		}},
		{"absolute", func() []rawNode {
			f, _ := e.randomFile(abs)
			return []rawNode{f}
		}},
		{"absolute root", func() []rawNode {
			f, _ := e.randomFile("/abs")
			return []rawNode{f}
		}},
		{"slash", func() []rawNode {
			f, _ := e.randomFile("a/b")
			return []rawNode{f}
		}},
		{"empty", func() []rawNode {
			f, _ := e.randomFile("")
			return []rawNode{f}
		}},
		{"empty dir", func() []rawNode {
			f, _ := e.randomFile("in-empty")
			return []rawNode{dirNode("", e.tree(f))}
		}},
		{"dot", func() []rawNode {
			f, _ := e.randomFile(".")
			return []rawNode{f}
		}},
		{"dot dir", func() []rawNode {
			f, _ := e.randomFile("in-dot")
			return []rawNode{dirNode(".", e.tree(f))}
		}},
		{"nul", func() []rawNode {
			f, _ := e.randomFile("a\x00b")
			return []rawNode{f}
		}},
		{"name_raw dotdot", func() []rawNode {
			f, _ := e.randomFile("escaped-by-raw")
			return []rawNode{rawName(dirNode("x", e.tree(f)), "..")}
		}},
		{"name_raw slash", func() []rawNode {
			f, _ := e.randomFile("x")
			return []rawNode{rawName(f, "../../raw-escape\xff")}
		}},
		{"duplicate symlink then dir", func() []rawNode {
			f, _ := e.randomFile("pwned")
			return []rawNode{symlinkNode("x", e.outside), dirNode("x", e.tree(f))}
		}},
		{"duplicate symlink then file", func() []rawNode {
			f, _ := e.randomFile("x")
			return []rawNode{symlinkNode("x", filepath.Join(e.outside, "pwned")), f}
		}},
		{"duplicate relative symlink then dir", func() []rawNode {
			f, _ := e.randomFile("pwned")
			return []rawNode{symlinkNode("x", "../../outside"), dirNode("x", e.tree(f))}
		}},
		{"symlink then path through it", func() []rawNode {
			f, _ := e.randomFile("link/pwned")
			return []rawNode{symlinkNode("link", e.outside), f}
		}},
		{"symlink then dir path through it", func() []rawNode {
			f, _ := e.randomFile("pwned")
			return []rawNode{symlinkNode("link", e.outside), dirNode("link/sub", e.tree(f))}
		}},
		{"unsorted", func() []rawNode {
			f, _ := e.randomFile("a")
			return []rawNode{symlinkNode("b", e.outside), f}
		}},
		{"dir without subtree", func() []rawNode {
			n := dirNode("d", e.tree())
			delete(n, "subtree")
			return []rawNode{n}
		}},
		{"unknown type", func() []rawNode {
			f, _ := e.randomFile("weird")
			f["type"] = "hardlink"
			f["linktarget"] = filepath.Join(e.outside, "x")
			return []rawNode{f}
		}},
		{"trailing data", nil},
	}
	for i, c := range cases {
		for _, where := range []string{"root", "nested"} {
			t.Run(c.name+"/"+where, func(t *testing.T) {
				e.t = t
				defer func() { e.t = nil }()
				var bad id.ID
				if c.nodes == nil {
					raw := []byte(`{"nodes":[]} {"nodes":[]}`)
					res, err := e.r.SaveBlob(e.ctx, repo.TreeBlob, raw)
					if err != nil {
						t.Fatal(err)
					}
					bad = res.ID
				} else {
					bad = e.tree(c.nodes()...)
				}
				root := bad
				good := map[string][]byte{}
				if where == "nested" {
					// A valid file before and after the hostile directory.
					f1, c1 := e.largeFile("a-good")
					f2, c2 := e.randomFile("z-good")
					root = e.tree(f1, dirNode("m-evil", bad), f2)
					good["a-good"], good["z-good"] = c1, c2
				}
				sn := e.snapshot(root)
				for _, ignore := range []bool{false, true} {
					target := filepath.Join(e.base, "work", fmt.Sprintf("t%d-%s-%v", i, where, ignore))
					restoreErr := e.restore(sn, target, ignore)
					err := restoreErr
					if err == nil {
						t.Fatalf("restore (ignore errors %v) of a hostile tree succeeded; target holds %v", ignore, insideTarget(t, target))
					}
					if !errors.Is(err, snapshot.ErrInvalidTree) {
						t.Errorf("restore (ignore errors %v): error %v is not ErrInvalidTree", ignore, err)
					}
					var rerr *restorer.Errors
					if ignore && !errors.As(err, &rerr) {
						t.Errorf("restore with IgnoreErrors: error %T %v is not *restorer.Errors", err, err)
					}
					for _, p := range insideTarget(t, target) {
						switch p {
						case ".", "m-evil":
						case "a-good", "z-good":
							// Whatever is restored must be right.
							if b, err := os.ReadFile(filepath.Join(target, p)); err != nil || string(b) != string(good[p]) {
								t.Errorf("restore (ignore errors %v) returned %q and left %s with wrong content (%d bytes, want %d, all zero: %v; %v)",
									ignore, restoreErr, p, len(b), len(good[p]), allZero(b), err)
							}
						default:
							t.Errorf("restore created %q in the target", p)
						}
					}
					if ignore {
						for p, want := range good {
							b, err := os.ReadFile(filepath.Join(target, p))
							if err != nil || string(b) != string(want) {
								t.Errorf("valid sibling %s not restored byte-identical (err %v)", p, err)
							}
						}
					}
					if !t.Failed() {
						os.RemoveAll(target)
					}
				}
			})
		}
	}
	e.t = t
	if _, err := os.Lstat(abs); err == nil {
		t.Errorf("%s was created", abs)
	}
}

// A valid tree where a symlink to an outside directory is followed by a
// file and by a directory: both are written inside the target.
func TestHostileSymlinkThenFile(t *testing.T) {
	e := newHostileEnv(t)
	for _, linkTarget := range []string{e.outside, "../../outside", "/"} {
		t.Run(strings.ReplaceAll(linkTarget, "/", "_"), func(t *testing.T) {
			e.t = t
			f, content := e.randomFile("link2")
			g, gcontent := e.randomFile("pwned")
			sub := e.tree(g)
			root := e.tree(dirNode("d", e.tree(symlinkNode("link", linkTarget), f, dirNode("link3", sub))))
			sn := e.snapshot(root)
			target := filepath.Join(e.base, "work", "valid-"+fmt.Sprint(e.rnd.Uint64()))
			if err := e.restore(sn, target, false); err != nil {
				t.Fatalf("restore: %v", err)
			}
			if l, err := os.Readlink(filepath.Join(target, "d", "link")); err != nil || l != linkTarget {
				t.Errorf("symlink d/link = %q, %v; want %q", l, err, linkTarget)
			}
			for p, want := range map[string][]byte{"d/link2": content, "d/link3/pwned": gcontent} {
				fi, err := os.Lstat(filepath.Join(target, p))
				if err != nil || !fi.Mode().IsRegular() {
					t.Errorf("%s: not a regular file in the target (%v, %v)", p, fi, err)
					continue
				}
				if b, _ := os.ReadFile(filepath.Join(target, p)); string(b) != string(want) {
					t.Errorf("%s: wrong content", p)
				}
			}
		})
	}
}

// Restoring into a target that already holds symlinks to the outside (left
// by an earlier restore, or planted) never writes through them.
func TestHostilePreexistingSymlinks(t *testing.T) {
	e := newHostileEnv(t)
	victim := filepath.Join(e.base, "victim")
	if err := os.WriteFile(victim, []byte("do not touch"), 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(e.base, "work", "pre")
	if err := os.MkdirAll(target, 0o700); err != nil {
		t.Fatal(err)
	}
	// file -> victim, dir -> outside directory.
	if err := os.Symlink(victim, filepath.Join(target, "file")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(e.outside, filepath.Join(target, "dir")); err != nil {
		t.Fatal(err)
	}
	f, content := e.randomFile("file")
	g, _ := e.randomFile("pwned")
	h, hcontent := e.randomFile("zz")
	sn := e.snapshot(e.tree(dirNode("dir", e.tree(g)), f, h))

	err := e.restore(sn, target, true)
	if err == nil {
		t.Errorf("restore through an existing symlink to a directory succeeded")
	}
	if b, _ := os.ReadFile(victim); string(b) != "do not touch" {
		t.Errorf("victim outside the target was changed: %q", b)
	}
	fi, err := os.Lstat(filepath.Join(target, "file"))
	if err != nil || !fi.Mode().IsRegular() {
		t.Errorf("target/file is not a regular file after restore: %v %v", fi, err)
	} else if b, _ := os.ReadFile(filepath.Join(target, "file")); string(b) != string(content) {
		t.Errorf("target/file has wrong content")
	}
	if b, err := os.ReadFile(filepath.Join(target, "zz")); err != nil || string(b) != string(hcontent) {
		t.Errorf("target/zz not restored (%v)", err)
	}

	// A second snapshot whose symlink points outside, restored over the
	// first, then the first again into the same target.
	sn2 := e.snapshot(e.tree(symlinkNode("dir", e.outside), symlinkNode("file", victim)))
	if err := e.restore(sn2, target, false); err != nil {
		t.Fatalf("restore of symlinks: %v", err)
	}
	if err := e.restore(sn, target, true); err == nil {
		t.Errorf("restore of a directory over a symlink to outside succeeded")
	}
	if b, _ := os.ReadFile(victim); string(b) != "do not touch" {
		t.Errorf("victim outside the target was changed: %q", b)
	}
}
