// Package dumptest helps tests reach the real database servers: it finds
// them, makes uniquely named databases that are dropped when the test ends,
// and runs SQL through the servers' own clients.
//
// A test that needs a server calls Postgres or MySQL. When the server does
// not answer, the test is skipped, unless the environment variable CI is
// set: in CI a missing server is a failure (scripts/test-services.sh starts
// them). HOARD_TEST_PG_URL and HOARD_TEST_MYSQL_URL point the tests at
// other servers; the defaults are the local ones, as superusers.
package dumptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/internal/testenv"
)

// Default server URLs.
const (
	DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres"
	DefaultMySQLURL    = "mysql://root@127.0.0.1:3306/"
)

func unavailable(t testing.TB, what string, err error, out []byte) {
	t.Helper()
	testenv.Missing(t, "%s is not available: %v: %s (run scripts/test-services.sh)", what, err, strings.TrimSpace(string(out)))
}

// Postgres returns the URL of the test server's maintenance database,
// or skips the test (fails it in CI) if the server does not answer.
func Postgres(t testing.TB) string {
	t.Helper()
	u := os.Getenv("HOARD_TEST_PG_URL")
	if u == "" {
		u = DefaultPostgresURL
	}
	if _, err := exec.LookPath("psql"); err != nil {
		unavailable(t, "psql", err, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", "-X", "-w", "-At", "-c", "SELECT 1", "--dbname="+u)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=5")
	if out, err := cmd.CombinedOutput(); err != nil {
		unavailable(t, "PostgreSQL at "+u, err, out)
	}
	return u
}

// MySQL returns the URL of the test server (no database), or skips the
// test (fails it in CI) if the server does not answer.
func MySQL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("HOARD_TEST_MYSQL_URL")
	if u == "" {
		u = DefaultMySQLURL
	}
	if _, err := exec.LookPath(MySQLClient()); err != nil {
		unavailable(t, "the mariadb client", err, nil)
	}
	if out, err := mysqlCmd(u, "", "SELECT 1", 10*time.Second); err != nil {
		unavailable(t, "MariaDB/MySQL at "+u, err, out)
	}
	return u
}

// MySQLClient is the client tool: mariadb, or mysql if there is none.
func MySQLClient() string {
	if _, err := exec.LookPath("mariadb"); err == nil {
		return "mariadb"
	}
	return "mysql"
}

// Name returns a fresh name: prefix, "_", and 8 random hex digits.
func Name(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// WithDB returns server URL u with its database replaced by db.
func WithDB(u, db string) string {
	p, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	p.Path = "/" + db
	return p.String()
}

// NewPostgresDB creates a database named hoard_test_<random> on the server
// at admin and drops it when the test ends. It returns its name and URL.
func NewPostgresDB(t testing.TB, admin string) (string, string) {
	t.Helper()
	name := Name("hoard_test")
	PSQL(t, admin, `CREATE DATABASE "`+name+`"`)
	DropPostgresDBLater(t, admin, name)
	return name, WithDB(admin, name)
}

// DropPostgresDBLater drops database name (if it exists) when the test ends.
func DropPostgresDBLater(t testing.TB, admin, name string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "psql", "-X", "-w", "-q", "-v", "ON_ERROR_STOP=1", "-c",
			`DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`, "--dbname="+admin).CombinedOutput()
		if err != nil {
			t.Errorf("drop database %s: %v: %s", name, err, out)
		}
	})
}

// PSQL runs SQL on the database at u and returns psql's unaligned,
// tuples-only output, without the trailing newline. It fails the test on
// an error.
func PSQL(t testing.TB, u, sql string) string {
	t.Helper()
	out, err := PSQLErr(u, sql)
	if err != nil {
		t.Fatalf("psql: %v\n%s\nSQL: %.500s", err, out, sql)
	}
	return out
}

// PSQLErr is PSQL returning the error and output instead of failing.
func PSQLErr(u, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", "-X", "-w", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "--dbname="+u, "-f", "-")
	cmd.Stdin = strings.NewReader(sql)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return errb.String(), err
	}
	return strings.TrimSuffix(out.String(), "\n"), nil
}

// NewMySQLDB creates a database named hoard_test_<random> on the server at
// admin and drops it when the test ends. It returns its name and URL.
func NewMySQLDB(t testing.TB, admin string) (string, string) {
	t.Helper()
	name := Name("hoard_test")
	MySQLExec(t, admin, "", "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
	DropMySQLDBLater(t, admin, name)
	return name, WithDB(admin, name)
}

// DropMySQLDBLater drops database name (if it exists) when the test ends.
func DropMySQLDBLater(t testing.TB, admin, name string) {
	t.Helper()
	t.Cleanup(func() {
		if out, err := mysqlCmd(admin, "", "DROP DATABASE IF EXISTS `"+name+"`", 30*time.Second); err != nil {
			t.Errorf("drop database %s: %v: %s", name, err, out)
		}
	})
}

// MySQLExec runs SQL on database db ("" for none) of the server at u, and
// returns the client's batch output (tab-separated, escaped), without the
// trailing newline. It fails the test on an error.
func MySQLExec(t testing.TB, u, db, sql string) string {
	t.Helper()
	out, err := mysqlCmd(u, db, sql, 5*time.Minute)
	if err != nil {
		t.Fatalf("%s: %v\n%s\nSQL: %.500s", MySQLClient(), err, out, sql)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// MySQLArgs returns the client's connection options for URL u (the
// password, if any, in the returned environment).
func MySQLArgs(u string) (args, env []string) {
	p, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	if h := p.Hostname(); h != "" {
		args = append(args, "--host="+h)
	}
	if port := p.Port(); port != "" {
		args = append(args, "--port="+port)
	}
	if p.User != nil {
		args = append(args, "--user="+p.User.Username())
		if pw, ok := p.User.Password(); ok {
			env = append(env, "MYSQL_PWD="+pw)
		}
	}
	return args, env
}

func mysqlCmd(u, db, sql string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args, env := MySQLArgs(u)
	args = append([]string{"--batch", "--skip-column-names", "--default-character-set=utf8mb4", "--connect-timeout=5"}, args...)
	if db != "" {
		args = append(args, "--database="+db)
	}
	cmd := exec.CommandContext(ctx, MySQLClient(), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(sql)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return errb.Bytes(), err
	}
	return out.Bytes(), nil
}

// Drills makes the tests that run restore drills take turns, across the
// test processes of every package: such a test looks for scratch
// databases on the whole server and drops leftovers by age, so it would
// see, or drop, the scratch database of a drill that a test of another
// package runs at the same time. The turn is an exclusive flock on a file
// in the temporary folder, held until the test ends.
func Drills(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "hoard-test-drills.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}
