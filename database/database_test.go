package database_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/config"
	"github.com/hoard-backup/hoard/database"
	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/dump/sqlite"
	"github.com/hoard-backup/hoard/internal/testenv"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/pack"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/archiver"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

var passphrase = []byte("database test")

func newRepo(t *testing.T) (*repo.Repository, backends.Backend) {
	t.Helper()
	be := mem.New()
	r, err := repo.Init(context.Background(), be, repo.InitOptions{
		Options: repo.Options{Passphrase: passphrase}, S2K: crypto.S2KIterated})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, be
}

// reopen opens the repository in be again, with nothing cached from
// earlier reads.
func reopen(t *testing.T, be backends.Backend) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), be, repo.Options{Passphrase: passphrase})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// sqlite3 runs SQL on the SQLite file db with the sqlite3 tool.
func sqlite3(t *testing.T, db, sql string) string {
	t.Helper()
	out, err := exec.Command("sqlite3", "-batch", db, sql).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %s: %v: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// newSQLite makes an SQLite database of rows rows and its engine.
func newSQLite(t *testing.T, dir, name string, rows int) (string, *sqlite.SQLite) {
	t.Helper()
	testenv.NeedPrograms(t, "sqlite3")
	p := filepath.Join(dir, name+".sqlite3")
	sqlite3(t, p, `CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < `+strconv.Itoa(rows)+`)
INSERT INTO items(name) SELECT '`+name+` item ' || i FROM n;`)
	eng, err := sqlite.New(sqlite.Config{Path: p, TempDir: dir, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	return p, eng
}

func backup(t *testing.T, r *repo.Repository, kind string, media []*config.Media, dbs ...database.Database) *snapshot.Snapshot {
	t.Helper()
	sn, err := database.Backup(context.Background(), r, database.BackupOptions{Kind: kind, Databases: dbs, Media: media,
		Meta: archiver.Meta{Host: "web1"}})
	if err != nil {
		t.Fatal(err)
	}
	return sn
}

// Every field dump.Info has reaches the snapshot's record and comes back
// from it: a field added to both types but not to the copy fails here.
func TestRecordCopiesEveryField(t *testing.T) {
	var in dump.Info
	v := reflect.ValueOf(&in).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("value of " + v.Type().Field(i).Name)
		case reflect.Slice:
			s := reflect.MakeSlice(f.Type(), 1, 1)
			fillValue(t, s.Index(0), v.Type().Field(i).Name)
			f.Set(s)
		case reflect.Map:
			m := reflect.MakeMap(f.Type())
			k, e := reflect.New(f.Type().Key()).Elem(), reflect.New(f.Type().Elem()).Elem()
			fillValue(t, k, "key")
			fillValue(t, e, v.Type().Field(i).Name)
			m.SetMapIndex(k, e)
			f.Set(m)
		default:
			fillValue(t, f, v.Type().Field(i).Name)
		}
	}
	rec := database.Record("main", "/db/main.pgdump", in)
	if rec.Name != "main" || rec.Path != "/db/main.pgdump" {
		t.Errorf("record: name %q, path %q", rec.Name, rec.Path)
	}
	rv := reflect.ValueOf(rec)
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Name
		rf := rv.FieldByName(name)
		if !rf.IsValid() {
			t.Errorf("snapshot.DatabaseInfo has no field %s (dump.Info has)", name)
			continue
		}
		if !reflect.DeepEqual(rf.Interface(), v.Field(i).Interface()) {
			t.Errorf("Record: %s = %v, want %v", name, rf.Interface(), v.Field(i).Interface())
		}
	}
	if back := database.DumpInfo(&rec); !reflect.DeepEqual(back, in) {
		t.Errorf("DumpInfo(Record(in)) = %+v, want %+v", back, in)
	}
}

// fillValue sets v to a non-zero value.
func fillValue(t *testing.T, v reflect.Value, s string) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(len(s)) + 1)
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		v.SetUint(uint64(len(s)) + 1)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillValue(t, k, "key")
		fillValue(t, e, s)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Slice:
		sl := reflect.MakeSlice(v.Type(), 1, 1)
		fillValue(t, sl.Index(0), s)
		v.Set(sl)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fillValue(t, v.Field(i), s)
			}
		}
	default:
		t.Fatalf("dump.Info: cannot fill a %s", v.Kind())
	}
}

func TestParent(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	mk := func(day int, host, kind string, paths []string, dbs ...string) *snapshot.Snapshot {
		sn := &snapshot.Snapshot{Time: t0.AddDate(0, 0, day), Host: host, Paths: paths, Source: snapshot.Source{Kind: kind}}
		for _, d := range dbs {
			sn.Source.Databases = append(sn.Source.Databases, snapshot.DatabaseInfo{Name: d})
		}
		return sn
	}
	media := []string{"/srv/media"}
	sns := []*snapshot.Snapshot{
		mk(0, "web1", snapshot.KindDatabase, nil, "main", "shop"), // 0
		mk(1, "web1", snapshot.KindDatabase, nil, "main"),         // 1
		mk(2, "web1", snapshot.KindStdin, nil),                    // 2
		mk(3, "web2", snapshot.KindDatabase, nil, "main", "shop"), // 3
		mk(4, "web1", snapshot.KindRun, media, "main", "shop"),    // 4
		mk(5, "web1", snapshot.KindDatabase, nil, "shop"),         // 5
	}
	for _, tc := range []struct {
		name  string
		host  string
		paths []string
		dbs   []string
		want  int // index in sns, -1 for none
	}{
		{"one database: newest holding it", "web1", nil, []string{"main"}, 4},
		{"two: newest holding most", "web1", nil, []string{"main", "shop"}, 4},
		{"the other one", "web1", nil, []string{"shop"}, 5},
		{"unknown database", "web1", nil, []string{"blog"}, -1},
		{"other host", "web2", nil, []string{"shop"}, 3},
		{"no snapshot of that host", "web3", nil, []string{"main"}, -1},
		{"media paths must match", "web1", []string{"/other"}, []string{"main"}, -1},
		{"media without databases", "web1", media, nil, 4},
	} {
		var want *snapshot.Snapshot
		if tc.want >= 0 {
			want = sns[tc.want]
		}
		if got := database.Parent(sns, tc.host, tc.paths, tc.dbs); got != want {
			t.Errorf("%s: got %v, want %v", tc.name, got, want)
		}
	}
}

// A backup of two databases, then of each alone: each snapshot records
// its databases, and the parent of each is the newest snapshot holding
// that database, so an unchanged dump is recognised as unmodified.
func TestBackupParentPerDatabase(t *testing.T) {
	r, _ := newRepo(t)
	dir := t.TempDir()
	_, main := newSQLite(t, dir, "main", 2000)
	_, shop := newSQLite(t, dir, "shop", 3000)
	both := backup(t, r, snapshot.KindDatabase, nil, database.Database{Name: "main", Engine: main}, database.Database{Name: "shop", Engine: shop})
	if both.Source.Kind != snapshot.KindDatabase || len(both.Source.Databases) != 2 {
		t.Fatalf("source %+v", both.Source)
	}
	for _, d := range both.Source.Databases {
		if d.Engine != dump.SQLite || d.Format != "sqlite" || d.Path != "/db/"+d.Name+".sqlite" || d.ServerVersion == "" {
			t.Errorf("record of %s: %+v", d.Name, d)
		}
	}
	shopOnly := backup(t, r, snapshot.KindDatabase, nil, database.Database{Name: "shop", Engine: shop})
	if shopOnly.Parent == nil || *shopOnly.Parent != both.ID {
		t.Errorf("shop alone: parent %v, want %s", shopOnly.Parent, both.ID.Str())
	}
	if s := shopOnly.Summary; s.FilesUnmodified != 1 {
		t.Errorf("shop alone, unchanged: %d unmodified, want 1", s.FilesUnmodified)
	}
	// main's newest snapshot is still the first: shopOnly holds no main.
	mainOnly := backup(t, r, snapshot.KindDatabase, nil, database.Database{Name: "main", Engine: main})
	if mainOnly.Parent == nil || *mainOnly.Parent != both.ID {
		t.Errorf("main alone: parent %v, want %s (the newest that holds main)", mainOnly.Parent, both.ID.Str())
	}
	// A database no snapshot holds has no parent.
	_, blog := newSQLite(t, dir, "blog", 10)
	if sn := backup(t, r, snapshot.KindDatabase, nil, database.Database{Name: "blog", Engine: blog}); sn.Parent != nil {
		t.Errorf("blog: parent %v, want none", sn.Parent)
	}
}

// A run with a media tree records it below media/NAME and the databases
// beside it, with the run's kind.
func TestBackupRunWithMedia(t *testing.T) {
	r, _ := newRepo(t)
	dir := t.TempDir()
	_, main := newSQLite(t, dir, "main", 100)
	tree := filepath.Join(dir, "uploads")
	if err := os.MkdirAll(tree, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "a.jpg"), []byte("jpeg"), 0o600); err != nil {
		t.Fatal(err)
	}
	sn := backup(t, r, snapshot.KindRun, []*config.Media{{Name: "site", Paths: []string{tree}}}, database.Database{Name: "main", Engine: main})
	if sn.Source.Kind != snapshot.KindRun || len(sn.Paths) != 1 || sn.Paths[0] != tree {
		t.Errorf("run: kind %q, paths %v", sn.Source.Kind, sn.Paths)
	}
	n, err := restorer.FindNode(context.Background(), r, sn, "/media/site/uploads/a.jpg")
	if err != nil || n.Size != 4 {
		t.Errorf("media file: %v, %v", n, err)
	}
}

// A failing dump leaves no snapshot and returns the tool's error.
func TestBackupFailedDump(t *testing.T) {
	r, _ := newRepo(t)
	dir := t.TempDir()
	_, main := newSQLite(t, dir, "main", 10)
	bad, err := sqlite.New(sqlite.Config{Path: filepath.Join(dir, "missing.sqlite3"), TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = database.Backup(context.Background(), r, database.BackupOptions{Kind: snapshot.KindDatabase,
		Databases: []database.Database{{Name: "main", Engine: main}, {Name: "gone", Engine: bad}}, Meta: archiver.Meta{Host: "h"}})
	if !errors.Is(err, dump.ErrSource) {
		t.Errorf("missing database: %v, want dump.ErrSource", err)
	}
	if sns, _, err := snapshot.List(context.Background(), r); err != nil || len(sns) != 0 {
		t.Errorf("%d snapshots after a failed dump (%v), want none", len(sns), err)
	}
}

// Restore into another file leaves the original alone and brings back
// the backed-up rows, not the ones written since; a non-empty target
// is refused without Force.
func TestRestoreIntoOtherTarget(t *testing.T) {
	r, _ := newRepo(t)
	dir := t.TempDir()
	live, main := newSQLite(t, dir, "main", 500)
	backup(t, r, snapshot.KindDatabase, nil, database.Database{Name: "main", Engine: main})
	sqlite3(t, live, "DELETE FROM items WHERE id > 100")

	into := filepath.Join(dir, "copy.sqlite3")
	res, err := database.Restore(context.Background(), r, main, "main", "latest", database.RestoreOptions{Into: into})
	if err != nil {
		t.Fatal(err)
	}
	if res.Info.Name != "main" || res.Bytes == 0 {
		t.Errorf("restored %+v", res)
	}
	if n := sqlite3(t, into, "SELECT count(*) FROM items"); n != "500" {
		t.Errorf("target has %s rows, want the snapshot's 500", n)
	}
	if n := sqlite3(t, live, "SELECT count(*) FROM items"); n != "100" {
		t.Errorf("the live database has %s rows, want 100: the restore wrote into it", n)
	}
	_, err = database.Restore(context.Background(), r, main, "main", "latest", database.RestoreOptions{Into: into})
	var refused database.RefusedError
	if !errors.As(err, &refused) || !errors.Is(err, dump.ErrNotEmpty) {
		t.Errorf("restore over a database with data: %v, want a RefusedError of dump.ErrNotEmpty", err)
	}
	if _, err := database.Restore(context.Background(), r, main, "main", "latest", database.RestoreOptions{Into: into, Force: true}); err != nil {
		t.Errorf("with Force: %v", err)
	}
	if _, err := database.Restore(context.Background(), r, main, "shop", "latest", database.RestoreOptions{Into: into}); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("a database no snapshot holds: %v, want snapshot.ErrNotFound", err)
	}
}

// otherEngine is an engine of another name that fails the test if it is
// asked to restore.
type otherEngine struct {
	dump.Engine
	t    *testing.T
	name string
}

func (e otherEngine) Name() string { return e.name }
func (e otherEngine) Restore(context.Context, io.Reader, dump.Target) error {
	e.t.Error("Restore was called for a dump of another engine")
	return nil
}

// The snapshot's engine must be the restoring engine's, and a target URL
// must name the engine's kind of server.
func TestRestoreEngineMismatch(t *testing.T) {
	r, _ := newRepo(t)
	dir := t.TempDir()
	_, main := newSQLite(t, dir, "main", 10)
	backup(t, r, snapshot.KindDatabase, nil, database.Database{Name: "main", Engine: main})
	pg := otherEngine{Engine: main, t: t, name: dump.Postgres}
	_, err := database.Restore(context.Background(), r, pg, "main", "latest", database.RestoreOptions{Into: "scratch"})
	var refused database.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "holds a sqlite dump of main, which cannot be restored into a postgres database") {
		t.Errorf("sqlite dump into postgres: %v", err)
	}
	if err := database.CheckInto(main, "main", "mysql://root@127.0.0.1/x"); !errors.As(err, &refused) {
		t.Errorf("--into a mysql URL for an sqlite database: %v, want a RefusedError", err)
	}
	if err := database.CheckInto(pg, "main", "postgres://u@h/other"); err != nil {
		t.Errorf("--into a postgres URL for a postgres database: %v", err)
	}
	if err := database.CheckInto(pg, "main", "other"); err != nil {
		t.Errorf("--into a name: %v", err)
	}
	_, err = database.Restore(context.Background(), r, pg, "main", "latest", database.RestoreOptions{Into: "mysql://root@127.0.0.1/x"})
	if !errors.As(err, &refused) {
		t.Errorf("Restore --into a mysql URL for a postgres engine: %v", err)
	}
}

// damageDump flips a byte in the middle of the first blob of database
// name's dump in sn, in the pack file that holds it.
func damageDump(t *testing.T, r *repo.Repository, be backends.Backend, sn *snapshot.Snapshot, name string) {
	t.Helper()
	ctx := context.Background()
	n, err := restorer.FindNode(ctx, r, sn, sn.Source.Database(name).Path)
	if err != nil || len(n.Content) == 0 {
		t.Fatalf("dump node: %v, %v", n, err)
	}
	locs := r.Index().Lookup(pack.DataBlob, n.Content[0])
	if len(locs) == 0 {
		t.Fatal("the dump's first blob is in no pack")
	}
	h := backends.Handle{Type: backends.PackFile, Name: locs[0].Pack.ID.String()}
	var buf bytes.Buffer
	if err := be.Load(ctx, h, 0, 0, func(rd io.Reader) error { _, err := buf.ReadFrom(rd); return err }); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	b[locs[0].Offset+locs[0].Length/2] ^= 0x55
	if err := be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := be.Save(ctx, h, backends.NewByteReader(b)); err != nil {
		t.Fatal(err)
	}
}
