package mysql_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/dump/dumptest"
	"github.com/hoard-backup/hoard/dump/mysql"
)

func newMy(t *testing.T, c mysql.Config) *mysql.MySQL {
	t.Helper()
	m, err := mysql.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func backup(t *testing.T, m *mysql.MySQL) ([]byte, dump.Info) {
	t.Helper()
	rc, info, err := m.Backup(context.Background())
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
	admin := dumptest.MySQL(t)
	t.Parallel()
	srcName, src := dumptest.NewMySQLDB(t, admin)
	dumptest.MySQLExec(t, admin, srcName, dumptest.MySQLFixture)
	want := dumptest.MySQLState(t, admin, srcName)

	m := newMy(t, mysql.Config{URL: src})
	data, info := backup(t, m)
	if info.Engine != dump.MySQL || info.Format != "sql" || info.ServerVersion == "" || info.ToolVersion == "" ||
		info.Details["charset"] != "utf8mb4" || info.Details["collation"] != "utf8mb4_bin" {
		t.Errorf("info: %+v", info)
	}
	t.Logf("dump: %d bytes; info %+v", len(data), info)

	fresh := dumptest.Name("hoard_test")
	dumptest.DropMySQLDBLater(t, admin, fresh)
	if err := m.Restore(context.Background(), bytes.NewReader(data), dump.Target{Into: fresh, Source: &info}); err != nil {
		t.Fatalf("restore into a new database: %v", err)
	}
	got := dumptest.MySQLState(t, admin, fresh)
	dumptest.EqualState(t, want, got)
	if cs := dumptest.MySQLExec(t, admin, "", "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '"+fresh+"'"); cs != "utf8mb4_bin" {
		t.Errorf("restored database's collation %q", cs)
	}
	// AUTO_INCREMENT continues past the deleted last row; the trigger fires.
	for _, q := range []string{
		"INSERT INTO kinds (t) VALUES ('new'); SELECT LAST_INSERT_ID(), (SELECT COUNT(*) FROM audit)",
		"INSERT INTO child (kind_id, label) VALUES (1, 'new'); SELECT LAST_INSERT_ID()",
	} {
		if s, d := dumptest.MySQLExec(t, admin, srcName, q), dumptest.MySQLExec(t, admin, fresh, q); s != d {
			t.Errorf("%s: restored %q, source %q", q, d, s)
		}
	}

	// Not over a non-empty database without Force; with it, replaced.
	if err := m.Restore(context.Background(), bytes.NewReader(data), dump.Target{Into: fresh}); !errors.Is(err, dump.ErrNotEmpty) {
		t.Fatalf("restore over a non-empty database: %v, want ErrNotEmpty", err)
	}
	dumptest.MySQLExec(t, admin, fresh, "CREATE TABLE extra (x INT)")
	if err := m.Restore(context.Background(), bytes.NewReader(data), dump.Target{Into: fresh, Force: true, Source: &info}); err != nil {
		t.Fatalf("forced restore: %v", err)
	}
	dumptest.EqualState(t, want, dumptest.MySQLState(t, admin, fresh))
}

// A failed restore into a new database leaves no database behind.
func TestRestoreFailureLeavesNothing(t *testing.T) {
	admin := dumptest.MySQL(t)
	t.Parallel()
	srcName, src := dumptest.NewMySQLDB(t, admin)
	dumptest.MySQLExec(t, admin, srcName, "CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('a'), ('b');")
	m := newMy(t, mysql.Config{URL: src})
	data, _ := backup(t, m)
	fresh := dumptest.Name("hoard_test")
	dumptest.DropMySQLDBLater(t, admin, fresh)
	for name, r := range map[string]io.Reader{
		"bad SQL": io.MultiReader(bytes.NewReader(data), strings.NewReader("\nTHIS IS NOT SQL;\n")),
		"failing": io.MultiReader(bytes.NewReader(data[:len(data)/2]), errReader{}),
	} {
		err := m.Restore(context.Background(), r, dump.Target{Into: fresh})
		if err == nil {
			t.Fatalf("%s: restore succeeded", name)
		}
		t.Logf("%s: %v", name, err)
		if n := dumptest.MySQLExec(t, admin, "", "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '"+fresh+"'"); n != "0" {
			t.Errorf("%s: database left behind", name)
		}
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// mysqlUser makes a user with a password, allowed on database db.
func mysqlUser(t *testing.T, admin, db string) (user, password string) {
	user, password = dumptest.Name("hoard_u"), "right-pw"
	dumptest.MySQLExec(t, admin, "", "CREATE USER '"+user+"'@'%' IDENTIFIED BY '"+password+"'; CREATE USER '"+user+"'@'localhost' IDENTIFIED BY '"+password+"'; "+
		"GRANT ALL ON `"+db+"`.* TO '"+user+"'@'%'; GRANT ALL ON `"+db+"`.* TO '"+user+"'@'localhost';")
	t.Cleanup(func() {
		dumptest.MySQLExec(t, admin, "", "DROP USER IF EXISTS '"+user+"'@'%'; DROP USER IF EXISTS '"+user+"'@'localhost';")
	})
	return user, password
}

func TestPasswordNotOnCommandLine(t *testing.T) {
	admin := dumptest.MySQL(t)
	t.Parallel()
	db, _ := dumptest.NewMySQLDB(t, admin)
	user, pw := mysqlUser(t, admin, db)
	dir := t.TempDir()
	wrap := func(tool string) string {
		p := filepath.Join(dir, tool)
		script := "#!/bin/sh\necho \"$*\" >> " + filepath.Join(dir, "argv") + "\necho \"$MYSQL_PWD\" >> " + filepath.Join(dir, "env") + "\nexec " + tool + " \"$@\"\n"
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	u := "mysql://" + user + ":" + pw + "@127.0.0.1:3306/" + db
	m := newMy(t, mysql.Config{URL: u, DumpCommand: wrap("mariadb-dump"), ClientCommand: wrap(dumptest.MySQLClient())})
	backup(t, m)
	argv, _ := os.ReadFile(filepath.Join(dir, "argv"))
	env, _ := os.ReadFile(filepath.Join(dir, "env"))
	if bytes.Contains(argv, []byte(pw)) {
		t.Errorf("password on a command line:\n%s", argv)
	}
	if !bytes.Contains(env, []byte(pw)) {
		t.Errorf("MYSQL_PWD not set: %q", env)
	}
}

func TestBackupFailures(t *testing.T) {
	admin := dumptest.MySQL(t)
	t.Parallel()
	db, src := dumptest.NewMySQLDB(t, admin)
	user, _ := mysqlUser(t, admin, db)
	for _, tc := range []struct {
		name string
		c    mysql.Config
		want string
	}{
		{"wrong password", mysql.Config{URL: "mysql://" + user + ":wrong-pw@127.0.0.1:3306/" + db}, "Access denied for user '" + user + "'"},
		{"wrong password from Config", mysql.Config{URL: "mysql://" + user + "@127.0.0.1:3306/" + db, Password: "wrong-pw"}, "Access denied"},
		{"unknown database", mysql.Config{URL: dumptest.WithDB(admin, db+"_missing")}, "Unknown database '" + db + "_missing'"},
		{"dump tool missing", mysql.Config{URL: src, DumpCommand: "/nonexistent/mariadb-dump"}, "/nonexistent/mariadb-dump"},
		{"server refuses", mysql.Config{URL: "mysql://root@127.0.0.1:1/x"}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMy(t, tc.c)
			rc, _, err := m.Backup(context.Background())
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
			if strings.Contains(err.Error(), "wrong-pw") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func bigDB(t *testing.T, admin string) (string, string) {
	name, u := dumptest.NewMySQLDB(t, admin)
	dumptest.MySQLExec(t, admin, name, `CREATE TABLE big (i INT PRIMARY KEY, t TEXT) ENGINE=InnoDB;
/*M! SET SESSION max_recursive_iterations = 1000000 */;
INSERT INTO big WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 200000)
  SELECT i, REPEAT(MD5(i), 4) FROM seq;`)
	return name, u
}

func startAndRead(t *testing.T, m *mysql.MySQL) io.ReadCloser {
	t.Helper()
	rc, _, err := m.Backup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	return rc
}

func TestServerGoneMidDump(t *testing.T) {
	admin := dumptest.MySQL(t)
	t.Parallel()
	name, src := bigDB(t, admin)
	m := newMy(t, mysql.Config{URL: src})
	rc := startAndRead(t, m)
	var id string
	for i := 0; i < 50 && id == ""; i++ {
		id = dumptest.MySQLExec(t, admin, "", "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '"+name+"' AND INFO LIKE 'SELECT%big%'")
		if id == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if id == "" {
		t.Fatal("no dump connection found")
	}
	dumptest.MySQLExec(t, admin, "", "KILL "+id)
	_, _ = io.Copy(io.Discard, rc)
	err := rc.Close()
	var te *dump.ToolError
	if !errors.As(err, &te) || !strings.Contains(te.Stderr, "big") {
		t.Fatalf("error %v, want the dump tool's message about table big", err)
	}
	t.Log(err)
}

func TestToolKilled(t *testing.T) {
	admin := dumptest.MySQL(t)
	t.Parallel()
	_, src := bigDB(t, admin)
	m := newMy(t, mysql.Config{URL: src})
	rc := startAndRead(t, m)
	if err := syscall.Kill(rc.(*dump.Stream).Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, rc)
	if err := rc.Close(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("error %v, want the dump tool killed", err)
	}
}
