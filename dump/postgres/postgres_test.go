package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/dump/dumptest"
	"github.com/hoard-backup/hoard/dump/postgres"
)

func newPG(t *testing.T, c postgres.Config) *postgres.Postgres {
	t.Helper()
	p, err := postgres.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// backup dumps the database at u into memory.
func backup(t *testing.T, p *postgres.Postgres) ([]byte, dump.Info) {
	t.Helper()
	rc, info, err := p.Backup(context.Background())
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read dump: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("close dump: %v", err)
	}
	return data, info
}

func TestRoundTrip(t *testing.T) {
	admin := dumptest.Postgres(t)
	t.Parallel()
	_, src := dumptest.NewPostgresDB(t, admin)
	dumptest.PSQL(t, src, dumptest.PostgresFixture)
	want := dumptest.PostgresState(t, src)

	p := newPG(t, postgres.Config{URL: src})
	data, info := backup(t, p)
	if !bytes.HasPrefix(data, []byte("PGDMP")) {
		t.Fatalf("dump does not start with PGDMP: %q", data[:min(len(data), 16)])
	}
	if info.Engine != dump.Postgres || info.Format != "custom" || !strings.HasPrefix(info.ServerVersion, "1") ||
		!strings.Contains(info.ToolVersion, "pg_dump") || info.Details["encoding"] == "" {
		t.Errorf("info: %+v", info)
	}
	t.Logf("dump: %d bytes; info %+v", len(data), info)

	// Into a new database (created under a temporary name, then renamed).
	fresh := dumptest.Name("hoard_test")
	dumptest.DropPostgresDBLater(t, admin, fresh)
	if err := p.Restore(context.Background(), bytes.NewReader(data), dump.Target{Into: fresh, Source: &info}); err != nil {
		t.Fatalf("restore into a new database: %v", err)
	}
	dst := dumptest.WithDB(admin, fresh)
	dumptest.EqualState(t, want, dumptest.PostgresState(t, dst))

	// Sequences continue where the source's are, the trigger fires.
	for _, q := range []string{
		`SELECT nextval('counter')`,
		`SELECT nextval('kinds_id_seq')`,
		`INSERT INTO child (kind_id, label) VALUES (1, 'new') RETURNING id`,
		`INSERT INTO kinds (t) VALUES ('new') RETURNING (SELECT count(*) FROM audit)`,
	} {
		if s, d := dumptest.PSQL(t, src, q), dumptest.PSQL(t, dst, q); s != d {
			t.Errorf("%s: restored %q, source %q", q, d, s)
		}
	}

	// A non-empty database is not overwritten without Force.
	err := p.Restore(context.Background(), bytes.NewReader(data), dump.Target{Into: fresh})
	if !errors.Is(err, dump.ErrNotEmpty) {
		t.Fatalf("restore over a non-empty database: %v, want ErrNotEmpty", err)
	}
	// With Force it is replaced.
	dumptest.PSQL(t, dst, `CREATE TABLE extra (x int); DELETE FROM child;`)
	if err := p.Restore(context.Background(), bytes.NewReader(data), dump.Target{Into: fresh, Force: true, Source: &info}); err != nil {
		t.Fatalf("forced restore: %v", err)
	}
	dumptest.EqualState(t, want, dumptest.PostgresState(t, dst))

	// Into an existing empty database, by URL: restored in place.
	_, empty := dumptest.NewPostgresDB(t, admin)
	if err := p.Restore(context.Background(), bytes.NewReader(data), dump.Target{Into: empty}); err != nil {
		t.Fatalf("restore into an empty database: %v", err)
	}
	dumptest.EqualState(t, want, dumptest.PostgresState(t, empty))
}

func TestPlainFormat(t *testing.T) {
	admin := dumptest.Postgres(t)
	t.Parallel()
	_, src := dumptest.NewPostgresDB(t, admin)
	dumptest.PSQL(t, src, `CREATE TABLE t (x text); INSERT INTO t VALUES (E'a\nb'), (E'\\.'), (NULL);`)
	p := newPG(t, postgres.Config{URL: src, DumpArgs: []string{"--format=plain"}})
	if p.Format() != "sql" {
		t.Fatalf("format %q", p.Format())
	}
	data, _ := backup(t, p)
	fresh := dumptest.Name("hoard_test")
	dumptest.DropPostgresDBLater(t, admin, fresh)
	if err := p.Restore(context.Background(), bytes.NewReader(data), dump.Target{Into: fresh}); err != nil {
		t.Fatal(err)
	}
	dumptest.EqualState(t, map[string]string{"t": dumptest.PSQL(t, src, `SELECT string_agg(coalesce(x, 'NULL'), '|' ORDER BY x) FROM t`)},
		map[string]string{"t": dumptest.PSQL(t, dumptest.WithDB(admin, fresh), `SELECT string_agg(coalesce(x, 'NULL'), '|' ORDER BY x) FROM t`)})
}

// A failed restore into a new database leaves no database behind.
func TestRestoreFailureLeavesNothing(t *testing.T) {
	admin := dumptest.Postgres(t)
	t.Parallel()
	_, src := dumptest.NewPostgresDB(t, admin)
	dumptest.PSQL(t, src, `CREATE TABLE t AS SELECT i, md5(i::text) FROM generate_series(1, 20000) i`)
	p := newPG(t, postgres.Config{URL: src})
	data, _ := backup(t, p)
	fresh := dumptest.Name("hoard_test")
	dumptest.DropPostgresDBLater(t, admin, fresh)
	// A truncated dump, and a reader that fails half-way.
	for name, r := range map[string]io.Reader{
		"truncated": bytes.NewReader(data[:len(data)/2]),
		"failing":   io.MultiReader(bytes.NewReader(data[:len(data)/2]), errReader{}),
	} {
		err := p.Restore(context.Background(), r, dump.Target{Into: fresh})
		if err == nil {
			t.Fatalf("%s: restore succeeded", name)
		}
		t.Logf("%s: %v", name, err)
		if n := dumptest.PSQL(t, admin, `SELECT count(*) FROM pg_database WHERE datname LIKE '`+fresh+`%'`); n != "0" {
			t.Errorf("%s: %s databases left behind", name, n)
		}
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// The password goes to the tools in PGPASSWORD, never on their command line.
func TestPasswordNotOnCommandLine(t *testing.T) {
	admin := dumptest.Postgres(t)
	t.Parallel()
	_, src := dumptest.NewPostgresDB(t, admin)
	dir := t.TempDir()
	wrap := func(tool string) string {
		p := filepath.Join(dir, tool)
		script := "#!/bin/sh\necho \"$*\" >> " + filepath.Join(dir, "argv") + "\necho \"$PGPASSWORD\" >> " + filepath.Join(dir, "env") + "\nexec " + tool + " \"$@\"\n"
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Trust authentication ignores the password; the tools still get it.
	u := strings.Replace(src, "postgres@", "postgres:s3cret-in-url@", 1)
	p := newPG(t, postgres.Config{URL: u, DumpCommand: wrap("pg_dump"), ClientCommand: wrap("psql")})
	backup(t, p)
	argv, _ := os.ReadFile(filepath.Join(dir, "argv"))
	env, _ := os.ReadFile(filepath.Join(dir, "env"))
	if bytes.Contains(argv, []byte("s3cret")) {
		t.Errorf("password on a command line:\n%s", argv)
	}
	if !bytes.Contains(env, []byte("s3cret-in-url")) {
		t.Errorf("PGPASSWORD not set: %q", env)
	}
	p = newPG(t, postgres.Config{URL: u, Password: "other-s3cret", DumpCommand: wrap("pg_dump"), ClientCommand: wrap("psql")})
	backup(t, p)
	env, _ = os.ReadFile(filepath.Join(dir, "env"))
	if !bytes.Contains(env, []byte("other-s3cret")) {
		t.Errorf("Config.Password not in PGPASSWORD: %q", env)
	}
}

// Failures: the backup fails with the tool's own message.
func TestBackupFailures(t *testing.T) {
	admin := dumptest.Postgres(t)
	t.Parallel()
	name, src := dumptest.NewPostgresDB(t, admin)
	// The test server trusts 127.0.0.1 (see its pg_hba.conf), so a wrong
	// password cannot fail: a role that does not exist stands in for it.
	for _, tc := range []struct {
		name string
		c    postgres.Config
		want string
	}{
		{"unknown role", postgres.Config{URL: strings.Replace(src, "postgres@", "hoard_no_such_role:wrong@", 1)}, `role "hoard_no_such_role" does not exist`},
		{"unknown database", postgres.Config{URL: dumptest.WithDB(admin, name+"_missing")}, `database "` + name + `_missing" does not exist`},
		{"dump tool missing", postgres.Config{URL: src, DumpCommand: "/nonexistent/pg_dump"}, "/nonexistent/pg_dump"},
		{"client missing", postgres.Config{URL: src, ClientCommand: "/nonexistent/psql"}, "/nonexistent/psql"},
		{"server refuses", postgres.Config{URL: "postgres://postgres@127.0.0.1:1/x"}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPG(t, tc.c)
			rc, _, err := p.Backup(context.Background())
			if err == nil {
				_, _ = io.Copy(io.Discard, rc)
				err = rc.Close()
			}
			var te *dump.ToolError
			if !errors.As(err, &te) {
				t.Fatalf("error %v (%T), want a *dump.ToolError", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// bigDB makes a database whose dump is large enough (~30 MB) to be
// interrupted while pg_dump runs.
func bigDB(t *testing.T, admin string) (string, string) {
	name, u := dumptest.NewPostgresDB(t, admin)
	dumptest.PSQL(t, u, `CREATE TABLE big AS SELECT i, repeat(md5(i::text), 4) AS t FROM generate_series(1, 200000) i`)
	return name, u
}

// startAndRead starts a backup and reads its first 256 KiB.
func startAndRead(t *testing.T, p *postgres.Postgres) io.ReadCloser {
	t.Helper()
	rc, _, err := p.Backup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	return rc
}

func finish(t *testing.T, rc io.ReadCloser) error {
	t.Helper()
	_, _ = io.Copy(io.Discard, rc)
	return rc.Close()
}

func TestServerGoneMidDump(t *testing.T) {
	admin := dumptest.Postgres(t)
	t.Parallel()
	name, src := bigDB(t, admin)
	p := newPG(t, postgres.Config{URL: src})
	rc := startAndRead(t, p)
	// pg_dump is blocked on the pipe, in the middle of COPY: end its backend.
	var n string
	for i := 0; i < 50; i++ {
		n = dumptest.PSQL(t, admin, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
 WHERE datname = '`+name+`' AND application_name = 'pg_dump'`)
		if n != "0" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n == "0" {
		t.Fatal("no pg_dump backend found")
	}
	err := finish(t, rc)
	var te *dump.ToolError
	// Over SSL the client sees only the connection's end.
	if !errors.As(err, &te) || !strings.Contains(err.Error(), `Dumping the contents of table "big" failed`) {
		t.Fatalf("error %v, want pg_dump's message about the failed table", err)
	}
	t.Log(err)
}

func TestToolKilled(t *testing.T) {
	admin := dumptest.Postgres(t)
	t.Parallel()
	_, src := bigDB(t, admin)
	p := newPG(t, postgres.Config{URL: src})
	rc := startAndRead(t, p)
	s, ok := rc.(*dump.Stream)
	if !ok {
		t.Fatalf("stream is a %T", rc)
	}
	if err := syscall.Kill(s.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := finish(t, rc)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("error %v, want pg_dump killed", err)
	}
	t.Log(err)
}

// Closing the stream early stops pg_dump and reports it.
func TestCloseEarly(t *testing.T) {
	admin := dumptest.Postgres(t)
	t.Parallel()
	_, src := bigDB(t, admin)
	p := newPG(t, postgres.Config{URL: src})
	rc := startAndRead(t, p)
	start := time.Now()
	if err := rc.Close(); err == nil {
		t.Fatal("early Close reported success")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Close took %v", d)
	}
	if pid := rc.(*dump.Stream).Pid(); syscall.Kill(pid, 0) == nil {
		// The pid may be reused, but not this quickly in a test.
		t.Errorf("pg_dump %s still running", strconv.Itoa(pid))
	}
}
