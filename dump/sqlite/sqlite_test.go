package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/dump/sqlite"
	"github.com/hoard-backup/hoard/internal/testenv"
)

func needSQLite(t *testing.T) {
	t.Helper()
	testenv.NeedPrograms(t, "sqlite3")
}

// run runs sqlite3 on db with SQL on standard input.
func run(t *testing.T, db, sql string) string {
	t.Helper()
	cmd := exec.Command("sqlite3", "-init", "/dev/null", "-batch", "-bail", db)
	cmd.Stdin = strings.NewReader(sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %s: %v\n%s", db, err, out)
	}
	return strings.TrimSpace(string(out))
}

const fixture = `
PRAGMA journal_mode = WAL;
CREATE TABLE kinds (id INTEGER PRIMARY KEY AUTOINCREMENT, t TEXT, b BLOB, j TEXT CHECK (j IS NULL OR json_valid(j)), ts TEXT, n NUMERIC, f REAL);
CREATE INDEX kinds_ts ON kinds (ts);
INSERT INTO kinds (t, b, j, ts, n, f) VALUES
  ('line one' || char(10) || 'line two', x'00', '{"a": [1, "two\nlines", null]}', '2026-03-29T01:30:00+01:00', 12345678901234567890, 1.5e300),
  ('crlf' || char(13, 10) || 'tab' || char(9) || 'end', x'000102ff00', '[]', '1999-12-31T23:59:59.999999-08:00', -0.000000000001, -0.0),
  ('quotes '' " \\ end', x'', 'null', NULL, NULL, NULL),
  ('unicode café 日本語 ☕ 🎉', NULL, NULL, NULL, NULL, NULL),
  ('', NULL, NULL, NULL, NULL, NULL),
  (NULL, x'', NULL, NULL, NULL, NULL),
  ('with a NUL' || char(0) || 'inside', zeroblob(10), NULL, NULL, NULL, NULL);
INSERT INTO kinds (t, b) SELECT hex(randomblob(800000)), randomblob(1500000) FROM (SELECT 1 UNION ALL SELECT 2);
DELETE FROM kinds WHERE id = (SELECT max(id) FROM kinds);
CREATE VIEW long_texts AS SELECT id, length(t) AS len FROM kinds WHERE length(t) > 1000;
CREATE TABLE audit (id INTEGER PRIMARY KEY, kind_id INTEGER);
CREATE TRIGGER kinds_audit AFTER INSERT ON kinds BEGIN INSERT INTO audit (kind_id) VALUES (NEW.id); END;
INSERT INTO kinds (t) VALUES ('after the trigger');
PRAGMA user_version = 42;
`

func backup(t *testing.T, s *sqlite.SQLite) ([]byte, dump.Info) {
	t.Helper()
	rc, info, err := s.Backup(context.Background())
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	return data, info
}

func TestRoundTrip(t *testing.T) {
	needSQLite(t)
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "app.db")
	run(t, src, fixture)
	s, err := sqlite.New(sqlite.Config{Path: src, TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	data, info := backup(t, s)
	if info.Engine != dump.SQLite || info.Format != "sqlite" || info.ServerVersion == "" || info.Database != src {
		t.Errorf("info %+v", info)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "hoard-sqlite-*")); len(left) > 0 {
		t.Errorf("temporary copies left: %v", left)
	}
	// A consistent copy made by hand from a read-only connection, as the
	// backup makes it, is the same bytes. (From a read-write connection
	// VACUUM INTO lays index pages out differently: same content, other
	// bytes.)
	ref := filepath.Join(dir, "ref.db")
	if out, err := exec.Command("sqlite3", "-init", "/dev/null", "-readonly", src, "VACUUM INTO '"+ref+"'").CombinedOutput(); err != nil {
		t.Fatalf("VACUUM INTO: %v: %s", err, out)
	}
	run(t, ref, "PRAGMA journal_mode = WAL;") // VACUUM INTO drops it; the backup keeps it
	want, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, want) {
		t.Fatalf("backup (%d bytes) differs from VACUUM INTO (%d bytes)", len(data), len(want))
	}

	dst := filepath.Join(dir, "restored", "app.db")
	if err := os.Mkdir(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(context.Background(), bytes.NewReader(data), dump.Target{Into: dst}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("restored file differs from the backup")
	}
	if res := run(t, dst, "PRAGMA integrity_check;"); res != "ok" {
		t.Fatalf("integrity_check: %s", res)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	for _, q := range []string{
		".dump",
		"PRAGMA user_version; PRAGMA journal_mode;",
		"INSERT INTO kinds (t) VALUES ('x'); SELECT last_insert_rowid(), (SELECT count(*) FROM audit);",
	} {
		if a, b := run(t, src, q), run(t, dst, q); a != b {
			t.Errorf("%.40s: source and restored differ:\n%.300s\n%.300s", q, a, b)
		}
	}

	// Not over a non-empty file without Force; with it, replaced.
	if err := s.Restore(context.Background(), bytes.NewReader(data), dump.Target{Into: dst}); !errors.Is(err, dump.ErrNotEmpty) {
		t.Fatalf("restore over a database: %v, want ErrNotEmpty", err)
	}
	if err := s.Restore(context.Background(), bytes.NewReader(data), dump.Target{Into: dst, Force: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatal("forced restore: file differs")
	}

	// A damaged database fails integrity_check and the target stays.
	bad := append([]byte(nil), data...)
	for i := 8192; i < len(bad) && i < 8192+4096; i++ {
		bad[i] ^= 0x5a
	}
	err = s.Restore(context.Background(), bytes.NewReader(bad), dump.Target{Into: dst, Force: true})
	if err == nil {
		t.Fatal("a damaged database was restored")
	}
	t.Log(err)
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatal("a failed restore changed the target")
	}
}

// TestConcurrentWriter backs up a database while another process moves
// money between accounts: every copy must hold the same total.
func TestConcurrentWriter(t *testing.T) {
	needSQLite(t)
	for _, mode := range []string{"wal", "delete"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := filepath.Join(dir, "bank.db")
			const accounts, start = 200, 1000
			run(t, src, fmt.Sprintf(`PRAGMA journal_mode = %s;
CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) INSERT INTO accounts SELECT i, %d FROM n;
CREATE TABLE filler (x BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) INSERT INTO filler SELECT randomblob(65536) FROM n;`, mode, accounts, start))

			// The writer: one sqlite3 process fed transfers as fast as it takes them.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := exec.CommandContext(ctx, "sqlite3", "-init", "/dev/null", "-batch", src)
			in, err := w.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			w.Stderr = &stderr
			if err := w.Start(); err != nil {
				t.Fatal(err)
			}
			var sent atomic.Int64
			writerDone := make(chan struct{})
			go func() {
				defer close(writerDone)
				bw := bufio.NewWriter(in)
				fmt.Fprintln(bw, ".timeout 20000")
				rng := rand.New(rand.NewPCG(1, 2))
				for ctx.Err() == nil {
					a, b, amt := 1+rng.IntN(accounts), 1+rng.IntN(accounts), 1+rng.IntN(50)
					fmt.Fprintf(bw, "BEGIN IMMEDIATE; UPDATE accounts SET balance = balance - %d WHERE id = %d; "+
						"UPDATE accounts SET balance = balance + %d WHERE id = %d; INSERT INTO filler VALUES (randomblob(%d)); COMMIT;\n",
						amt, a, amt, b, 100*amt)
					if err := bw.Flush(); err != nil {
						return
					}
					sent.Add(1)
				}
			}()
			t.Cleanup(func() {
				cancel()
				in.Close()
				<-writerDone
				_ = w.Wait()
			})

			s, err := sqlite.New(sqlite.Config{Path: src, TempDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			for i := 0; i < 4; i++ {
				before := sent.Load()
				data, _ := backup(t, s)
				dst := filepath.Join(dir, fmt.Sprintf("restored-%d.db", i))
				if err := s.Restore(context.Background(), bytes.NewReader(data), dump.Target{Into: dst}); err != nil {
					t.Fatalf("restore %d: %v", i, err)
				}
				got := run(t, dst, "SELECT count(*), sum(balance) FROM accounts; PRAGMA integrity_check;")
				if want := fmt.Sprintf("%d|%d\nok", accounts, accounts*start); got != want {
					t.Fatalf("copy %d: %q, want %q", i, got, want)
				}
				moved := run(t, dst, fmt.Sprintf("SELECT count(*) FROM accounts WHERE balance <> %d;", start))
				t.Logf("copy %d: %d bytes, %s accounts changed, %d transfers sent during the backup", i, len(data), moved, sent.Load()-before)
			}
			if sent.Load() < 10 {
				t.Errorf("the writer made only %d transfers: %s", sent.Load(), stderr.String())
			}
		})
	}
}

func TestFailures(t *testing.T) {
	needSQLite(t)
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "x.db")
	run(t, db, "CREATE TABLE t (x);")
	for _, tc := range []struct {
		name string
		c    sqlite.Config
		want string
	}{
		{"tool missing", sqlite.Config{Path: db, Command: "/nonexistent/sqlite3"}, "/nonexistent/sqlite3"},
		{"file missing", sqlite.Config{Path: filepath.Join(dir, "missing.db")}, "no such file"},
		{"not a database", sqlite.Config{Path: "/etc/passwd", TempDir: dir}, "not a database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlite.New(tc.c)
			if err != nil {
				t.Fatal(err)
			}
			rc, _, err := s.Backup(context.Background())
			if err == nil {
				rc.Close()
				t.Fatal("backup succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("backing up a missing file created it")
	}
}
