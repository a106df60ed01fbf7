package archiver_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/archiver"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

func newRepo(t *testing.T) *repo.Repository {
	t.Helper()
	r, err := repo.Init(context.Background(), mem.New(), repo.InitOptions{
		Options: repo.Options{Passphrase: []byte("archiver test")}, S2K: crypto.S2KIterated})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// stream is a ReadCloser whose Close returns closeErr and records that it
// was called.
type stream struct {
	io.Reader
	closeErr error
	closed   *bool
}

func (s stream) Close() error {
	*s.closed = true
	return s.closeErr
}

func opener(data []byte, closeErr error, opened, closed *bool) func(context.Context) (io.ReadCloser, error) {
	return func(context.Context) (io.ReadCloser, error) {
		*opened = true
		return stream{Reader: bytes.NewReader(data), closeErr: closeErr, closed: closed}, nil
	}
}

func content(t *testing.T, r *repo.Repository, sn *snapshot.Snapshot, p string) []byte {
	t.Helper()
	n, err := restorer.FindNode(context.Background(), r, sn, p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	var buf bytes.Buffer
	if err := restorer.Dump(context.Background(), r, n, &buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBackupItems(t *testing.T) {
	r := newRepo(t)
	ctx := context.Background()
	dir := t.TempDir()
	media := filepath.Join(dir, "media")
	for name, data := range map[string]string{"a.jpg": "jpeg", "b.tmp": "skip me", "sub/c.txt": "text"} {
		p := filepath.Join(media, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dump1 := bytes.Repeat([]byte("row\n"), 300000)
	dump2 := []byte("CREATE TABLE t;\n")
	var o1, c1, o2, c2 bool
	items := []archiver.Item{
		{Name: "db/main.pgdump", Open: opener(dump1, nil, &o1, &c1)},
		{Name: "db/shop.sql", Open: opener(dump2, nil, &o2, &c2)},
		{Name: "media/uploads/media", Path: media, Excludes: []string{"*.tmp"}},
	}
	meta := archiver.Meta{Host: "h", Paths: []string{media}, Source: snapshot.Source{Kind: snapshot.KindRun},
		Commit: func(sn *snapshot.Snapshot) error {
			sn.Source.Databases = []snapshot.DatabaseInfo{{Name: "main", Engine: "postgres", Path: "/db/main.pgdump"}}
			return nil
		}}
	sn, err := archiver.New(r, archiver.Options{}).Backup(ctx, items, meta)
	if err != nil {
		t.Fatal(err)
	}
	if !o1 || !c1 || !o2 || !c2 {
		t.Errorf("streams opened %v %v, closed %v %v", o1, o2, c1, c2)
	}
	if got := content(t, r, sn, "/db/main.pgdump"); !bytes.Equal(got, dump1) {
		t.Error("db/main.pgdump differs")
	}
	if got := content(t, r, sn, "/db/shop.sql"); !bytes.Equal(got, dump2) {
		t.Error("db/shop.sql differs")
	}
	if got := content(t, r, sn, "/media/uploads/media/sub/c.txt"); string(got) != "text" {
		t.Errorf("c.txt: %q", got)
	}
	if _, err := restorer.FindNode(ctx, r, sn, "/media/uploads/media/b.tmp"); err == nil {
		t.Error("the item's exclude was not applied")
	}
	loaded, err := snapshot.Load(ctx, r, sn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := loaded.Source.Database("main"); d == nil || d.Engine != "postgres" {
		t.Errorf("Commit's databases not saved: %+v", loaded.Source)
	}

	// Again with the first as parent: the media files are not read again,
	// and the two dumps, equal to the parent's, count as unmodified too.
	sn2, err := archiver.New(r, archiver.Options{Parent: sn}).Backup(ctx, items, archiver.Meta{Host: "h", Paths: []string{media}})
	if err != nil {
		t.Fatal(err)
	}
	if s := sn2.Summary; s.FilesUnmodified != 4 || s.FilesNew != 0 || s.FilesChanged != 0 {
		t.Errorf("second backup: %d new, %d changed, %d unmodified, want 0, 0, 4", s.FilesNew, s.FilesChanged, s.FilesUnmodified)
	}
}

// A stream that fails (Close reports a failed dump tool), an Open that
// fails, and a failing Commit leave no snapshot; streams after a failed
// one are never opened.
func TestBackupItemsFailures(t *testing.T) {
	r := newRepo(t)
	ctx := context.Background()
	toolErr := errors.New("pg_dump failed (exit status 1): connection lost")
	for _, tc := range []struct {
		name   string
		first  func(context.Context) (io.ReadCloser, error)
		commit func(*snapshot.Snapshot) error
		want   string
	}{
		{"close fails", func(context.Context) (io.ReadCloser, error) {
			var closed bool
			return stream{Reader: strings.NewReader("partial"), closeErr: toolErr, closed: &closed}, nil
		}, nil, "connection lost"},
		{"open fails", func(context.Context) (io.ReadCloser, error) { return nil, toolErr }, nil, "connection lost"},
		{"read fails", func(context.Context) (io.ReadCloser, error) {
			var closed bool
			return stream{Reader: io.MultiReader(strings.NewReader("x"), errReader{}), closed: &closed}, nil
		}, nil, "disk on fire"},
		{"commit fails", func(context.Context) (io.ReadCloser, error) {
			var closed bool
			return stream{Reader: strings.NewReader("fine"), closed: &closed}, nil
		}, func(*snapshot.Snapshot) error { return toolErr }, "connection lost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opened, closed bool
			items := []archiver.Item{
				{Name: "db/a.sql", Open: tc.first},
				{Name: "db/b.sql", Open: opener([]byte("later"), nil, &opened, &closed)},
			}
			_, err := archiver.New(r, archiver.Options{}).Backup(ctx, items, archiver.Meta{Commit: tc.commit})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if tc.commit == nil && opened {
				t.Error("the stream after the failed one was opened")
			}
			sns, _, err := snapshot.List(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if len(sns) != 0 {
				t.Errorf("%d snapshots saved", len(sns))
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestBackupItemsNames(t *testing.T) {
	r := newRepo(t)
	open := func(context.Context) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x")), nil }
	for _, items := range [][]archiver.Item{
		{},
		{{Name: "a", Open: open}, {Name: "a", Open: open}},
		{{Name: "db", Open: open}, {Name: "db/x", Open: open}},
		{{Name: "db/../x", Open: open}},
		{{Name: "/abs", Open: open}},
		{{Name: "x", Path: "relative"}},
		{{Name: "x"}},
	} {
		if _, err := archiver.New(r, archiver.Options{}).Backup(context.Background(), items, archiver.Meta{}); err == nil {
			t.Errorf("items %+v: no error", items)
		}
	}
}
