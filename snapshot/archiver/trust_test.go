package archiver_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/archiver"
)

// TestParentTrust: unchanged files are reused without reading only from a
// parent the key in use wrote. A parent whose MAC does not verify (here:
// the same snapshot with another tree, as a write-only holder would forge
// it) makes the backup read every file and store the real bytes.
func TestParentTrust(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	dir := t.TempDir()
	files := map[string][]byte{"a.txt": bytes.Repeat([]byte("real a "), 1000), "b.bin": bytes.Repeat([]byte{1, 2, 3}, 5000)}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	meta := archiver.Meta{Host: "h", Source: snapshot.Source{Kind: snapshot.KindFiles}}
	first, err := archiver.New(r, archiver.Options{}).BackupPaths(ctx, []string{dir}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if tr := snapshot.Verify(r, first); tr != repo.TrustThisKey {
		t.Fatalf("own snapshot: %s", tr)
	}
	own, err := archiver.New(r, archiver.Options{Parent: first}).BackupPaths(ctx, []string{dir}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if own.Summary.FilesUnmodified != 2 {
		t.Fatalf("with its own parent: %+v", own.Summary)
	}

	// A forged parent: another snapshot's tree under the first's writer
	// fields, its files' nodes pointing at other content.
	other := t.TempDir()
	for name := range files {
		fi, _ := os.Stat(filepath.Join(dir, name))
		if err := os.WriteFile(filepath.Join(other, name), bytes.Repeat([]byte("E"), int(fi.Size())), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	evil, err := archiver.New(r, archiver.Options{}).BackupPaths(ctx, []string{other}, meta)
	if err != nil {
		t.Fatal(err)
	}
	forged := *first
	forged.Tree = evil.Tree
	if tr := snapshot.Verify(r, &forged); tr != repo.TrustInvalid {
		t.Fatalf("forged snapshot: %s", tr)
	}
	forgedTree, err := snapshot.LoadTree(ctx, r, evil.Tree)
	if err != nil {
		t.Fatal(err)
	}
	realTree, err := snapshot.LoadTree(ctx, r, first.Tree)
	if err != nil {
		t.Fatal(err)
	}
	evilDir, err := snapshot.LoadTree(ctx, r, *forgedTree.Nodes[0].Subtree)
	if err != nil {
		t.Fatal(err)
	}
	realDir, err := snapshot.LoadTree(ctx, r, *realTree.Nodes[0].Subtree)
	if err != nil {
		t.Fatal(err)
	}
	for i := range realDir.Nodes {
		realDir.Nodes[i].Content = evilDir.Find(realDir.Nodes[i].Name).Content
	}
	sub, _, err := snapshot.SaveTree(ctx, r, realDir)
	if err != nil {
		t.Fatal(err)
	}
	realTree.Nodes[0].Subtree = &sub
	root, _, err := snapshot.SaveTree(ctx, r, realTree)
	if err != nil {
		t.Fatal(err)
	}
	forged.Tree = root
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sn, err := archiver.New(r, archiver.Options{Parent: &forged}).BackupPaths(ctx, []string{dir}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if sn.Summary.FilesUnmodified != 0 {
		t.Fatalf("with a forged parent: %+v", sn.Summary)
	}
	for name, want := range files {
		if got := content(t, r, sn, "/"+filepath.Base(dir)+"/"+name); !bytes.Equal(got, want) {
			t.Fatalf("%s: stored %q...", name, got[:min(len(got), 16)])
		}
	}
}
