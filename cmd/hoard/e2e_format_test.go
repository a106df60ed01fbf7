package main

// The format frozen by a test: repo/testdata/v1 holds a small repository
// written by hoard when the repository format was version 1 (its making is
// TestE2EFormatV1Make, run once), with its passphrase and a GPG test key.
// TestE2EFormatV1 reads every snapshot of it byte for byte against content
// generated again here, and runs check --read-data: a change that breaks
// reading old repositories fails it. It compares what it reads, never what
// today's hoard would write, so a later format version may add to the
// format freely as long as it still reads version 1.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

var makeFrozenV1 = flag.String("make-frozen-v1", "", "TestE2EFormatV1Make: write a new repo.tar.gz and snapshots.txt for repo/testdata/v1 into this folder")

// frozenV1 returns the folder of the frozen version-1 repository.
func frozenV1() string { return filepath.Join(pkgDir, "..", "..", "repo", "testdata", "v1") }

// Secrets of the frozen repository. They protect nothing: test data only.
const (
	frozenPassphrase    = "frozen v1 repository passphrase (test only)"
	frozenGPGPassphrase = "frozen-v1 gpg test passphrase"
)

// frozenMtime is the modification time of every file backed up.
var frozenMtime = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// frozenEntry is one file, folder or symlink of a frozen snapshot.
type frozenEntry struct {
	mode fs.FileMode // type and permission bits
	data []byte      // a file's content
	link string      // a symlink's target
}

// frozenSnapshot is what one snapshot of the frozen repository holds:
// restored into a folder, entries (by slash path) are what it contains.
type frozenSnapshot struct {
	tag     string
	stdin   string // for a snapshot of standard input: its file name
	entries map[string]frozenEntry
}

// frozenText returns n bytes of text-like data (words and line breaks, so
// that it compresses as dumps do) from seed.
func frozenText(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x686f617264))
	words := []string{"INSERT", "INTO", "media", "VALUES", "(", ")", "'upload'", "NULL", "2026-12-01", ";", "user", "id", "hoard", "backup"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(12) == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
		if rng.IntN(40) == 0 {
			fmt.Fprintf(&b, "%d", rng.Uint64())
		}
	}
	return b.Bytes()[:n]
}

// frozenRandom returns n incompressible bytes from seed.
func frozenRandom(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x72616e64))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// frozenV1Snapshots returns the content of the frozen repository's
// snapshots, in the order they were made: a tree, the tree changed (a
// file edited in the middle, one added, one removed), and a stream.
func frozenV1Snapshots() []frozenSnapshot {
	dir := func() frozenEntry { return frozenEntry{mode: fs.ModeDir | 0o755} }
	file := func(perm fs.FileMode, data []byte) frozenEntry { return frozenEntry{mode: perm, data: data} }
	big := frozenText(1, 320<<10) // several chunks of the dump profile (about 128 KiB)
	tree1 := map[string]frozenEntry{
		"src":                 dir(),
		"src/README.txt":      file(0o644, []byte("hoard frozen repository, format version 1\n")),
		"src/empty":           file(0o644, nil),
		"src/data":            dir(),
		"src/data/dump.sql":   file(0o640, big),
		"src/data/upload.bin": file(0o600, frozenRandom(2, 24<<10)),
		"src/data/run.sh":     file(0o755, []byte("#!/bin/sh\necho restored\n")),
		"src/deep":            dir(),
		"src/deep/er":         dir(),
		"src/deep/er/name with spaces and ü.txt": file(0o644, frozenText(3, 3000)),
		"src/link": {mode: fs.ModeSymlink | 0o777, link: "README.txt"},
	}
	tree2 := map[string]frozenEntry{}
	for k, v := range tree1 {
		tree2[k] = v
	}
	edited := slices.Clone(big)
	copy(edited[200<<10:], "EDITED IN THE SECOND SNAPSHOT")
	tree2["src/data/dump.sql"] = file(0o640, edited)
	tree2["src/data/new.txt"] = file(0o644, frozenText(4, 10<<10))
	delete(tree2, "src/data/upload.bin")
	stream := map[string]frozenEntry{"db.sql": file(0o600, frozenText(5, 100<<10))}
	return []frozenSnapshot{{tag: "tree1", entries: tree1}, {tag: "tree2", entries: tree2}, {tag: "stdin", stdin: "db.sql", entries: stream}}
}

// writeFrozenTree writes the entries of s below dir.
func writeFrozenTree(t *testing.T, dir string, s frozenSnapshot) {
	t.Helper()
	paths := make([]string, 0, len(s.entries))
	for p := range s.entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		e, full := s.entries[p], filepath.Join(dir, filepath.FromSlash(p))
		var err error
		switch {
		case e.mode.IsDir():
			err = os.MkdirAll(full, e.mode.Perm())
		case e.mode&fs.ModeSymlink != 0:
			err = os.Symlink(e.link, full)
		default:
			if err = os.WriteFile(full, e.data, e.mode.Perm()); err == nil {
				err = os.Chmod(full, e.mode.Perm())
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Times last, parents after children.
	for i := len(paths) - 1; i >= 0; i-- {
		full := filepath.Join(dir, filepath.FromSlash(paths[i]))
		if s.entries[paths[i]].mode&fs.ModeSymlink == 0 {
			if err := os.Chtimes(full, frozenMtime, frozenMtime); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestE2EFormatV1Make makes the frozen repository: run once per format
// version, by hand, with the GPG test key of repo/testdata/v1:
//
//	go test ./cmd/hoard -run TestE2EFormatV1Make -make-frozen-v1 /tmp/v1
//
// and copy /tmp/v1/repo.tar.gz and snapshots.txt into repo/testdata/v1. Never
// remake version 1's: the point of it is that it was written by the hoard
// of format version 1.
func TestE2EFormatV1Make(t *testing.T) {
	if *makeFrozenV1 == "" {
		t.Skip("-make-frozen-v1 not given")
	}
	out := *makeFrozenV1
	work := t.TempDir()
	e := &env{t: t, repo: filepath.Join(work, "repo"), pwFile: filepath.Join(work, "passphrase")}
	if err := os.WriteFile(e.pwFile, []byte(frozenPassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.mustRun("init", "--s2k", "iterated")
	e.mustRun("key", "add", "--gpg-recipient", filepath.Join(frozenV1(), "gpg-public.asc"))
	var ids []string
	for i, s := range frozenV1Snapshots() {
		var res backupResult
		if s.stdin != "" {
			res = e.mustBackup(bytes.NewReader(s.entries[s.stdin].data), "--host", "frozen", "--tag", s.tag, "--stdin", "--stdin-filename", s.stdin)
		} else {
			src := filepath.Join(work, fmt.Sprint("src", i))
			writeFrozenTree(t, src, s)
			cmd := e.command("--json", "backup", "--host", "frozen", "--tag", s.tag, "src")
			cmd.Dir = src
			if b, err := cmd.Output(); err != nil {
				t.Fatalf("backup %s: %v", s.tag, err)
			} else if err := json.Unmarshal(b, &res); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, res.ID+" "+s.tag)
	}
	e.mustRun("check", "--read-data")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "snapshots.txt"), []byte(strings.Join(ids, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=2026-12-01 12:00Z",
		"-czf", filepath.Join(out, "repo.tar.gz"), "-C", work, "repo")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, b)
	}
}

// untarFrozen unpacks repo.tar.gz of dir into a new folder and returns the
// repository's path.
func untarFrozen(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "repo.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dest, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(name, dest+string(filepath.Separator)) {
			t.Fatalf("tar entry %q leaves the folder", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(name, 0o755)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(name, b, 0o644)
			}
		default:
			t.Fatalf("tar entry %q of type %c", h.Name, h.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dest, "repo")
}

// readRestored returns what lies below dir, by slash path relative to it;
// with times, it checks that files have frozenMtime.
func readRestored(t *testing.T, dir string, times bool) map[string]frozenEntry {
	t.Helper()
	got := map[string]frozenEntry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := frozenEntry{mode: fi.Mode()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.link, err = os.Readlink(p)
		case fi.Mode().IsRegular():
			e.data, err = os.ReadFile(p)
			if err == nil && times && !fi.ModTime().Equal(frozenMtime) {
				t.Errorf("%s: restored mtime %v, want %v", rel, fi.ModTime(), frozenMtime)
			}
		}
		got[filepath.ToSlash(rel)] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// compareFrozen fails t where got differs from want.
func compareFrozen(t *testing.T, want, got map[string]frozenEntry) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: not restored", p)
		case g.mode.Type() != w.mode.Type() || (w.mode.Type() != fs.ModeSymlink && g.mode.Perm() != w.mode.Perm()):
			t.Errorf("%s: mode %v, want %v", p, g.mode, w.mode)
		case !bytes.Equal(g.data, w.data):
			t.Errorf("%s: %d bytes restored differ from the %d backed up", p, len(g.data), len(w.data))
		case g.link != w.link:
			t.Errorf("%s: link to %q, want %q", p, g.link, w.link)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: restored but never backed up", p)
		}
	}
}

func TestE2EFormatV1(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(frozenV1(), "snapshots.txt"))
	if err != nil {
		t.Fatal(err)
	}
	wantIDs := map[string]string{} // tag -> snapshot ID
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		id, tag, _ := strings.Cut(line, " ")
		wantIDs[tag] = id
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "passphrase")
	gpgPw := filepath.Join(dir, "gpg-passphrase")
	for name, s := range map[string]string{pw: frozenPassphrase, gpgPw: frozenGPGPassphrase} {
		if err := os.WriteFile(name, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	gpgKey := filepath.Join(frozenV1(), "gpg-secret.asc")
	base := &env{t: t, repo: untarFrozen(t, frozenV1()), pwFile: pw}
	opens := map[string]*env{
		"Passphrase": base,
		"GPGKey": {t: t, repo: base.repo, pwFile: filepath.Join(dir, "none"),
			extraEnv: []string{"HOARD_GPG_SECRET_KEY=" + gpgKey, "HOARD_GPG_PASSPHRASE_FILE=" + gpgPw}},
	}
	for name, e := range opens {
		t.Run(name, func(t *testing.T) {
			e := e.on(t)
			var sns []struct {
				ID   string   `json:"id"`
				Tags []string `json:"tags"`
				Host string   `json:"host"`
			}
			e.mustRunJSON(&sns, "snapshots")
			if len(sns) != len(wantIDs) {
				t.Fatalf("%d snapshots listed, want %d", len(sns), len(wantIDs))
			}
			byTag := map[string]string{}
			for _, s := range sns {
				if len(s.Tags) == 1 {
					byTag[s.Tags[0]] = s.ID
				}
			}
			for _, s := range frozenV1Snapshots() {
				id := byTag[s.tag]
				if id != wantIDs[s.tag] {
					t.Errorf("snapshot %s: ID %q, want %q", s.tag, id, wantIDs[s.tag])
					continue
				}
				target := filepath.Join(t.TempDir(), "restore")
				e.mustRun("restore", id, "--target", target)
				compareFrozen(t, s.entries, readRestored(t, target, s.stdin == ""))
			}
		})
	}
	base.mustRun("check", "--read-data")
}
