package repo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/local"
	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
)

// The names repo gives again must be the very ones of the packages below:
// a snapshot file listed as repo.SnapshotFile is in backends' snapshots/.
func TestNamesAreTheLowerLayers(t *testing.T) {
	if repo.DataBlob != pack.DataBlob || repo.TreeBlob != pack.TreeBlob {
		t.Fatalf("blob types: data %v tree %v", repo.DataBlob, repo.TreeBlob)
	}
	types := map[repo.FileType]backends.FileType{repo.KeyFile: backends.KeyFile, repo.PackFile: backends.PackFile,
		repo.IndexFile: backends.IndexFile, repo.SnapshotFile: backends.SnapshotFile, repo.LockFile: backends.LockFile, repo.WALFile: backends.WALFile}
	for got, want := range types {
		if got != want {
			t.Errorf("file type %q, want %q", got, want)
		}
	}
	if len(types) != 6 {
		t.Errorf("%d distinct file types, want 6", len(types))
	}
	if repo.ErrNotExist != backends.ErrNotExist {
		t.Error("repo.ErrNotExist is not backends.ErrNotExist")
	}
	if repo.TrustThisKey != crypto.TrustThisKey || repo.TrustInvalid != crypto.TrustInvalid || repo.TrustNone != crypto.TrustNone ||
		repo.TrustVerified != crypto.TrustVerified || repo.TrustUnknown != crypto.TrustUnknown {
		t.Error("trust levels differ from crypto's")
	}
}

// SaveUnpacked seals each type under its label of FORMAT.md section 2, and
// LoadUnpacked refuses a file of one type stored as another.
func TestSealedFileLabels(t *testing.T) {
	ctx := context.Background()
	r, be := newRepo(t)
	labels := map[repo.FileType]string{repo.IndexFile: crypto.LabelIndex, repo.SnapshotFile: crypto.LabelSnapshot, repo.LockFile: crypto.LabelLock}
	for typ, label := range labels {
		plain := []byte("a sealed " + string(typ) + " file")
		name, err := r.SaveUnpacked(ctx, typ, plain)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := backends.LoadAll(ctx, be, backends.Handle{Type: typ, Name: name.String()})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := r.Keys().Meta.Open(nil, raw, []byte(label)); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%s file does not open under %q: %v", typ, label, err)
		}
		got, err := r.LoadUnpacked(ctx, typ, name)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("LoadUnpacked %s: %q, %v", typ, got, err)
		}
		// The same bytes under another type (its name is still their hash).
		other := repo.SnapshotFile
		if typ == repo.SnapshotFile {
			other = repo.LockFile
		}
		if err := be.Save(ctx, backends.Handle{Type: other, Name: name.String()}, backends.NewByteReader(raw)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.LoadUnpacked(ctx, other, name); !errors.Is(err, repo.ErrInvalidData) {
			t.Errorf("a %s file loaded as %s: %v, want ErrInvalidData", typ, other, err)
		}
		if err := be.Remove(ctx, backends.Handle{Type: other, Name: name.String()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, typ := range []repo.FileType{repo.PackFile, repo.KeyFile, repo.WALFile, backends.ConfigFile} {
		if _, err := r.SaveUnpacked(ctx, typ, []byte("x")); err == nil {
			t.Errorf("SaveUnpacked stored a %s file", typ)
		}
		if _, err := r.LoadUnpacked(ctx, typ, id.Hash([]byte("x"))); err == nil || errors.Is(err, repo.ErrNotExist) {
			t.Errorf("LoadUnpacked of a %s file: %v, want a refusal before the backend", typ, err)
		}
	}
	if names, err := r.List(ctx, repo.PackFile); err != nil || len(names) != 0 {
		t.Errorf("packs after SaveUnpacked of a pack: %v %v", names, err)
	}
}

// RemoveSnapshot and RemoveLock remove a file of their own type only, and
// say ErrNotExist for one that is not there.
func TestRemoveSnapshotAndLock(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t)
	sn, err := r.SaveUnpacked(ctx, repo.SnapshotFile, []byte("snapshot"))
	if err != nil {
		t.Fatal(err)
	}
	lk, err := r.SaveUnpacked(ctx, repo.LockFile, []byte("lock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveSnapshot(ctx, lk); !errors.Is(err, repo.ErrNotExist) {
		t.Errorf("RemoveSnapshot of a lock's name: %v, want ErrNotExist", err)
	}
	if err := r.RemoveLock(ctx, sn); !errors.Is(err, repo.ErrNotExist) {
		t.Errorf("RemoveLock of a snapshot's name: %v, want ErrNotExist", err)
	}
	count := func(typ repo.FileType) int {
		names, err := r.List(ctx, typ)
		if err != nil {
			t.Fatal(err)
		}
		return len(names)
	}
	if count(repo.SnapshotFile) != 1 || count(repo.LockFile) != 1 {
		t.Fatal("a remove of the wrong type removed a file")
	}
	if err := r.RemoveSnapshot(ctx, sn); err != nil {
		t.Fatal(err)
	}
	if count(repo.SnapshotFile) != 0 || count(repo.LockFile) != 1 {
		t.Errorf("after RemoveSnapshot: %d snapshots, %d locks; want 0, 1", count(repo.SnapshotFile), count(repo.LockFile))
	}
	if err := r.RemoveLock(ctx, lk); err != nil {
		t.Fatal(err)
	}
	if count(repo.LockFile) != 0 {
		t.Error("the lock is still there after RemoveLock")
	}
	if err := r.RemoveSnapshot(ctx, sn); !errors.Is(err, repo.ErrNotExist) {
		t.Errorf("second RemoveSnapshot: %v, want ErrNotExist", err)
	}
	if err := r.RemoveLock(ctx, lk); !errors.Is(err, repo.ErrNotExist) {
		t.Errorf("second RemoveLock: %v, want ErrNotExist", err)
	}
}

// ListPacks returns every pack file with its size: the indexed ones and a
// stray one no index names, and no file of another type.
func TestListPacks(t *testing.T) {
	ctx := context.Background()
	r, be := newRepo(t)
	for i := range 3 {
		if _, err := r.SaveBlob(ctx, repo.DataBlob, randomBytes(t, 1000+i)); err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(ctx); err != nil { // one pack each
			t.Fatal(err)
		}
	}
	if _, err := r.SaveBlob(ctx, repo.TreeBlob, []byte(`{"nodes":[]}`)); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stray := id.Hash([]byte("stray"))
	if err := be.Save(ctx, backends.Handle{Type: backends.PackFile, Name: stray.String()}, backends.NewByteReader(make([]byte, 77))); err != nil {
		t.Fatal(err)
	}
	want := map[id.ID]int64{stray: 77}
	for _, p := range r.Index().Packs() {
		want[p.ID] = int64(p.Size)
	}
	if len(want) != 5 {
		t.Fatalf("%d packs expected, want 5 (4 written and a stray)", len(want))
	}
	got, err := r.ListPacks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
		t.Errorf("ListPacks:\n got %v\nwant %v", sorted(got), sorted(want))
	}
}

func sorted(m map[id.ID]int64) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d", k.Str(), v))
	}
	sort.Strings(out)
	return out
}

// FilePath names where a file is in a local repository folder: the pack
// in its shard folder, the others in their type's folder.
func TestFilePath(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be, err := local.Open(ctx, local.Config{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, be, repo.InitOptions{Options: repo.Options{Passphrase: []byte(passphrase)}, S2K: crypto.S2KIterated})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.SaveBlob(ctx, repo.DataBlob, []byte("content")); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sn, err := r.SaveUnpacked(ctx, repo.SnapshotFile, []byte("snapshot"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[repo.FileType][]id.ID{repo.SnapshotFile: {sn}}
	for _, typ := range []repo.FileType{repo.PackFile, repo.IndexFile} {
		names, err := r.List(ctx, typ)
		if err != nil || len(names) != 1 {
			t.Fatalf("%s files: %v %v", typ, names, err)
		}
		files[typ] = names
	}
	for typ, names := range files {
		p := repo.FilePath(typ, names[0])
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			t.Errorf("FilePath(%s) = %q, not a file of the folder: %v", typ, p, err)
		}
	}
	s := files[repo.PackFile][0].String()
	if got, want := repo.FilePath(repo.PackFile, files[repo.PackFile][0]), "data/"+s[:2]+"/"+s; got != want {
		t.Errorf("pack path %q, want %q", got, want)
	}
}

// connBackend is a mem backend that says it serves n connections.
type connBackend struct {
	*mem.Backend
	n int
}

func (b connBackend) Properties() backends.Properties {
	p := b.Backend.Properties()
	p.Connections = b.n
	return p
}

func TestConnections(t *testing.T) {
	for _, n := range []int{1, 3, 17} {
		r, err := repo.Init(context.Background(), connBackend{mem.New(), n},
			repo.InitOptions{Options: repo.Options{Passphrase: []byte(passphrase)}, S2K: crypto.S2KIterated})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Connections(); got != n {
			t.Errorf("Connections() = %d, want the backend's %d", got, n)
		}
	}
}

// The snapshot MAC helpers are those of the key in use: a MAC made by one
// key file checks as this key's there, as verified under another full key
// file, and as invalid over another statement.
func TestSnapshotMAC(t *testing.T) {
	ctx := context.Background()
	r, be := newRepo(t)
	if r.Writer() == "" || r.Writer() != r.Keys().Writer() {
		t.Fatalf("Writer() = %q, key's %q", r.Writer(), r.Keys().Writer())
	}
	stmt := repo.SnapshotStatement([]byte("repo"), []byte(r.Writer()), []byte("tree"))
	if !bytes.Equal(stmt, crypto.SnapshotStatement([]byte("repo"), []byte(r.Writer()), []byte("tree"))) {
		t.Fatal("SnapshotStatement differs from crypto's")
	}
	mac, wrapped, err := r.MACSnapshot(stmt)
	if err != nil || mac == nil || wrapped == nil {
		t.Fatalf("MACSnapshot: %x %x %v", mac, wrapped, err)
	}
	if want, _, _ := r.Keys().MACSnapshot(stmt); !bytes.Equal(mac, want) {
		t.Fatal("MACSnapshot is not the key's MAC")
	}
	if tr := r.CheckSnapshot(r.Writer(), wrapped, stmt, mac); tr != repo.TrustThisKey {
		t.Errorf("own snapshot: %s, want %s", tr, repo.TrustThisKey)
	}
	other := repo.SnapshotStatement([]byte("repo"), []byte(r.Writer()), []byte("another tree"))
	if tr := r.CheckSnapshot(r.Writer(), wrapped, other, mac); tr != repo.TrustInvalid {
		t.Errorf("MAC over another statement: %s, want %s", tr, repo.TrustInvalid)
	}
	if _, err := r.AddKey(ctx, repo.AddKeyOptions{Kind: crypto.Full, Passphrase: []byte("second"), S2K: crypto.S2KIterated}); err != nil {
		t.Fatal(err)
	}
	r2, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte("second")})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Writer() == r.Writer() {
		t.Fatal("two key files with one writer ID")
	}
	if tr := r2.CheckSnapshot(r.Writer(), wrapped, stmt, mac); tr != repo.TrustVerified {
		t.Errorf("another key's snapshot under a full key: %s, want %s", tr, repo.TrustVerified)
	}
}
