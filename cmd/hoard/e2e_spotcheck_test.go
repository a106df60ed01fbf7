//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// spotJSONOut is the part of `hoard --json media verify` the tests read.
type spotJSONOut struct {
	Snapshot string `json:"snapshot"`
	Seed     uint64 `json:"seed"`
	Files    int    `json:"files"`
	Checked  int    `json:"checked"`
	Failed   int    `json:"failed"`
	Corrupt  int    `json:"corrupt"`
	Passed   bool   `json:"passed"`
	Results  []struct {
		Path        string   `json:"path"`
		PathRaw     []byte   `json:"path_raw"`
		Live        string   `json:"live"`
		LiveRaw     []byte   `json:"live_raw"`
		Status      string   `json:"status"`
		Failed      bool     `json:"failed"`
		Differs     []string `json:"differs"`
		Corrupt     bool     `json:"corrupt"`
		AfterBackup bool     `json:"after_backup"`
	} `json:"results"`
}

// spotVerify runs `hoard --json media verify args...`, wants exit code
// want, and returns the decoded answer and the results by live path
// (its raw bytes when it is not UTF-8).
func (e *env) spotVerify(want int, args ...string) (spotJSONOut, map[string]int) {
	e.t.Helper()
	full := append([]string{"--json", "media", "verify"}, args...)
	out, stderr, code := e.run(full...)
	if code != want {
		e.t.Fatalf("hoard %s: exit %d, want %d\nstdout: %s\nstderr: %s", shortArgs(full), code, want, out, stderr)
	}
	var res spotJSONOut
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		e.t.Fatalf("hoard %s: decode: %v\n%s", shortArgs(full), err, out)
	}
	by := map[string]int{}
	for i, r := range res.Results {
		live := r.Live
		if r.LiveRaw != nil {
			live = string(r.LiveRaw)
		}
		by[live] = i
	}
	return res, by
}

// statTimes returns each file's mtime and ctime below dir.
func statTimes(t *testing.T, dir string) map[string][2]time.Time {
	t.Helper()
	out := map[string][2]time.Time{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		out[p] = [2]time.Time{fi.ModTime(), time.Unix(st.Ctim.Sec, st.Ctim.Nsec)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flipByte changes one byte of the file at p and puts its mtime back, as
// silent corruption (or tampering that covers its tracks) would.
func flipByte(t *testing.T, p string, at int64) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// TestE2EMediaSpotCheck: hoard media verify compares a sample of a media
// tree's files in the latest snapshot with the live files: a clean tree
// passes without the live tree being touched; the sample repeats with its
// seed; a file edited after the backup is reported changed, not failed; a
// file deleted after the backup is missing (a failure only when its folder
// was not changed since); a file whose bytes changed behind its size and
// mtime fails with exit 20, by name, hostile names quoted.
func TestE2EMediaSpotCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	media := filepath.Join(t.TempDir(), "uploads")
	newline, notUTF8 := "two\nlines.txt", "caf\xe9\xff.bin"
	files := map[string]string{
		"photo.jpg":       strings.Repeat("jpeg data ", 50_000), // several chunks
		"edited.txt":      "first version\n",
		"deleted.txt":     "soon gone\n",
		"old/kept.txt":    "kept\n",
		"old/removed.txt": "removed behind the folder's back\n",
		"sub/deep/a.css":  "body{}\n",
		newline:           "a name with a line break\n",
		notUTF8:           strings.Repeat("\x00\xff", 3000),
		"\x1b[31mred":     "escape in the name\n",
	}
	for name, data := range files {
		p := filepath.Join(media, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Times before the backup, so that only what the test changes later
	// is newer than the snapshot.
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	for p := range statTimes(t, media) {
		if err := os.Chtimes(p, past, past); err != nil {
			t.Fatal(err)
		}
	}
	e.writeConfig(fmt.Sprintf("[media.up]\npaths = [%q]\n", media))
	e.mustRun("run")

	// A clean tree passes; nothing in it is written to (ctimes stay).
	before := statTimes(t, media)
	res, _ := e.spotVerify(0, "up", "--sample", "100%")
	if res.Files != len(files) || res.Checked != len(files) || !res.Passed || res.Failed != 0 {
		t.Fatalf("clean tree: %+v", res)
	}
	for _, r := range res.Results {
		if r.Status != "same" {
			t.Errorf("clean tree: %q is %s %v", r.Live, r.Status, r.Differs)
		}
	}
	out, stderr, code := e.run("media", "verify", "up", "--sample", "100%")
	if code != 0 {
		t.Fatalf("text: exit %d\n%s%s", code, out, stderr)
	}
	// One line per file, plus the header and the summary: a line break in
	// a name cannot pass for two lines, nor an escape reach the terminal.
	if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != len(files)+2 ||
		!containsAll(out, strconv.Quote(filepath.Join(media, newline)), strconv.Quote(filepath.Join(media, notUTF8)), `\x1b[31mred`) ||
		strings.Contains(out, "\x1b") || !strings.HasSuffix(out, "passed\n") {
		t.Errorf("text output:\n%s", out)
	}
	if after := statTimes(t, media); !maps2Equal(before, after) {
		t.Errorf("the spot check changed the live tree's times:\nbefore %v\nafter  %v", before, after)
	}

	// The seed repeats the sample; a count and a percentage take that many.
	a, _ := e.spotVerify(0, "up", "--sample", "3", "--seed", "7")
	b, _ := e.spotVerify(0, "up", "--sample", "3", "--seed", "7")
	c, _ := e.spotVerify(0, "up", "--sample", "50%")
	paths := func(r spotJSONOut) (out []string) {
		for _, x := range r.Results {
			out = append(out, x.Path+string(x.PathRaw))
		}
		return out
	}
	if a.Checked != 3 || a.Seed != 7 || !slices.Equal(paths(a), paths(b)) {
		t.Errorf("--sample 3 --seed 7 twice: %v and %v", paths(a), paths(b))
	}
	if want := (len(files) + 1) / 2; c.Checked != want {
		t.Errorf("--sample 50%% of %d files checked %d, want %d", len(files), c.Checked, want)
	}

	// Edited and deleted after the backup: reported, not failures.
	if err := os.WriteFile(filepath.Join(media, "edited.txt"), []byte("second version, longer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(media, "deleted.txt")); err != nil {
		t.Fatal(err)
	}
	res, by := e.spotVerify(0, "up", "--sample", "100%")
	if r := res.Results[by[filepath.Join(media, "edited.txt")]]; r.Status != "changed" || r.Failed || !slices.Contains(r.Differs, "content") {
		t.Errorf("edited after the backup: %+v", r)
	}
	if r := res.Results[by[filepath.Join(media, "deleted.txt")]]; r.Status != "missing" || r.Failed || !r.AfterBackup {
		t.Errorf("deleted after the backup: %+v", r)
	}
	if !res.Passed {
		t.Errorf("changes after the backup failed the check: %+v", res)
	}

	// A file missing from a folder that did not change since the backup
	// is a failure (exit 19), named.
	old := filepath.Join(media, "old")
	if err := os.Remove(filepath.Join(old, "removed.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	res, by = e.spotVerify(exitDrill, "up", "--sample", "100%")
	if r := res.Results[by[filepath.Join(old, "removed.txt")]]; r.Status != "missing" || !r.Failed || r.AfterBackup || res.Failed != 1 {
		t.Errorf("missing behind an unchanged folder: %+v (failed %d)", r, res.Failed)
	}
	out, _, code = e.run("media", "verify", "up", "--sample", "100%")
	if code != exitDrill || !strings.Contains(out, "missing  "+filepath.Join(old, "removed.txt")+"\n") {
		t.Errorf("text, exit %d:\n%s", code, out)
	}

	// Bytes changed with size and mtime put back: exit 20, each named.
	flipByte(t, filepath.Join(media, "photo.jpg"), 123_456)
	flipByte(t, filepath.Join(media, notUTF8), 5)
	res, by = e.spotVerify(exitSpotCorrupt, "up", "--sample", "100%")
	for _, name := range []string{"photo.jpg", notUTF8} {
		r := res.Results[by[filepath.Join(media, name)]]
		if r.Status != "differs" || !r.Corrupt || !r.Failed || !slices.Equal(r.Differs, []string{"content"}) {
			t.Errorf("%q corrupted: %+v", name, r)
		}
	}
	if res.Corrupt != 2 {
		t.Errorf("corrupt %d, want 2", res.Corrupt)
	}
	if r := res.Results[by[filepath.Join(media, notUTF8)]]; string(r.PathRaw) != "media/up/uploads/"+notUTF8 {
		t.Errorf("path_raw %q", r.PathRaw)
	}
	out, stderr, code = e.run("media", "verify", "up", "--sample", "100%")
	if code != exitSpotCorrupt ||
		!strings.Contains(out, "differs  "+filepath.Join(media, "photo.jpg")+": content (size and mtime as in the snapshot") ||
		!strings.Contains(out, "differs  "+strconv.Quote(filepath.Join(media, notUTF8))+": content") ||
		!strings.Contains(stderr, "2 files differ in content") {
		t.Errorf("text, exit %d:\n%s%s", code, out, stderr)
	}

	// A media tree the config does not name is a usage error.
	e.mustFail(exitUsage, "media", "verify", "nope")
	e.mustFail(exitUsage, "media", "verify", "up", "--sample", "0")
}

func maps2Equal(a, b map[string][2]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !v[0].Equal(w[0]) || !v[1].Equal(w[1]) {
			return false
		}
	}
	return true
}

// TestE2ERunSpotCheck: [media.NAME] spot_check makes hoard run spot check
// the tree in the snapshot it just made, in its text and --json answers;
// and media verify takes an older snapshot by ID, where a file edited
// since is reported changed.
func TestE2ERunSpotCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	media := filepath.Join(t.TempDir(), "site")
	for i := range 6 {
		p := filepath.Join(media, fmt.Sprintf("d%d", i%2), fmt.Sprintf("f%d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Repeat(fmt.Sprint(i), 1000*(i+1))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.writeConfig(fmt.Sprintf("[media.site]\npaths = [%q]\nspot_check = \"100%%\"\n\n[media.other]\npaths = [%q]\n", media, t.TempDir()))
	var res struct {
		ID        string                 `json:"id"`
		SpotCheck map[string]spotJSONOut `json:"spot_check"`
	}
	e.mustRunJSON(&res, "run")
	sc, ok := res.SpotCheck["site"]
	if !ok || len(res.SpotCheck) != 1 || sc.Snapshot != res.ID || sc.Checked != 6 || !sc.Passed {
		t.Fatalf("run --json: %+v", res)
	}
	if out := e.mustRun("run"); !containsAll(out, "spot check of media site against snapshot", "6 same, 0 differ, 0 missing, 0 changed since the backup, 0 errors; passed") {
		t.Errorf("run output:\n%s", out)
	}

	// The first snapshot, by ID: a file written since is changed, not a failure.
	p := filepath.Join(media, "d0", "f0.txt")
	if err := os.WriteFile(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	// chmod after the backup leaves the mtime: the newer ctime tells.
	chmodded := filepath.Join(media, "d1", "f1.txt")
	if err := os.Chmod(chmodded, 0o600); err != nil {
		t.Fatal(err)
	}
	got, by := e.spotVerify(0, "site", res.ID[:8], "--sample", "100%")
	if r := got.Results[by[p]]; got.Snapshot != res.ID || r.Status != "changed" || r.Failed {
		t.Errorf("older snapshot: %+v", got)
	}
	if r := got.Results[by[chmodded]]; r.Status != "changed" || r.Failed || !slices.Equal(r.Differs, []string{"mode"}) {
		t.Errorf("chmod after the backup: %+v", r)
	}

	// A folder moved out of the tree, a symbolic link to it left in its
	// place: its files, whole and with their times, are not followed
	// there, so they are not "same".
	outside := filepath.Join(t.TempDir(), "d1")
	if err := os.Rename(filepath.Join(media, "d1"), outside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(media, "d1")); err != nil {
		t.Fatal(err)
	}
	got, _ = e.spotVerify(exitDrill, "site", "--sample", "100%")
	for _, r := range got.Results {
		if strings.Contains(r.Path, "/d1/") && (r.Status == "same" || !r.Failed) {
			t.Errorf("through a symbolic link out of the tree: %+v", r)
		}
	}
}
