package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestE2EFindTag finds files across snapshots by name and by path, then
// adds, removes and sets tags and checks that the retagged snapshots keep
// their content, record their original, and that bad use is refused.
func TestE2EFindTag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("uploads/2026/a.jpg", "jpeg a")
	write("uploads/2026/notes.txt", "notes")
	write("static/logo.JPG", "logo")
	first := e.mustBackup(nil, "--tag", "daily", src).ID
	write("uploads/2026/b.jpg", "jpeg b")
	second := e.mustBackup(nil, "--tag", "daily", src).ID

	type match struct {
		Path string `json:"path"`
		Size uint64 `json:"size"`
	}
	type found struct {
		Snapshot string  `json:"snapshot"`
		Matches  []match `json:"matches"`
	}
	find := func(args ...string) map[string][]string {
		t.Helper()
		var out []found
		e.mustRunJSON(&out, append([]string{"find"}, args...)...)
		got := map[string][]string{}
		for _, f := range out {
			for _, m := range f.Matches {
				got[f.Snapshot] = append(got[f.Snapshot], m.Path)
			}
		}
		return got
	}
	got := find("*.jpg")
	if !slices.Equal(got[first], []string{"/src/uploads/2026/a.jpg"}) || !slices.Equal(got[second], []string{"/src/uploads/2026/a.jpg", "/src/uploads/2026/b.jpg"}) {
		t.Fatalf("find *.jpg: %q", got)
	}
	got = find("-i", "--snapshot", first, "*.jpg")
	if len(got) != 1 || !slices.Equal(got[first], []string{"/src/static/logo.JPG", "/src/uploads/2026/a.jpg"}) {
		t.Fatalf("find -i --snapshot first: %q", got)
	}
	got = find("/src/uploads/*/notes.txt")
	if len(got) != 2 || len(got[first]) != 1 || len(got[second]) != 1 {
		t.Fatalf("find by path: %q", got)
	}
	if out := e.mustRun("find", "nothing-like-this"); !strings.Contains(out, "0 matches in 0 snapshots") {
		t.Errorf("find with no match printed %q", out)
	}
	if _, stderr, code := e.run("find", "[a"); code != exitUsage || !strings.Contains(stderr, "pattern") {
		t.Errorf("malformed pattern: exit %d, %s", code, stderr)
	}

	// tag: refuses without a change, and without a selection.
	if _, _, code := e.run("tag", first); code != exitUsage {
		t.Errorf("tag without --add/--remove/--set: exit %d", code)
	}
	if _, _, code := e.run("tag", "--add", "x"); code != exitUsage {
		t.Errorf("tag of every snapshot by default: exit %d", code)
	}
	type tagged struct {
		Old  string   `json:"old"`
		New  string   `json:"new"`
		Tags []string `json:"tags"`
	}
	var res []tagged
	e.mustRunJSON(&res, "tag", "--add", "keep,monthly", first)
	if len(res) != 1 || res[0].Old != first || res[0].New == first || !slices.Equal(res[0].Tags, []string{"daily", "keep", "monthly"}) {
		t.Fatalf("tag --add: %+v", res)
	}
	retagged := res[0].New
	e.mustRunJSON(&res, "tag", "--tag", "daily", "--remove", "daily")
	if len(res) != 2 {
		t.Fatalf("tag --tag daily --remove daily changed %d snapshots, want 2", len(res))
	}
	type snap struct {
		ID       string   `json:"id"`
		Tags     []string `json:"tags"`
		Original string   `json:"original"`
		Tree     string   `json:"tree"`
	}
	var sns []snap
	e.mustRunJSON(&sns, "snapshots")
	if len(sns) != 2 {
		t.Fatalf("%d snapshots after tagging, want 2", len(sns))
	}
	for _, s := range sns {
		if s.ID == first || s.ID == second || s.ID == retagged {
			t.Errorf("old snapshot file %s still listed", s.ID)
		}
		if s.Original != first && s.Original != second {
			t.Errorf("snapshot %s: original %q, want the first version's ID", s.ID, s.Original)
		}
		if slices.Contains(s.Tags, "daily") {
			t.Errorf("snapshot %s still tagged daily: %q", s.ID, s.Tags)
		}
	}
	e.mustRun("tag", "--set", "", "--tag", "keep")
	target := t.TempDir()
	e.mustRun("restore", "latest", "--target", target)
	b, err := os.ReadFile(filepath.Join(target, "src", "uploads/2026/b.jpg"))
	if err != nil || string(b) != "jpeg b" {
		t.Fatalf("restore after tagging: %q, %v", b, err)
	}
	e.mustRun("check", "--read-data")
}
