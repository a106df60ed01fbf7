package database_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoard-backup/hoard/database"
	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/dump/drill"
	"github.com/hoard-backup/hoard/dump/dumptest"
	"github.com/hoard-backup/hoard/dump/mysql"
	"github.com/hoard-backup/hoard/dump/postgres"
	"github.com/hoard-backup/hoard/snapshot"
)

// noScratch fails the test if a scratch SQLite file is left in dir.
func noScratch(t *testing.T, dir string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(dir, dump.ScratchPrefix+"*"))
	if len(left) > 0 {
		t.Errorf("scratch files left: %v", left)
	}
}

// A drill of a good SQLite snapshot passes with every table counted; a
// drill of the same snapshot with its dump's blob damaged fails (it could
// not restore) and leaves no scratch file either way.
func TestDrillSQLite(t *testing.T) {
	dumptest.Drills(t)
	r, be := newRepo(t)
	dir := t.TempDir()
	_, main := newSQLite(t, dir, "main", 20000)
	sn := backup(t, r, snapshot.KindDatabase, nil, database.Database{Name: "main", Engine: main})
	d, err := database.RunDrill(context.Background(), r, main, "main", sn, database.DrillOptions{TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Passed || d.Failed() || len(d.Checks) == 0 || len(d.Tables) != 1 || d.Tables[0].Restored != 20000 || !d.ScratchGone {
		t.Errorf("good snapshot: %+v", d)
	}
	noScratch(t, dir)

	damageDump(t, r, be, sn, "main")
	r2 := reopen(t, be)
	d, err = database.RunDrill(context.Background(), r2, main, "main", sn, database.DrillOptions{TempDir: dir})
	if err == nil || d.Passed {
		t.Errorf("damaged dump: passed %v, error %v; want a failed restore", d.Passed, err)
	}
	noScratch(t, dir)
	// As one of several, the failure is reported, not returned.
	// A target whose engine could not be made fails with why.
	drills := database.DrillSnapshot(context.Background(), r2, sn, []database.DrillTarget{{Name: "main", Engine: main, TempDir: dir},
		{Name: "main", Err: errors.New("the URL's secret cannot be read")}}, drill.StaleAfter, nil)
	if len(drills) != 2 || !drills[0].Failed() || drills[0].Error == "" {
		t.Fatalf("DrillSnapshot of a damaged dump: %+v", drills)
	}
	if d := drills[1]; !d.Failed() || d.Error != "the URL's secret cannot be read" {
		t.Errorf("a target without an engine: %+v", d)
	}
}

// DrillLatest drills the latest snapshot of each target, PostgreSQL,
// MariaDB and SQLite: they pass, also the one whose live rows changed since
// (compared with the fingerprint recorded at backup time), a target no
// snapshot holds fails, and a database of the repository that is not a
// target is skipped.
func TestDrillLatest(t *testing.T) {
	dumptest.Drills(t)
	pgAdmin := dumptest.Postgres(t)
	myAdmin := dumptest.MySQL(t)
	r, _ := newRepo(t)
	dir := t.TempDir()
	ctx := context.Background()

	_, pgURL := dumptest.NewPostgresDB(t, pgAdmin)
	dumptest.PSQL(t, pgURL, `CREATE TABLE users AS SELECT i AS id, md5(i::text) AS name FROM generate_series(1, 3000) i;`)
	pg, err := postgres.New(postgres.Config{URL: pgURL, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	myName, myURL := dumptest.NewMySQLDB(t, myAdmin)
	dumptest.MySQLExec(t, myAdmin, myName, "CREATE TABLE users (id INT PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1,'a'),(2,'b'),(3,'c');")
	my, err := mysql.New(mysql.Config{URL: myURL, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	litePath, lite := newSQLite(t, dir, "lite", 50)
	_, gone := newSQLite(t, dir, "gone", 5)

	// gone's snapshot is older; the others' newest is the second.
	backup(t, r, snapshot.KindDatabase, nil, database.Database{Name: "gone", Engine: gone}, database.Database{Name: "pg", Engine: pg})
	sn := backup(t, r, snapshot.KindDatabase, nil, database.Database{Name: "pg", Engine: pg},
		database.Database{Name: "my", Engine: my}, database.Database{Name: "lite", Engine: lite})
	// Since the backup, the live SQLite database lost rows: its drill
	// compares with the fingerprint and passes.
	sqlite3(t, litePath, "DELETE FROM items WHERE id <= 10")

	_, never := newSQLite(t, dir, "never", 1)
	targets := []database.DrillTarget{{Name: "pg", Engine: pg}, {Name: "my", Engine: my}, {Name: "lite", Engine: lite, TempDir: dir},
		{Name: "never", Engine: never, TempDir: dir}}
	drills, err := database.DrillLatest(ctx, r, targets, drill.StaleAfter, nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*database.Drill{}
	for _, d := range drills {
		byName[d.Database] = d
	}
	if len(drills) != 5 {
		t.Errorf("%d drills, want 5: %+v", len(drills), drills)
	}
	for _, name := range []string{"pg", "my"} {
		d := byName[name]
		if d == nil || !d.Passed || d.Failed() || d.Snapshot != sn.ID.String() || len(d.Tables) != 1 || !d.ScratchGone {
			t.Errorf("%s: %+v, want passed on snapshot %s", name, d, sn.ID.Str())
		}
	}
	if d := byName["pg"]; d != nil && (d.Engine != dump.Postgres || d.Tables[0].Restored != 3000) {
		t.Errorf("pg: engine %s, tables %+v", d.Engine, d.Tables)
	}
	if d := byName["lite"]; d == nil || !d.Passed || d.Failed() || d.Expected != "fingerprint" || len(d.Tables) != 1 || d.Tables[0].Restored != 50 {
		t.Errorf("lite, live rows deleted since: %+v, want passed with the 50 rows of the fingerprint", d)
	}
	if d := byName["never"]; d == nil || !d.Failed() || !strings.Contains(d.Error, "no snapshot holds database never") {
		t.Errorf("never backed up: %+v", d)
	}
	if d := byName["gone"]; d == nil || d.Failed() || d.Skipped == "" || d.Engine != dump.SQLite {
		t.Errorf("not a target: %+v, want skipped", d)
	}
	// No scratch database of these drills is left on the servers (other
	// tests may drill on them at the same time).
	for _, c := range []struct {
		ck dump.Checker
		d  *database.Drill
	}{{pg, byName["pg"]}, {my, byName["my"]}} {
		left, err := c.ck.Scratch(ctx, dump.ScratchPrefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range left {
			if c.d != nil && l == c.d.Scratch {
				t.Errorf("scratch database %s left", l)
			}
		}
	}
	noScratch(t, dir)
}

// An SQLite backup records the rows of every table of its copy as its
// fingerprint (hostile names, empty and WITHOUT ROWID tables; SQLite's own
// tables left out), and the drill compares the restored database with it,
// not with the live file: a row added since does not fail the drill, a
// fingerprint that disagrees with the dump does.
func TestDrillSQLiteFingerprint(t *testing.T) {
	dumptest.Drills(t)
	r, _ := newRepo(t)
	dir := t.TempDir()
	p, main := newSQLite(t, dir, "main", 500)
	sqlite3(t, p, `PRAGMA journal_mode = WAL;
CREATE TABLE "Or""ders; (x)" (id INTEGER PRIMARY KEY AUTOINCREMENT, t TEXT);
INSERT INTO "Or""ders; (x)"(t) VALUES ('a'), ('b'), ('c');
CREATE TABLE "ünï cödé
line" (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
INSERT INTO "ünï cödé
line" VALUES ('x', 1), ('y', 2);
CREATE TABLE "empty 'one'" (a);
CREATE TABLE "table|74" (a);
INSERT INTO "table|74" VALUES (1);
ANALYZE;`)
	want := map[string]int64{"items": 500, `Or"ders; (x)`: 3, "ünï cödé\nline": 2, "empty 'one'": 0, "table|74": 1}
	sn := backup(t, r, snapshot.KindDatabase, nil, database.Database{Name: "main", Engine: main})
	rec := sn.Source.Database("main")
	if rec == nil || rec.Fingerprint == nil || !maps.Equal(rec.Fingerprint.Rows, want) {
		t.Fatalf("fingerprint %+v, want rows %v", rec.Fingerprint, want)
	}

	sqlite3(t, p, `INSERT INTO items(name) VALUES ('added after the backup'); DELETE FROM "table|74";`)
	d, err := database.RunDrill(context.Background(), r, main, "main", sn, database.DrillOptions{TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Passed || d.Expected != "fingerprint" || len(d.Tables) != len(want) {
		t.Errorf("live rows changed since the backup: %+v", d)
	}
	for _, tb := range d.Tables {
		if !tb.OK || tb.Expected != want[tb.Name] || tb.Restored != want[tb.Name] {
			t.Errorf("table %q: %+v, want %d rows", tb.Name, tb, want[tb.Name])
		}
	}
	noScratch(t, dir)

	forged := *sn
	forged.Source.Databases = []snapshot.DatabaseInfo{*rec}
	forged.Source.Databases[0].Fingerprint = &dump.Fingerprint{Rows: maps.Clone(want)}
	forged.Source.Databases[0].Fingerprint.Rows[`Or"ders; (x)`] += 7
	d, err = database.RunDrill(context.Background(), r, main, "main", &forged, database.DrillOptions{TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if d.Passed || d.Expected != "fingerprint" || !strings.Contains(strings.Join(d.Failures, "\n"), `Or"ders; (x)`) {
		t.Errorf("forged fingerprint: %+v", d)
	}
	noScratch(t, dir)
}
