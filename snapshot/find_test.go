package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
)

func newMemRepo(t *testing.T) *repo.Repository {
	t.Helper()
	r, err := repo.Init(context.Background(), mem.New(), repo.InitOptions{Options: repo.Options{Passphrase: []byte("find test")}, S2K: crypto.S2KIterated})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func saveTree(t *testing.T, r *repo.Repository, nodes ...snapshot.Node) id.ID {
	t.Helper()
	tid, _, err := snapshot.SaveTree(context.Background(), r, &snapshot.Tree{Nodes: nodes})
	if err != nil {
		t.Fatal(err)
	}
	return tid
}

func dirNode(name string, sub id.ID) snapshot.Node {
	return snapshot.Node{Name: name, Type: snapshot.TypeDir, Mode: 0o755, Subtree: &sub}
}

func fileNode(name string, size uint64) snapshot.Node {
	return snapshot.Node{Name: name, Type: snapshot.TypeFile, Mode: 0o644, Size: size, ModTime: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
}

func paths(fs []snapshot.Found) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Path)
	}
	return out
}

// TestFinder checks name and whole-path patterns, and that a subtree shared
// by two snapshots at different places reports the right paths for each
// (the memo of name matches is relative to the subtree).
func TestFinder(t *testing.T) {
	ctx := context.Background()
	r := newMemRepo(t)
	shared := saveTree(t, r, fileNode("Old.SQL", 1), fileNode("README", 3), fileNode("dump.sql", 10))
	root1 := saveTree(t, r, dirNode("a", shared), fileNode("x.sql", 5))
	root2 := saveTree(t, r, dirNode("b", saveTree(t, r, dirNode("c", shared))))
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sn1 := &snapshot.Snapshot{Tree: root1}
	sn2 := &snapshot.Snapshot{Tree: root2}
	for _, tc := range []struct {
		pattern    string
		ignoreCase bool
		want1      []string
		want2      []string
	}{
		{"*.sql", false, []string{"/a/dump.sql", "/x.sql"}, []string{"/b/c/dump.sql"}},
		{"*.sql", true, []string{"/a/Old.SQL", "/a/dump.sql", "/x.sql"}, []string{"/b/c/Old.SQL", "/b/c/dump.sql"}},
		{"/a/*", false, []string{"/a/Old.SQL", "/a/README", "/a/dump.sql"}, nil},
		{"/b/*/README", false, nil, []string{"/b/c/README"}},
		{"c", false, nil, []string{"/b/c"}},
		{"nothing*", false, nil, nil},
	} {
		f := snapshot.NewFinder(r, snapshot.FindPattern{Pattern: tc.pattern, IgnoreCase: tc.ignoreCase})
		for i, c := range []struct {
			sn   *snapshot.Snapshot
			want []string
		}{{sn1, tc.want1}, {sn2, tc.want2}, {sn1, tc.want1}} { // sn1 again: from the memo
			got, err := f.Find(ctx, c.sn)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(paths(got), c.want) {
				t.Errorf("%q (ignore case %v) snapshot %d: got %q, want %q", tc.pattern, tc.ignoreCase, i, paths(got), c.want)
			}
		}
	}
	if err := (snapshot.FindPattern{Pattern: "[a"}).Valid(); err == nil {
		t.Error("a malformed pattern was accepted")
	}
}

// TestFinderHostileTree builds a tree that names one subtree twice at each
// of 40 levels (2^40 paths in a few kilobytes): a walk that visits every
// path never ends, so Find must load each tree once and stop at the bound
// on results with a clear error instead.
func TestFinderHostileTree(t *testing.T) {
	ctx := context.Background()
	r := newMemRepo(t)
	tid := saveTree(t, r, fileNode("leaf", 1))
	for range 40 {
		tid = saveTree(t, r, dirNode("l", tid), dirNode("r", tid))
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		f := snapshot.NewFinder(r, snapshot.FindPattern{Pattern: "leaf"})
		f.Limit = 1 << 12
		_, err := f.Find(ctx, &snapshot.Snapshot{Tree: tid})
		if !errors.Is(err, snapshot.ErrTooManyResults) {
			done <- fmt.Errorf("leaf: got %v, want ErrTooManyResults", err)
			return
		}
		// A pattern that matches nothing must end too: each tree is
		// loaded and searched once.
		f = snapshot.NewFinder(r, snapshot.FindPattern{Pattern: "nomatch"})
		got, err := f.Find(ctx, &snapshot.Snapshot{Tree: tid})
		if err == nil && len(got) != 0 {
			err = fmt.Errorf("nomatch: %d results", len(got))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("find over a self-similar tree did not end within 60 s")
	}
}

func TestTagChangeApply(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		c    snapshot.TagChange
		want []string
	}{
		{[]string{"a", "b"}, snapshot.TagChange{Add: []string{"c", "a"}}, []string{"a", "b", "c"}},
		{[]string{"a", "b"}, snapshot.TagChange{Remove: []string{"a", "z"}}, []string{"b"}},
		{[]string{"a", "b"}, snapshot.TagChange{SetTags: true}, nil},
		{[]string{"a"}, snapshot.TagChange{SetTags: true, Set: []string{"x", "x", "y"}, Add: []string{"z"}, Remove: []string{"y"}}, []string{"x", "z"}},
	} {
		if got := tc.c.Apply(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%v %+v: got %q, want %q", tc.in, tc.c, got, tc.want)
		}
	}
}

// TestRetag checks that a retagged snapshot has a new ID, records the
// first version's ID through two retaggings, and that the old file is gone.
func TestRetag(t *testing.T) {
	ctx := context.Background()
	r := newMemRepo(t)
	root := saveTree(t, r, fileNode("f", 1))
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sn := &snapshot.Snapshot{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Host: "h", Tags: []string{"daily"}, Tree: root}
	if err := snapshot.Save(ctx, r, sn); err != nil {
		t.Fatal(err)
	}
	first := sn.ID
	if _, changed, err := snapshot.Retag(ctx, r, sn, snapshot.TagChange{Add: []string{"daily"}}); err != nil || changed {
		t.Fatalf("a change that changes nothing: changed %v, %v", changed, err)
	}
	s2, changed, err := snapshot.Retag(ctx, r, sn, snapshot.TagChange{Add: []string{"keep"}})
	if err != nil || !changed {
		t.Fatalf("retag: changed %v, %v", changed, err)
	}
	s3, _, err := snapshot.Retag(ctx, r, s2, snapshot.TagChange{Remove: []string{"daily"}})
	if err != nil {
		t.Fatal(err)
	}
	sns, _, err := snapshot.List(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(sns) != 1 || sns[0].ID != s3.ID {
		t.Fatalf("snapshots after two retaggings: %d, want only %s", len(sns), s3.ID.Str())
	}
	got := sns[0]
	if got.Original == nil || *got.Original != first || !slices.Equal(got.Tags, []string{"keep"}) || got.Tree != root || !got.Time.Equal(sn.Time) {
		t.Fatalf("retagged snapshot: original %v (want %s), tags %q, tree %s", got.Original, first.Str(), got.Tags, got.Tree.Str())
	}
}
