package main

// End-to-end tests of the database commands (db backup, db restore, db
// list, run) and the config file, against the real servers on 127.0.0.1
// (dump/dumptest finds them; without CI set, a missing server skips).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoard-backup/hoard/dump/dumptest"
	"github.com/hoard-backup/hoard/internal/testenv"
)

// writeConfig writes a hoard.toml and points the env at it.
func (e *env) writeConfig(body string) string {
	e.t.Helper()
	p := filepath.Join(e.t.TempDir(), "hoard.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.extraEnv = append(e.extraEnv, "HOARD_CONFIG="+p)
	return p
}

// mustFail runs hoard, wants exit code want, and returns standard error.
func (e *env) mustFail(want int, args ...string) string {
	e.t.Helper()
	_, stderr, code := e.run(args...)
	if code != want {
		e.t.Fatalf("hoard %s: exit %d, want %d\nstderr: %s", shortArgs(args), code, want, stderr)
	}
	return stderr
}

type dbSnapshot struct {
	ID     string `json:"id"`
	Paths  []string
	Source struct {
		Kind      string `json:"kind"`
		Databases []struct {
			Name, Engine, Path, Format, Database, Tool string
			ServerVersion                              string   `json:"server_version"`
			ToolVersion                                string   `json:"tool_version"`
			Options                                    []string `json:"options"`
		} `json:"databases"`
	} `json:"source"`
}

func (e *env) dbSnapshots() []dbSnapshot {
	e.t.Helper()
	var sns []dbSnapshot
	e.mustRunJSON(&sns, "snapshots")
	return sns
}

func sqliteRun(t *testing.T, db, sql string) string {
	t.Helper()
	cmd := exec.Command("sqlite3", "-init", "/dev/null", "-batch", "-bail", db)
	cmd.Stdin = strings.NewReader(sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestE2EDBRun backs up a PostgreSQL, a MariaDB and an SQLite database and
// a media tree with `hoard run`, and restores each database into a fresh
// one whose tables, sequences and routines match the source's.
func TestE2EDBRun(t *testing.T) {
	t.Parallel()
	pg := dumptest.Postgres(t)
	my := dumptest.MySQL(t)
	e := newEnv(t)
	_, pgURL := dumptest.NewPostgresDB(t, pg)
	dumptest.PSQL(t, pgURL, dumptest.PostgresFixture)
	myName, myURL := dumptest.NewMySQLDB(t, my)
	dumptest.MySQLExec(t, my, myName, dumptest.MySQLFixture)
	dir := t.TempDir()
	lite := filepath.Join(dir, "app.db")
	sqliteRun(t, lite, "PRAGMA journal_mode = WAL; CREATE TABLE t (x TEXT, b BLOB); INSERT INTO t VALUES ('a'||char(10)||'b', x'00ff00'), ('', NULL);")
	media := filepath.Join(dir, "media")
	for name, body := range map[string]string{"a.jpg": "jpeg", "cache/x": "cached", "b.tmp": "temp"} {
		p := filepath.Join(media, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.writeConfig(fmt.Sprintf(`
[databases.main]
url = %q

[databases.shop]
url_env = "HOARD_TEST_SHOP_URL"

[databases.lite]
path = %q

[media.uploads]
paths = [%q]
excludes = ["*.tmp", "cache"]

[retention]
keep_daily = 7
`, pgURL, lite, media))
	e.extraEnv = append(e.extraEnv, "HOARD_TEST_SHOP_URL="+myURL)

	var res struct {
		ID        string `json:"id"`
		Databases []struct{ Name, Engine string }
	}
	e.mustRunJSON(&res, "run", "--tag", "nightly")
	if len(res.Databases) != 3 {
		t.Fatalf("run reported databases %+v", res.Databases)
	}
	sns := e.dbSnapshots()
	if len(sns) != 1 || sns[0].Source.Kind != "run" || len(sns[0].Source.Databases) != 3 {
		t.Fatalf("snapshots %+v", sns)
	}
	for _, d := range sns[0].Source.Databases {
		if d.ServerVersion == "" || d.ToolVersion == "" || d.Format == "" || len(d.Options) == 0 {
			t.Errorf("database %s: incomplete record %+v", d.Name, d)
		}
		if strings.Contains(fmt.Sprint(d), "password") {
			t.Errorf("database %s: record mentions a password: %+v", d.Name, d)
		}
	}
	ls := e.mustRun("ls", "latest", "/")
	for _, want := range []string{"/db/main.pgdump", "/db/shop.sql", "/db/lite.sqlite", "/media/uploads/media/a.jpg"} {
		if !strings.Contains(ls, want+"\n") {
			t.Errorf("ls lacks %s:\n%s", want, ls)
		}
	}
	for _, not := range []string{"b.tmp", "cache"} {
		if strings.Contains(ls, not) {
			t.Errorf("ls shows excluded %s:\n%s", not, ls)
		}
	}

	var list []struct {
		Name, Engine string
		Latest       *struct {
			ID   string
			Size uint64
		}
	}
	e.mustRunJSON(&list, "db", "list")
	if len(list) != 3 {
		t.Fatalf("db list: %+v", list)
	}
	for _, l := range list {
		if l.Latest == nil || l.Latest.ID != res.ID || l.Latest.Size == 0 {
			t.Errorf("db list: %s: %+v", l.Name, l.Latest)
		}
	}

	// PostgreSQL into a new database.
	pgNew := dumptest.Name("hoard_test")
	dumptest.DropPostgresDBLater(t, pg, pgNew)
	e.mustRun("db", "restore", "main", "--into", pgNew)
	dumptest.EqualState(t, dumptest.PostgresState(t, pgURL), dumptest.PostgresState(t, dumptest.WithDB(pg, pgNew)))
	// Not again without --force (exit 17); with it, it is replaced.
	if stderr := e.mustFail(exitRefused, "db", "restore", "main", res.ID[:8], "--into", pgNew); !strings.Contains(stderr, "--force") {
		t.Errorf("refusal does not mention --force: %s", stderr)
	}
	e.mustRun("db", "restore", "main", "latest", "--into", pgNew, "--force")
	dumptest.EqualState(t, dumptest.PostgresState(t, pgURL), dumptest.PostgresState(t, dumptest.WithDB(pg, pgNew)))

	// MariaDB, by URL to a new database.
	myNew := dumptest.Name("hoard_test")
	dumptest.DropMySQLDBLater(t, my, myNew)
	e.mustRun("db", "restore", "shop", "--into", dumptest.WithDB(my, myNew))
	dumptest.EqualState(t, dumptest.MySQLState(t, my, myName), dumptest.MySQLState(t, my, myNew))

	// SQLite: byte-identical to what was backed up, integrity checked.
	liteNew := filepath.Join(dir, "restored.db")
	e.mustRun("db", "restore", "lite", "--into", liteNew)
	var dumped bytes.Buffer
	if stderr, code := e.runIO(nil, &dumped, "dump", "latest", "/db/lite.sqlite"); code != 0 {
		t.Fatalf("dump: %s", stderr)
	}
	if got, _ := os.ReadFile(liteNew); !bytes.Equal(got, dumped.Bytes()) {
		t.Error("restored SQLite file differs from the snapshot's")
	}
	if a, b := sqliteRun(t, lite, ".dump"), sqliteRun(t, liteNew, ".dump"); a != b {
		t.Errorf("SQLite content differs:\n%s\n%s", a, b)
	}
	e.mustFail(exitRefused, "db", "restore", "lite", "--into", lite)

	// The wrong engine is refused: a snapshot holding a MariaDB dump named
	// "main", restored with a config where main is PostgreSQL.
	e.mustRun("db", "backup", myURL)
	other := e.on(t)
	other.writeConfig(fmt.Sprintf("[databases.%s]\nurl = %q\n", myName, pgURL))
	if stderr := other.mustFail(exitRefused, "db", "restore", myName, "--into", dumptest.Name("hoard_test")); !strings.Contains(stderr, "mysql dump") {
		t.Errorf("engine refusal: %s", stderr)
	}
	other.mustFail(exitRefused, "db", "restore", "main", "--into", dumptest.WithDB(my, "x"))
}

// TestE2EDBFailures: a dump that fails leaves no snapshot, and hoard exits
// 16 with the tool's own message.
func TestE2EDBFailures(t *testing.T) {
	t.Parallel()
	pg := dumptest.Postgres(t)
	my := dumptest.MySQL(t)
	e := newEnv(t)
	name, pgURL := dumptest.NewPostgresDB(t, pg)
	dumptest.PSQL(t, pgURL, `CREATE TABLE big AS SELECT i, md5(i::text) AS t FROM generate_series(1, 100000) i`)
	dir := t.TempDir()
	// A pg_dump that writes part of a dump and is then killed.
	killed := filepath.Join(dir, "pg_dump_killed")
	if err := os.WriteFile(killed, []byte("#!/bin/sh\ncase \"$1\" in --version) exec pg_dump --version;; esac\npg_dump \"$@\" | head -c 100000\nkill -KILL $$\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	myUser := dumptest.Name("hoard_u")
	dumptest.MySQLExec(t, my, "", "CREATE USER '"+myUser+"'@'%' IDENTIFIED BY 'right'; CREATE USER '"+myUser+"'@'localhost' IDENTIFIED BY 'right';")
	t.Cleanup(func() {
		dumptest.MySQLExec(t, my, "", "DROP USER IF EXISTS '"+myUser+"'@'%'; DROP USER IF EXISTS '"+myUser+"'@'localhost';")
	})
	pwFile := filepath.Join(dir, "mysql-pw")
	if err := os.WriteFile(pwFile, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.writeConfig(fmt.Sprintf(`
[databases.norole]
url = %q
[databases.nodb]
url = %q
[databases.notool]
url = %q
dump_command = "/nonexistent/pg_dump"
[databases.killed]
url = %q
dump_command = %q
[databases.wrongpw]
url = "mysql://%s@127.0.0.1:3306/mysql"
password_file = %q
[databases.good]
path = %q
`, strings.Replace(pgURL, "postgres@", "hoard_no_such_role@", 1), dumptest.WithDB(pg, name+"_missing"), pgURL, pgURL, killed,
		myUser, pwFile, filepath.Join(dir, "good.db")))
	sqliteRun(t, filepath.Join(dir, "good.db"), "CREATE TABLE t (x); INSERT INTO t VALUES (1);")

	// PostgreSQL trusts 127.0.0.1 here, so a missing role stands in for a
	// wrong password; MariaDB checks the password.
	for db, want := range map[string]string{
		"norole":  `role "hoard_no_such_role" does not exist`,
		"nodb":    `database "` + name + `_missing" does not exist`,
		"notool":  "/nonexistent/pg_dump",
		"killed":  "killed",
		"wrongpw": "Access denied for user '" + myUser + "'",
	} {
		stderr := e.mustFail(exitSource, "db", "backup", "good", db)
		if !strings.Contains(stderr, want) || !strings.Contains(stderr, "no snapshot was made") {
			t.Errorf("%s: stderr lacks %q:\n%s", db, want, stderr)
		}
		if strings.Contains(stderr, "wrong\n") || strings.Contains(stderr, "right") {
			t.Errorf("%s: stderr shows a password:\n%s", db, stderr)
		}
	}
	e.mustFail(exitSource, "run")
	if ids := e.snapshotIDs(); len(ids) != 0 {
		t.Fatalf("failed dumps left snapshots: %v", ids)
	}
	e.mustRun("db", "backup", "good")
	if ids := e.snapshotIDs(); len(ids) != 1 {
		t.Fatalf("snapshots %v", ids)
	}
	e.mustFail(exitUsage, "db", "backup", "nosuchname")
}

func TestE2EDBConfigErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.writeConfig("[databases.main]\nurl = \"postgres://h/d\"\n\npasword = \"typo\"\n")
	stderr := e.mustFail(exitUsage, "snapshots")
	if !strings.Contains(stderr, "hoard.toml:4: unknown key databases.main.pasword") {
		t.Errorf("stderr: %s", stderr)
	}
	e2 := newEnv(t)
	e2.extraEnv = append(e2.extraEnv, "HOARD_CONFIG="+filepath.Join(t.TempDir(), "missing.toml"))
	e2.mustFail(exitUsage, "snapshots")
	e3 := newEnv(t)
	e3.mustFail(exitUsage, "run")
}

// TestE2EDatabaseURL: with no config, DATABASE_URL is the database
// "default".
func TestE2EDatabaseURL(t *testing.T) {
	t.Parallel()
	testenv.NeedPrograms(t, "sqlite3")
	e := newEnv(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "app.db")
	sqliteRun(t, db, "CREATE TABLE t (x); INSERT INTO t VALUES ('hello');")
	e.extraEnv = append(e.extraEnv, "DATABASE_URL=sqlite:///"+db)
	e.mustRun("db", "backup")
	var sns []dbSnapshot
	e.mustRunJSON(&sns, "snapshots")
	if len(sns) != 1 || len(sns[0].Source.Databases) != 1 || sns[0].Source.Databases[0].Name != "default" {
		b, _ := json.Marshal(sns)
		t.Fatalf("snapshots %s", b)
	}
	out := filepath.Join(dir, "out.db")
	e.mustRun("db", "restore", "default", "--into", out)
	if got := sqliteRun(t, out, "SELECT x FROM t;"); got != "hello" {
		t.Errorf("restored %q", got)
	}
}

// TestE2EChunkProfile: init makes a repository of dump-sized chunks
// unless --chunk-profile large asks for restic's.
func TestE2EChunkProfile(t *testing.T) {
	t.Parallel()
	type chunker struct {
		MinSize     uint `json:"min_size"`
		MaxSize     uint `json:"max_size"`
		AverageBits int  `json:"average_bits"`
	}
	for _, tc := range []struct {
		args []string
		want chunker
	}{
		{nil, chunker{64 << 10, 1 << 20, 17}},
		{[]string{"--chunk-profile", "dump"}, chunker{64 << 10, 1 << 20, 17}},
		{[]string{"--chunk-profile", "large"}, chunker{512 << 10, 8 << 20, 20}},
	} {
		e := newEnvNoInit(t)
		e.mustRun(append([]string{"init", "--s2k", "iterated"}, tc.args...)...)
		var cfg struct {
			Chunker chunker `json:"chunker"`
		}
		if err := json.Unmarshal([]byte(e.mustRun("cat", "config")), &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Chunker != tc.want {
			t.Errorf("init %v: chunker %+v, want %+v", tc.args, cfg.Chunker, tc.want)
		}
	}
	e2 := newEnvNoInit(t)
	e2.mustFail(exitUsage, "init", "--chunk-profile", "tiny")
}
