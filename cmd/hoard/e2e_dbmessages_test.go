package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoard-backup/hoard/dump/dumptest"
)

// TestE2EDBRestoreIntoURLNamesTarget: db restore NAME --into URL without a
// config file names the database it wrote, not the source, in text and
// JSON, for PostgreSQL and MariaDB; the URL's password is not shown.
func TestE2EDBRestoreIntoURLNamesTarget(t *testing.T) {
	t.Parallel()
	pg := dumptest.Postgres(t)
	my := dumptest.MySQL(t)
	e := newEnv(t)
	pgName, pgURL := dumptest.NewPostgresDB(t, pg)
	dumptest.PSQL(t, pgURL, "CREATE TABLE t (x int); INSERT INTO t VALUES (1);")
	myName, myURL := dumptest.NewMySQLDB(t, my)
	dumptest.MySQLExec(t, my, myName, "CREATE TABLE t (x int); INSERT INTO t VALUES (1);")
	for _, c := range []struct {
		admin, name, url string
		drop             func(t testing.TB, admin, name string)
	}{{pg, pgName, pgURL, dumptest.DropPostgresDBLater}, {my, myName, myURL, dumptest.DropMySQLDBLater}} {
		e.mustRun("db", "backup", c.url)
		copyText, copyJSON := dumptest.Name("hoard_copy"), dumptest.Name("hoard_copy")
		c.drop(t, c.admin, copyText)
		c.drop(t, c.admin, copyJSON)
		out := e.mustRun("db", "restore", c.name, "latest", "--into", dumptest.WithDB(c.admin, copyText))
		if !strings.Contains(out, "into "+copyText+" ") || strings.Contains(out, "into "+c.name) || strings.Contains(out, "://") {
			t.Errorf("restore into %s says:\n%s", copyText, out)
		}
		var res struct{ Into string }
		out = e.mustRun("--json", "db", "restore", c.name, "latest", "--into", dumptest.WithDB(c.admin, copyJSON))
		if err := json.Unmarshal([]byte(out), &res); err != nil || res.Into != copyJSON {
			t.Errorf("--json restore into %s: %v %s", copyJSON, err, out)
		}
	}
}

// TestE2ESQLiteMissingFile: a missing SQLite file is a failed source, as
// a failed pg_dump is: exit 16 and "no snapshot was made".
func TestE2ESQLiteMissingFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	missing := filepath.Join(t.TempDir(), "gone.db")
	for _, args := range [][]string{{"db", "backup", "sqlite:///" + missing}, {"run"}} {
		if args[0] == "run" {
			e.writeConfig("[databases.lite]\npath = " + `"` + missing + `"` + "\n")
		}
		stderr := e.mustFail(exitSource, args...)
		if !strings.Contains(stderr, "no snapshot was made") || !strings.Contains(stderr, missing) {
			t.Errorf("hoard %v: %s", args, stderr)
		}
	}
	if ids := e.snapshotIDs(); len(ids) != 0 {
		t.Errorf("snapshots %v after failed backups", ids)
	}
}
