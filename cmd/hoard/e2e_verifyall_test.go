package main

// End-to-end tests of the restore drills of hoard run (verify_after_run)
// and of db verify --latest-per-database, against the real PostgreSQL and
// SQLite.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoard-backup/hoard/dump/dumptest"
	"github.com/hoard-backup/hoard/snapshot"
)

type drillsResult struct {
	ID     string `json:"id"`
	Verify []struct {
		Database string
		Snapshot string
		Passed   bool
		Failures []string
		Error    string
		Skipped  string
	} `json:"verify"`
	Drills []struct {
		Database string
		Snapshot string
		Passed   bool
		Failures []string
		Error    string
		Skipped  string
	} `json:"drills"`
}

// hoard run drills the databases marked verify_after_run, and only those:
// a good dump passes; a dump missing a table's rows (a tampered dump tool)
// fails the run with exit 19 after the snapshot is saved, and [retention]
// is not applied then.
func TestE2ERunVerifyAfterRun(t *testing.T) {
	t.Parallel()
	dumptest.Drills(t)
	pg := dumptest.Postgres(t)
	e := newEnv(t)
	dir := t.TempDir()
	_, pgURL := dumptest.NewPostgresDB(t, pg)
	dumptest.PSQL(t, pgURL, `CREATE TABLE users AS SELECT i AS id FROM generate_series(1, 500) i;
CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT i FROM generate_series(1, 30) i;`)
	lite := filepath.Join(dir, "app.db")
	sqliteRun(t, lite, "CREATE TABLE users (id INTEGER PRIMARY KEY); INSERT INTO users VALUES (1),(2),(3);")
	other := filepath.Join(dir, "other.db")
	sqliteRun(t, other, "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
	// The dump's row counts are recorded as it passes (a fingerprint), so
	// a dump that leaves rows out restores to what it recorded: this tool
	// adds a row that the restore ignores (a duplicate key), which the
	// fingerprint counts and the restored table lacks.
	badPG := writeTool(t, dir, "pg_dump_bad", `case "$1" in --version) exec pg_dump --version;; esac
pg_dump "$@" || exit $?
echo 'INSERT INTO public.orders VALUES (1) ON CONFLICT DO NOTHING;'
`)
	conf := `
[databases.pg]
url = %q
verify_after_run = true
%s
[databases.lite]
path = %q
temp_dir = %q
verify_after_run = true

[databases.other]
path = %q

[retention]
keep_last = 1
`
	e.writeConfig(fmt.Sprintf(conf, pgURL, "", lite, dir, other))
	var res drillsResult
	e.mustRunJSON(&res, "run")
	if len(res.Verify) != 2 {
		t.Fatalf("drills %+v, want pg and lite (other is not marked)", res.Verify)
	}
	for _, d := range res.Verify {
		if !d.Passed || d.Snapshot != res.ID || d.Error != "" {
			t.Errorf("drill of %s: %+v, want passed on snapshot %s", d.Database, d, res.ID)
		}
	}
	out := e.mustRun("run")
	if !strings.Contains(out, "restore drill of pg (postgres) from snapshot") || !strings.Contains(out, "restore drill of lite (sqlite)") ||
		strings.Contains(out, "restore drill of other") {
		t.Errorf("text output:\n%s", out)
	}
	if n := len(e.snapshotIDs()); n != 1 {
		t.Errorf("%d snapshots, want 1 (keep_last = 1)", n)
	}

	// A dump that does not restore to what it holds: the snapshot is saved, the
	// drill fails, the run exits 19, and retention keeps the older
	// snapshots.
	e.writeConfig(fmt.Sprintf(conf, pgURL, fmt.Sprintf("dump_command = %q\ndump_args = [\"--format=plain\"]", badPG), lite, dir, other))
	stdout, stderr, code := e.run("--json", "run")
	if code != exitDrill {
		t.Fatalf("run with a bad dump: exit %d, want %d\n%s", code, exitDrill, stderr)
	}
	res = drillsResult{}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	var failed bool
	for _, d := range res.Verify {
		if d.Database == "pg" {
			failed = !d.Passed && len(d.Failures) == 1 && strings.Contains(d.Failures[0], "orders")
		} else if !d.Passed {
			t.Errorf("%s: %+v", d.Database, d)
		}
	}
	if !failed {
		t.Errorf("pg's drill: %+v, want failed on orders", res.Verify)
	}
	if !strings.Contains(stderr, "restore drill failed for pg") || !strings.Contains(stderr, "[retention] was not applied") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if ids := e.snapshotIDs(); len(ids) != 2 || ids[1] != res.ID {
		t.Errorf("snapshots %v, want the kept one and %s", ids, res.ID)
	}
}

// db verify --latest-per-database drills the newest snapshot of each
// configured database: all pass at first, and still after rows are deleted
// from the live SQLite database (its fingerprint is compared); when its
// latest snapshot's fingerprint disagrees with its dump it fails with exit
// 19 and names it, while the others still pass; a database only the
// repository knows is skipped.
func TestE2EDBVerifyLatestPerDatabase(t *testing.T) {
	t.Parallel()
	dumptest.Drills(t)
	pg := dumptest.Postgres(t)
	e := newEnv(t)
	dir := t.TempDir()
	_, pgURL := dumptest.NewPostgresDB(t, pg)
	dumptest.PSQL(t, pgURL, `CREATE TABLE users AS SELECT i AS id FROM generate_series(1, 200) i;`)
	lite := filepath.Join(dir, "app.db")
	sqliteRun(t, lite, "CREATE TABLE users (id INTEGER PRIMARY KEY); INSERT INTO users VALUES (1),(2),(3);")
	old := filepath.Join(dir, "old.db")
	sqliteRun(t, old, "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
	e.writeConfig(fmt.Sprintf(`
[databases.pg]
url = %q
[databases.lite]
path = %q
temp_dir = %q
[databases.old]
path = %q
`, pgURL, lite, dir, old))
	e.mustRun("db", "backup", "old")
	e.mustRun("db", "backup", "pg", "lite")
	e.mustRun("db", "backup", "lite")
	ids := e.snapshotIDs()
	if len(ids) != 3 {
		t.Fatalf("snapshots %v", ids)
	}
	// old is no longer configured.
	e.writeConfig(fmt.Sprintf(`
[databases.pg]
url = %q
[databases.lite]
path = %q
temp_dir = %q
`, pgURL, lite, dir))

	var res drillsResult
	e.mustRunJSON(&res, "db", "verify", "--latest-per-database")
	want := map[string]string{"pg": ids[1], "lite": ids[2], "old": ids[0]}
	if len(res.Drills) != 3 {
		t.Fatalf("drills %+v", res.Drills)
	}
	for _, d := range res.Drills {
		if d.Snapshot != want[d.Database] {
			t.Errorf("%s drilled on %s, want %s (its latest)", d.Database, d.Snapshot, want[d.Database])
		}
		switch d.Database {
		case "old":
			if d.Passed || d.Skipped == "" {
				t.Errorf("old, not configured: %+v, want skipped", d)
			}
		default:
			if !d.Passed || d.Error != "" {
				t.Errorf("%s: %+v, want passed", d.Database, d)
			}
		}
	}

	sqliteRun(t, lite, "DELETE FROM users WHERE id = 1;")
	e.mustRun("db", "verify", "--latest-per-database")
	forged := forgeSnapshot(t, e, ids[2], func(d *snapshot.DatabaseInfo) {
		if d.Fingerprint != nil {
			d.Fingerprint.Rows["users"] += 7
		}
	})
	e.mustRun("forget", ids[2])
	stdout, stderr, code := e.run("db", "verify", "--latest-per-database")
	if code != exitDrill {
		t.Fatalf("exit %d, want %d\n%s", code, exitDrill, stderr)
	}
	if !strings.Contains(stdout, "restore drill of pg (postgres) from snapshot "+ids[1][:8]+" passed") ||
		!strings.Contains(stdout, "restore drill of lite (sqlite) from snapshot "+forged[:8]+" failed") ||
		!strings.Contains(stdout, "restore drill of old skipped") || !strings.Contains(stderr, "restore drill failed for lite") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "hoard_verify_*"))
	if len(left) > 0 {
		t.Errorf("scratch files left: %v", left)
	}
	if _, err := os.Stat(lite); err != nil {
		t.Error(err)
	}
	e.mustFail(exitUsage, "db", "verify", "--latest-per-database", "pg")

	// A configured database whose URL cannot be read fails, once, and is
	// not also listed as a database the config does not name.
	e.writeConfig(fmt.Sprintf(`
[databases.pg]
url = %q
[databases.old]
engine = "postgres"
url_env = "HOARD_TEST_UNSET_URL"
`, pgURL))
	stdout, stderr, code = e.run("--json", "db", "verify", "--latest-per-database")
	if code != exitDrill {
		t.Fatalf("exit %d, want %d\n%s", code, exitDrill, stderr)
	}
	res = drillsResult{}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	var olds int
	for _, d := range res.Drills {
		if d.Database == "old" {
			olds++
			if d.Passed || d.Skipped != "" || !strings.Contains(d.Error, "HOARD_TEST_UNSET_URL") {
				t.Errorf("old, its URL unreadable: %+v", d)
			}
		}
	}
	if olds != 1 || len(res.Drills) != 3 {
		t.Errorf("drills %+v, want pg, old (failed, once) and lite (skipped)", res.Drills)
	}
}
