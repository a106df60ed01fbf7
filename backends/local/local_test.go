package local_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/backendtest"
	"github.com/hoard-backup/hoard/backends/local"
)

const packName = "abcdef0123456789"

func TestBackend(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		ctx, cancel := context.WithCancel(context.Background())
		be, err := local.Open(ctx, local.Config{Path: filepath.Join(t.TempDir(), "repo")})
		cancel() // the backend must not keep Open's ctx
		if err != nil {
			t.Fatal(err)
		}
		return be
	})
}

// create opens and creates a repository in a new folder and returns both.
func create(t *testing.T, cfg local.Config) (*local.Backend, string) {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "repo")
	}
	be, err := local.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	return be, cfg.Path
}

func save(t *testing.T, be backends.Backend, h backends.Handle, data string) {
	t.Helper()
	if err := be.Save(context.Background(), h, backends.NewByteReader([]byte(data))); err != nil {
		t.Fatalf("Save(%v): %v", h, err)
	}
}

// walk returns the mode of every file and folder under root, by relative path.
func walk(t *testing.T, root string) map[string]fs.FileMode {
	t.Helper()
	modes := make(map[string]fs.FileMode)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		modes[filepath.ToSlash(rel)] = fi.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return modes
}

func TestLayout(t *testing.T) {
	be, root := create(t, local.Config{})
	save(t, be, backends.Handle{Type: backends.ConfigFile}, "config")
	save(t, be, backends.Handle{Type: backends.PackFile, Name: packName}, "pack")
	save(t, be, backends.Handle{Type: backends.KeyFile, Name: "k1"}, "key")
	modes := walk(t, root)
	for _, path := range []string{"config", "data/ab/" + packName, "keys/k1"} {
		if !modes[path].IsRegular() {
			t.Errorf("%s is missing or not a file", path)
		}
	}
	for _, dir := range []string{".", "keys", "data", "data/00", "data/ff", "index", "snapshots", "locks"} {
		if !modes[dir].IsDir() {
			t.Errorf("%s is missing or not a folder", dir)
		}
	}
	if len(modes) != 1+5+256+3 {
		t.Errorf("repository holds %d entries, want %d", len(modes), 1+5+256+3)
	}
}

func TestPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions on Windows")
	}
	tests := []struct {
		name              string
		cfg               local.Config
		dirMode, fileMode fs.FileMode
	}{
		{"default", local.Config{}, 0o700, 0o600},
		{"group", local.Config{DirMode: 0o750, FileMode: 0o640}, 0o750, 0o640},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be, root := create(t, tc.cfg)
			save(t, be, backends.Handle{Type: backends.ConfigFile}, "config")
			save(t, be, backends.Handle{Type: backends.SnapshotFile, Name: "s1"}, "snap")
			// Folders that Save creates on demand get the same mode.
			if err := os.Remove(filepath.Join(root, "data", "ab")); err != nil {
				t.Fatal(err)
			}
			save(t, be, backends.Handle{Type: backends.PackFile, Name: packName}, "pack")
			for path, mode := range walk(t, root) {
				want := tc.fileMode
				if mode.IsDir() {
					want = tc.dirMode
				}
				if mode.Perm() != want {
					t.Errorf("%s has mode %#o, want %#o", path, mode.Perm(), want)
				}
			}
		})
	}
}

func TestOpenRejectsModes(t *testing.T) {
	for _, cfg := range []local.Config{
		{DirMode: 0o755},
		{DirMode: 0o500},
		{FileMode: 0o644},
		{FileMode: 0o400},
		{FileMode: 0o600 | fs.ModeSetuid},
		{}, // empty path
	} {
		if cfg != (local.Config{}) {
			cfg.Path = t.TempDir()
		}
		if _, err := local.Open(context.Background(), cfg); err == nil {
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

func TestOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Open(context.Background(), local.Config{Path: path}); err == nil {
		t.Error("Open of a file succeeded")
	}
}

func TestTempFilesNotListed(t *testing.T) {
	be, root := create(t, local.Config{})
	pack := backends.Handle{Type: backends.PackFile, Name: packName}
	save(t, be, pack, "pack")
	// What a crash in Save leaves behind, and other strays.
	for _, path := range []string{
		"data/ab/" + packName + "ff.tmp-123456",
		"data/cd/" + "abcd",  // in the wrong shard
		"data/stray",         // not in a shard
		"index/0123.tmp-999", // temp index
		"keys/.hidden",
	} {
		if err := os.WriteFile(filepath.Join(root, path), []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "keys", "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, typ := range backends.FileTypes() {
		var names []string
		err := be.List(context.Background(), typ, func(fi backends.FileInfo) error {
			names = append(names, fi.Name)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if typ == backends.PackFile {
			want = 1
		}
		if len(names) != want || want == 1 && names[0] != packName {
			t.Errorf("List(%s) = %q", typ, names)
		}
	}
}

func TestFailedSaveLeavesNoTempFile(t *testing.T) {
	be, root := create(t, local.Config{})
	h := backends.Handle{Type: backends.PackFile, Name: packName}
	before := walk(t, root)
	rd := &lying{ByteReader: backends.NewByteReader([]byte("short")), length: 100}
	if err := be.Save(context.Background(), h, rd); err == nil {
		t.Fatal("Save with a lying reader succeeded")
	}
	after := walk(t, root)
	for path := range after {
		if _, ok := before[path]; !ok {
			t.Errorf("failed Save left %s", path)
		}
	}
}

type lying struct {
	*backends.ByteReader
	length int64
}

func (l *lying) Length() int64 { return l.length }

func TestHostileHandles(t *testing.T) {
	parent := t.TempDir()
	be, root := create(t, local.Config{Path: filepath.Join(parent, "repo")})
	for _, h := range []backends.Handle{
		{Type: backends.PackFile, Name: "../../escape"},
		{Type: backends.KeyFile, Name: "../escape"},
		{Type: "../../escape", Name: "x"},
		{Type: backends.ConfigFile, Name: "../escape"},
		{Type: backends.PackFile, Name: "a"}, // too short to shard
	} {
		err := be.Save(context.Background(), h, backends.NewByteReader([]byte("x")))
		if err == nil {
			t.Errorf("Save(%#v) succeeded", h)
		} else if !errors.Is(err, backends.ErrPermanent) {
			t.Errorf("Save(%#v) = %v, want an ErrPermanent", h, err)
		}
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(root) {
		t.Errorf("hostile saves wrote beside the repository: %v", entries)
	}
	if len(walk(t, root)) != 1+5+256 {
		t.Error("hostile saves wrote into the repository")
	}
}

func TestNotCreated(t *testing.T) {
	root := filepath.Join(t.TempDir(), "missing")
	be, err := local.Open(context.Background(), local.Config{Path: root})
	if err != nil {
		t.Fatal(err)
	}
	backendtest.NotCreated(t, be)
	// Save never creates the repository folder itself (an unmounted disk).
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Save created the repository folder: %v", err)
	}
}

func TestCreateExisting(t *testing.T) {
	be, _ := create(t, local.Config{})
	if err := be.Create(context.Background()); err != nil {
		t.Errorf("Create of an empty repository folder: %v", err)
	}
	save(t, be, backends.Handle{Type: backends.ConfigFile}, "config")
	if err := be.Create(context.Background()); !errors.Is(err, backends.ErrExist) {
		t.Errorf("Create over a config = %v, want ErrExist", err)
	}
}

func TestPermissionErrorIsPermanent(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions on Windows")
	}
	if os.Geteuid() == 0 {
		t.Skip("root ignores permissions")
	}
	be, root := create(t, local.Config{})
	keys := filepath.Join(root, "keys")
	if err := os.Chmod(keys, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(keys, 0o700) })
	err := be.Save(context.Background(), backends.Handle{Type: backends.KeyFile, Name: "k"}, backends.NewByteReader([]byte("k")))
	if !errors.Is(err, backends.ErrPermanent) || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Save into a read-only folder = %v, want ErrPermanent and fs.ErrPermission", err)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		location, path string
		ok             bool
	}{
		{"/srv/backup", "/srv/backup", true},
		{"local:/srv/backup", "/srv/backup", true},
		{"relative/dir", "relative/dir", true},
		{"local:relative", "relative", true},
		{"", "", false},
		{"local:", "", false},
	}
	for _, tc := range tests {
		cfg, err := local.ParseConfig(tc.location)
		if (err == nil) != tc.ok || cfg.Path != tc.path {
			t.Errorf("ParseConfig(%q) = %+v, %v; want path %q, ok %v", tc.location, cfg, err, tc.path, tc.ok)
		}
		if cfg.DirMode != 0 || cfg.FileMode != 0 {
			t.Errorf("ParseConfig(%q) set modes: %+v", tc.location, cfg)
		}
	}
}

func TestRegistry(t *testing.T) {
	dir := t.TempDir()
	reg := backends.Registry{"local": local.Opener}
	for _, location := range []string{dir, "local:" + dir} {
		be, err := reg.Open(context.Background(), location)
		if err != nil {
			t.Fatalf("Open(%q): %v", location, err)
		}
		if got := be.Location(); got != "local:"+dir {
			t.Errorf("Location() = %q, want %q", got, "local:"+dir)
		}
	}
}
