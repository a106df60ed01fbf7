package main

// End-to-end tests of the row-count fingerprint: recorded by db backup,
// compared by db verify, against the real PostgreSQL, MariaDB and SQLite.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/dump/dumptest"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/snapshot"
)

// forgeSnapshot stores a copy of snapshot ref (a new snapshot, since names
// are content hashes) whose database records edit changed, as anyone with
// the repository's password could, and returns its ID.
func forgeSnapshot(t *testing.T, e *env, ref string, edit func(*snapshot.DatabaseInfo)) string {
	t.Helper()
	ctx := context.Background()
	be, err := registry(slog.New(slog.DiscardHandler)).Open(ctx, e.repo)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := os.ReadFile(e.pwFile)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, be, repo.Options{Passphrase: bytes.TrimSpace(pw)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sn, err := snapshot.Find(ctx, r, ref, snapshot.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	forged := *sn
	forged.Source.Databases = append([]snapshot.DatabaseInfo(nil), sn.Source.Databases...)
	for i := range forged.Source.Databases {
		edit(&forged.Source.Databases[i])
	}
	b, err := json.Marshal(&forged)
	if err != nil {
		t.Fatal(err)
	}
	name, err := r.SaveUnpacked(ctx, backends.SnapshotFile, b)
	if err != nil {
		t.Fatal(err)
	}
	return name.String()
}

// TestE2EDBFingerprint: db backup records each table's row count as the
// dump passed (pg_dump's custom and plain formats, mariadb-dump), with tricky names
// and data; db verify compares the restored database with it, not with
// the live database, which may have changed since; a snapshot whose
// fingerprint disagrees with its dump fails the drill (exit 19) naming the
// table; and snapshots without a fingerprint (made before it existed, or
// of a format with no counter: an SQLite file) still verify, saying so.
func TestE2EDBFingerprint(t *testing.T) {
	t.Parallel()
	dumptest.Drills(t)
	pg := dumptest.Postgres(t)
	my := dumptest.MySQL(t)
	e := newEnv(t)
	dir := t.TempDir()
	_, pgURL := dumptest.NewPostgresDB(t, pg)
	dumptest.PSQL(t, pgURL, `CREATE SCHEMA "Odd; Schema";
CREATE TABLE "Odd; Schema"."Or""ders (x)" (id int, t text, b bytea);
INSERT INTO "Odd; Schema"."Or""ders (x)" SELECT i, E'a\nb;c''d(\\.\n\\.', '\x5c2e0a00'::bytea FROM generate_series(1, 300) i;
CREATE TABLE users AS SELECT i AS id, md5(i::text) AS name FROM generate_series(1, 2000) i;
CREATE TABLE empty (id int);`)
	myName, myURL := dumptest.NewMySQLDB(t, my)
	dumptest.MySQLExec(t, my, myName, "CREATE TABLE users (id INT PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1,'a\\'),(\\n'),(2,'b;\\\\'),(3,'c');"+
		"CREATE TABLE `or``ders` (id INT PRIMARY KEY, b BLOB); INSERT INTO `or``ders` VALUES (1, 0x00272829),(2, NULL); CREATE TABLE empty (id INT);")
	lite := filepath.Join(dir, "app.db")
	sqliteRun(t, lite, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1,'a'),(2,'b');"+
		`CREATE TABLE "or""ders" (id PRIMARY KEY, b) WITHOUT ROWID; INSERT INTO "or""ders" VALUES (1, x'00272829'), (2, NULL);`)
	e.writeConfig(fmt.Sprintf(`
[databases.pg]
url = %q
dump_args = ["--format=plain"]
[databases.pgcustom]
url = %q
[databases.my]
url = %q
[databases.lite]
path = %q
temp_dir = %q
`, pgURL, pgURL, myURL, lite, dir))
	var backup struct {
		ID        string
		Databases []snapshot.DatabaseInfo
	}
	e.mustRunJSON(&backup, "db", "backup", "pg", "pgcustom", "my", "lite")
	want := map[string]map[string]int64{
		"pg": {`Odd; Schema.Or"ders (x)`: 300, "public.users": 2000, "public.empty": 0},
		"my": {"users": 3, "or`ders": 2, "empty": 0},
	}
	want["pgcustom"] = want["pg"]
	want["lite"] = map[string]int64{"users": 2, `or"ders`: 2} // counted in the VACUUM INTO copy
	for _, d := range backup.Databases {
		switch w := want[d.Name]; {
		case w == nil && d.Fingerprint != nil:
			t.Errorf("%s (%s): a fingerprint of a format with no counter: %+v", d.Name, d.Format, d.Fingerprint)
		case w != nil && (d.Fingerprint == nil || fmt.Sprint(d.Fingerprint.Rows) != fmt.Sprint(w)):
			t.Errorf("%s: fingerprint %+v, want rows %v", d.Name, d.Fingerprint, w)
		}
	}

	verify := func(e *env, db string, args ...string) verifyResult {
		var res verifyResult
		e.mustRunJSON(&res, append([]string{"db", "verify", db}, args...)...)
		return res
	}
	// An old snapshot: the same, without the fingerprint.
	old := forgeSnapshot(t, e, backup.ID, func(d *snapshot.DatabaseInfo) { d.Fingerprint = nil })
	for _, db := range []string{"pg", "pgcustom", "my", "lite"} {
		_, stderr, code := e.run("db", "verify", db, old)
		if code != 0 || !strings.Contains(stderr, "no fingerprint") {
			t.Errorf("%s, snapshot without a fingerprint: exit %d\n%s", db, code, stderr)
		}
	}

	// The live databases change: the drill still compares with what the
	// dump held.
	dumptest.PSQL(t, pgURL, "INSERT INTO users VALUES (9999, 'new'); DELETE FROM \"Odd; Schema\".\"Or\"\"ders (x)\" WHERE id < 10")
	dumptest.MySQLExec(t, my, myName, "INSERT INTO users VALUES (9, 'new')")
	sqliteRun(t, lite, "INSERT INTO users VALUES (3, 'new')")
	for _, db := range []string{"pg", "pgcustom", "my", "lite"} {
		res := verify(e, db, backup.ID)
		if res.Expected != "fingerprint" {
			t.Errorf("%s: expected counts from %q", db, res.Expected)
		}
		if !res.Passed || len(res.Tables) < 2 {
			t.Errorf("%s: %+v", db, res)
		}
		for _, tb := range res.Tables {
			if w, ok := want[db][tb.Name]; ok && (tb.Expected != w || tb.Restored != w || !tb.OK) {
				t.Errorf("%s: table %+v, want %d rows", db, tb, w)
			}
		}
	}

	// A snapshot whose fingerprint says more rows than its dump holds (as
	// if rows were lost after they were counted): the drill fails, naming
	// the table, in text and in JSON.
	forged := forgeSnapshot(t, e, backup.ID, func(d *snapshot.DatabaseInfo) {
		if d.Fingerprint != nil {
			for n := range d.Fingerprint.Rows {
				if strings.Contains(n, "ders") {
					d.Fingerprint.Rows[n] += 7
				}
			}
		}
	})
	for db, table := range map[string]string{"pg": `Odd; Schema.Or"ders (x)`, "pgcustom": `Odd; Schema.Or"ders (x)`, "my": "or`ders", "lite": `or"ders`} {
		stderr := e.mustFail(exitDrill, "db", "verify", db, forged)
		n := want[db][table]
		if !strings.Contains(stderr, fmt.Sprintf("table %s: expected %d rows, restored %d", table, n+7, n)) ||
			!strings.Contains(stderr, "fingerprint recorded at backup time") {
			t.Errorf("%s: stderr:\n%s", db, stderr)
		}
		stdout, _, code := e.run("--json", "db", "verify", db, forged)
		var res verifyResult
		if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != exitDrill || res.Passed {
			t.Fatalf("%s --json: exit %d, %v: %s", db, code, err, stdout)
		}
		bad := 0
		for _, tb := range res.Tables {
			if !tb.OK {
				bad++
				if tb.Name != table || tb.Expected != n+7 || tb.Restored != n {
					t.Errorf("%s: failing table %+v", db, tb)
				}
			}
		}
		if bad != 1 {
			t.Errorf("%s: %d failing tables: %+v", db, bad, res.Tables)
		}
	}
}
