package main

// End-to-end tests of the restore drill (db verify) against the real
// PostgreSQL, MariaDB and SQLite.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/dump/dumptest"
)

type verifyResult struct {
	Passed   bool
	Scratch  string
	Expected string
	Checks   []struct {
		Name string
		OK   bool
	}
	Tables []struct {
		Name               string
		Expected, Restored int64
		OK                 bool
	}
	Leftovers []string `json:"leftovers_dropped"`
}

// writeTool writes an executable shell script.
func writeTool(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestE2EDBVerify drills a good snapshot and one made by a dump tool that
// leaves one table's rows out, for each engine: the good one passes with
// every table's count, the bad one fails with exit 19 naming the table;
// no scratch database is left either way, and a leftover of a killed drill
// (a scratch database over an hour old) is dropped by the next drill.
func TestE2EDBVerify(t *testing.T) {
	t.Parallel()
	dumptest.Drills(t)
	pg := dumptest.Postgres(t)
	my := dumptest.MySQL(t)
	e := newEnv(t)
	dir := t.TempDir()
	_, pgURL := dumptest.NewPostgresDB(t, pg)
	dumptest.PSQL(t, pgURL, `CREATE TABLE users AS SELECT i AS id, md5(i::text) AS name FROM generate_series(1, 2000) i;
CREATE TABLE orders (id int PRIMARY KEY, n text); INSERT INTO orders SELECT i, 'x' FROM generate_series(1, 300) i;`)
	myName, myURL := dumptest.NewMySQLDB(t, my)
	dumptest.MySQLExec(t, my, myName, "CREATE TABLE users (id INT PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1,'a'),(2,'b'),(3,'c');"+
		"CREATE TABLE orders (id INT PRIMARY KEY); INSERT INTO orders VALUES (1),(2);")
	lite := filepath.Join(dir, "app.db")
	sqliteRun(t, lite, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1,'a'),(2,'b'); CREATE TABLE orders (id); INSERT INTO orders VALUES (1);")
	scratchDir := filepath.Join(dir, "scratch")
	if err := os.Mkdir(scratchDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Tampered dump tools: PostgreSQL's and MariaDB's add rows the restore
	// drops (below), SQLite's empties the orders table in its copy after
	// counting it.
	badPG := writeTool(t, dir, "pg_dump_bad", `case "$1" in --version) exec pg_dump --version;; esac
pg_dump "$@" || exit $?
echo 'INSERT INTO public.orders VALUES (1, $$x$$) ON CONFLICT DO NOTHING;'
`)
	// The dumps' row counts are recorded as they pass (a fingerprint), so
	// leaving rows out would go unnoticed: these tools add rows that the
	// restore ignores (duplicate keys), which the fingerprint counts.
	badMy := writeTool(t, dir, "mysqldump_bad", `case "$1" in --version) exec mariadb-dump --version;; esac
mariadb-dump "$@" || exit $?
echo 'INSERT IGNORE INTO `+"`orders`"+` VALUES (1),(2);'
`)
	// SQLite's backup counts the rows of the copy it makes (the
	// fingerprint) before it archives it; this sqlite3 empties orders in
	// the copy once it has counted them.
	badLite := writeTool(t, dir, "sqlite3_bad", `for a; do last=$a; done
sqlite3 "$@" || exit $?
case "$6,$last" in */copy.db,"SELECT 0, count(*)"*) sqlite3 "$6" "DELETE FROM orders";; esac
`)
	e.writeConfig(fmt.Sprintf(`
[databases.pg]
url = %q
[databases.pgbad]
url = %q
dump_command = %q
dump_args = ["--format=plain"]
[databases.my]
url = %q
[databases.mybad]
url = %q
dump_command = %q
[databases.lite]
path = %q
temp_dir = %q
[databases.litebad]
path = %q
temp_dir = %q
dump_command = %q
`, pgURL, pgURL, badPG, myURL, myURL, badMy, lite, scratchDir, lite, scratchDir, badLite))
	e.mustRun("db", "backup", "pg", "my", "lite")
	e.mustRun("db", "backup", "pgbad", "mybad", "litebad")

	scratches := func() []string {
		var all []string
		out := dumptest.PSQL(t, pg, "SELECT datname FROM pg_database WHERE datname LIKE 'hoard\\_verify\\_%'")
		all = append(all, strings.Fields(out)...)
		out = dumptest.MySQLExec(t, my, "", "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'hoard\\_verify\\_%'")
		all = append(all, strings.Fields(out)...)
		m, _ := filepath.Glob(filepath.Join(scratchDir, "*"))
		return append(all, m...)
	}
	for _, db := range []string{"pg", "my", "lite"} {
		var res verifyResult
		e.mustRunJSON(&res, "db", "verify", db)
		if !res.Passed || len(res.Checks) == 0 || len(res.Tables) != 2 || res.Expected != map[string]string{"my": "fingerprint", "pg": "fingerprint", "lite": "fingerprint"}[db] {
			t.Fatalf("%s: %+v", db, res)
		}
		names := ""
		for _, c := range res.Checks {
			names += c.Name + ";"
			if !c.OK {
				t.Errorf("%s: check %s failed", db, c.Name)
			}
		}
		// pg_amcheck runs where Debian's postgresql-client installed it.
		if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_amcheck"); db == "pg" && len(m) > 0 && !strings.Contains(names, "pg_amcheck;") {
			t.Errorf("pg: pg_amcheck did not run: %s", names)
		}
		if db == "my" && !strings.Contains(names, "CHECK TABLE orders;") || db == "lite" && names != "PRAGMA integrity_check;" {
			t.Errorf("%s: checks %s", db, names)
		}
		for _, tb := range res.Tables {
			if !tb.OK || tb.Restored <= 0 {
				t.Errorf("%s: table %+v", db, tb)
			}
		}
		if !strings.HasPrefix(filepath.Base(res.Scratch), dump.ScratchPrefix) {
			t.Errorf("%s: scratch %q", db, res.Scratch)
		}
		if s := scratches(); len(s) != 0 {
			t.Fatalf("%s: scratch databases left: %v", db, s)
		}
	}
	for _, db := range []string{"pgbad", "mybad", "litebad"} {
		stderr := e.mustFail(exitDrill, "db", "verify", db)
		if !strings.Contains(stderr, "restore drill of "+db) || !regexp.MustCompile(`table (public\.)?orders: expected [1-9][0-9]* rows, restored [0-9]+\n`).MatchString(stderr) {
			t.Errorf("%s: stderr:\n%s", db, stderr)
		}
		if s := scratches(); len(s) != 0 {
			t.Fatalf("%s: scratch databases left: %v", db, s)
		}
	}

	// Leftovers of killed drills: over an hour old, dropped; newer ones
	// (maybe a drill running now) kept.
	old := fmt.Sprintf("%s%d_deadbeef_pg", dump.ScratchPrefix, time.Now().Add(-2*time.Hour).Unix())
	recent := fmt.Sprintf("%s%d_deadbeef_pg", dump.ScratchPrefix, time.Now().Unix())
	dumptest.PSQL(t, pg, `CREATE DATABASE "`+old+`"; CREATE DATABASE "`+recent+`"`)
	t.Cleanup(func() {
		dumptest.PSQL(t, pg, `DROP DATABASE IF EXISTS "`+recent+`"; DROP DATABASE IF EXISTS "`+old+`"`)
	})
	dumptest.MySQLExec(t, my, "", "CREATE DATABASE `"+old+"`")
	t.Cleanup(func() { dumptest.MySQLExec(t, my, "", "DROP DATABASE IF EXISTS `"+old+"`") })
	oldFile := filepath.Join(scratchDir, old+".sqlite")
	sqliteRun(t, oldFile, "CREATE TABLE t (x);")
	for _, db := range []string{"pg", "my", "lite"} {
		var res verifyResult
		e.mustRunJSON(&res, "db", "verify", db)
		if len(res.Leftovers) != 1 || filepath.Base(res.Leftovers[0]) != filepath.Base(old)+map[string]string{"lite": ".sqlite"}[db] {
			t.Errorf("%s: leftovers dropped %v", db, res.Leftovers)
		}
	}
	if s := scratches(); len(s) != 1 || s[0] != recent {
		t.Fatalf("scratch databases after the drills: %v (want only %s)", s, recent)
	}
}

// TestE2EDBVerifyKilled kills a drill (SIGKILL) while it restores: its
// scratch database stays, named so that the next drill recognises it, and
// the next drill drops it.
func TestE2EDBVerifyKilled(t *testing.T) {
	dumptest.Drills(t)
	pg := dumptest.Postgres(t)
	e := newEnv(t)
	dir := t.TempDir()
	_, pgURL := dumptest.NewPostgresDB(t, pg)
	dumptest.PSQL(t, pgURL, `CREATE TABLE t AS SELECT i FROM generate_series(1, 100) i;`)
	slow := writeTool(t, dir, "pg_restore_slow", "sleep 60\nexec pg_restore \"$@\"\n")
	e.writeConfig(fmt.Sprintf("[databases.pg]\nurl = %q\n[databases.slow]\nurl = %q\nrestore_command = %q\n", pgURL, pgURL, slow))
	e.mustRun("db", "backup", "pg")
	e.mustRun("db", "backup", "slow")
	scratch := func() []string {
		return strings.Fields(dumptest.PSQL(t, pg, "SELECT datname FROM pg_database WHERE datname LIKE 'hoard\\_verify\\_%'"))
	}
	cmd := e.command("db", "verify", "slow")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	var left []string
	for deadline := time.Now().Add(30 * time.Second); len(left) == 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		left = scratch()
	}
	if len(left) == 0 {
		t.Fatal("the drill made no scratch database")
	}
	// hoard and its pg_restore wrapper, at once.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true
	if s := scratch(); len(s) != 1 || s[0] != left[0] {
		t.Fatalf("after the kill: %v", s)
	}
	t.Cleanup(func() { dumptest.PSQL(t, pg, `DROP DATABASE IF EXISTS "`+left[0]+`"`) })
	// A young leftover (maybe a drill running now) is kept by default.
	var res verifyResult
	e.mustRunJSON(&res, "db", "verify", "pg")
	if len(res.Leftovers) != 0 || len(scratch()) != 1 {
		t.Fatalf("a young leftover was dropped: %v", res.Leftovers)
	}
	time.Sleep(1100 * time.Millisecond)
	e.mustRunJSON(&res, "db", "verify", "--leftovers-older-than", "1s", "pg")
	if !res.Passed || len(res.Leftovers) != 1 || res.Leftovers[0] != left[0] {
		t.Fatalf("leftovers dropped %v, want %s", res.Leftovers, left[0])
	}
	if s := scratch(); len(s) != 0 {
		t.Fatalf("scratch databases left: %v", s)
	}
}
