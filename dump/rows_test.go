package dump_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/dump/dumptest"
	"github.com/hoard-backup/hoard/dump/mysql"
	"github.com/hoard-backup/hoard/dump/postgres"
	"github.com/hoard-backup/hoard/dump/sqlite"
)

// tricky* are tables whose text holds what trips a naive counter: line
// breaks, quotes of every kind, backslashes, semicolons and parentheses,
// lines that look like COPY's end marker or like SQL statements, binary
// data, plus empty tables and names that need quoting.
const trickyPG = `
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Ta""ble; (x)" (id int, t text, b bytea);
INSERT INTO "Odd Schema"."Ta""ble; (x)" VALUES
 (1, E'semi; colon (paren) '' quote " dq \\ back\\slash', '\x00ff5c2e0a'::bytea),
 (2, E'line\n\\.\nlooks like the end\n\\.', E'\\x5c2e'::bytea),
 (3, E'INSERT INTO t VALUES (1),(2);\nCOPY x FROM stdin;', NULL),
 (4, '$$ dollar $tag$ ( ( (', ''::bytea),
 (5, NULL, NULL);
CREATE TABLE public.empty (id int);
CREATE TABLE "UPPER" (t text);
INSERT INTO "UPPER" SELECT repeat(E'(\n'';\\', i) FROM generate_series(1, 50) i;
CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY, t text);
INSERT INTO ident (t) VALUES ('a'), ('b'), ('c');
CREATE TABLE nocols ();
INSERT INTO nocols DEFAULT VALUES;
INSERT INTO nocols DEFAULT VALUES;
CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $body$ SELECT 'COPY public.kinds FROM stdin;' $body$;
`

const trickyMy = `
CREATE TABLE ` + "`Ta``ble; (x)`" + ` (id INT, t TEXT, b BLOB);
INSERT INTO ` + "`Ta``ble; (x)`" + ` VALUES
 (1, 'semi; colon (paren) \' quote " dq \\ back\\slash', 0x00ff5c2e0a),
 (2, 'line\n),(\nlooks like a tuple\n', NULL),
 (3, 'INSERT INTO t VALUES (1),(2);', ''),
 (4, '\\', 'x'),
 (5, NULL, NULL);
CREATE TABLE empty (id INT);
CREATE TABLE big (id INT PRIMARY KEY, t MEDIUMTEXT);
INSERT INTO big SELECT seq, REPEAT('(\'),;\\\n', seq % 500) FROM seq_1_to_3000;
`

const trickySQLite = `
CREATE TABLE "Ta""ble; (x)" (id, t, b);
INSERT INTO "Ta""ble; (x)" VALUES
 (1, 'semi; colon (paren) '' quote " dq \ back\slash', x'00ff5c2e0a'),
 (2, 'line' || char(10) || '),(' || char(13,10) || 'looks like a tuple', NULL),
 (3, 'INSERT INTO t VALUES (1),(2);', ''),
 (4, '\', zeroblob(3)),
 (5, NULL, NULL);
CREATE TABLE empty (id);
CREATE TABLE auto (id INTEGER PRIMARY KEY AUTOINCREMENT, t);
INSERT INTO auto (t) VALUES ('a'), ('b');
CREATE TABLE [brackets] (t);
INSERT INTO brackets VALUES ('a'), ('b');
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 2000)
  INSERT INTO brackets SELECT 'row ' || i || char(10) || ''');(' FROM s;
`

// countIn counts the rows of a dump written in pieces of size step.
func countIn(t *testing.T, engine, format string, data []byte, step int) map[string]int64 {
	t.Helper()
	c := dump.NewRowCounter(engine, format)
	for p := data; len(p) > 0; {
		n := min(step, len(p))
		if _, err := c.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	rows, err := c.Rows()
	if err != nil {
		t.Fatalf("%s, pieces of %d: %v", engine, step, err)
	}
	return rows
}

// sameRows compares a fingerprint with the database's counts: a table the
// dump has no rows of may be missing from the fingerprint.
func sameRows(t *testing.T, what string, fp, db map[string]int64) {
	t.Helper()
	for n, v := range db {
		if got, ok := fp[n]; got != v || (!ok && v != 0) {
			t.Errorf("%s: table %q: counted %d (present %v), the database has %d", what, n, got, ok, v)
		}
	}
	for n := range fp {
		if _, ok := db[n]; !ok {
			t.Errorf("%s: counted table %q, which the database does not have", what, n)
		}
	}
}

func checkDump(t *testing.T, engine string, data []byte, want map[string]int64) {
	t.Helper()
	checkFormat(t, engine, "sql", data, want)
}

func checkFormat(t *testing.T, engine, format string, data []byte, want map[string]int64) {
	t.Helper()
	if len(want) < 3 {
		t.Fatalf("the database has too few tables: %v", want)
	}
	for _, step := range []int{1, 2, 3, 7, 64, 4093, len(data)} {
		sameRows(t, engine, countIn(t, engine, format, data, step), want)
	}
	// Through the tee, as a backup reads it.
	rc, fp := dump.Fingerprinted(io.NopCloser(bytes.NewReader(data)), dump.Info{Engine: engine, Format: format})
	if !fp.IsZero() {
		t.Fatal("a fingerprint before the stream was read")
	}
	if _, err := io.Copy(io.Discard, iotestHalf{rc}); err != nil {
		t.Fatal(err)
	}
	if fp.IsZero() {
		t.Fatal("no fingerprint after the stream ended")
	}
	sameRows(t, engine+" (tee)", fp.Rows, want)
	// A dump cut short is not counted.
	for _, cut := range []int{len(data) / 2, len(data) / 3} {
		c := dump.NewRowCounter(engine, format)
		_, _ = c.Write(data[:cut])
		if rows, err := c.Rows(); err == nil && maps.Equal(rows, want) {
			t.Errorf("%s: a dump cut at %d of %d counts whole: %v", engine, cut, len(data), rows)
		}
	}
}

// iotestHalf reads in small, uneven pieces.
type iotestHalf struct{ r io.Reader }

func (h iotestHalf) Read(p []byte) (int, error) {
	return h.r.Read(p[:min(len(p), 1000+len(p)%333)])
}

func readDump(t *testing.T, e dump.Engine) []byte {
	t.Helper()
	rc, _, err := e.Backup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestRowCounterPostgres(t *testing.T) {
	admin := dumptest.Postgres(t)
	_, u := dumptest.NewPostgresDB(t, admin)
	dumptest.PSQL(t, u, dumptest.PostgresFixture+trickyPG)
	p, err := postgres.New(postgres.Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	want, err := p.Tables(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if want["Odd Schema.Ta\"ble; (x)"] != 5 || want["public.nocols"] != 2 || want["public.empty"] != 0 || want["public.ident"] != 3 {
		t.Fatalf("fixture: %v", want)
	}
	for _, args := range [][]string{{"--format=custom", "--compress=0"}, {"--format=custom", "--compress=0", "--inserts"}, {"--format=plain"}, {"--format=plain", "--inserts"},
		{"--format=plain", "--column-inserts", "--rows-per-insert=7"}, {"--format=plain", "--inserts", "--on-conflict-do-nothing"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			p, err := postgres.New(postgres.Config{URL: u, DumpArgs: args})
			if err != nil {
				t.Fatal(err)
			}
			checkFormat(t, dump.Postgres, p.Format(), readDump(t, p), want)
		})
	}
}

func TestRowCounterMySQL(t *testing.T) {
	admin := dumptest.MySQL(t)
	name, u := dumptest.NewMySQLDB(t, admin)
	dumptest.MySQLExec(t, admin, name, dumptest.MySQLFixture+trickyMy)
	m, err := mysql.New(mysql.Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Tables(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if want["Ta`ble; (x)"] != 5 || want["big"] != 3000 || want["empty"] != 0 {
		t.Fatalf("fixture: %v", want)
	}
	for _, args := range [][]string{nil, append(mysql.DefaultDumpArgs(), "--skip-extended-insert"),
		append(mysql.DefaultDumpArgs(), "--complete-insert", "--insert-ignore", "--net-buffer-length=4096"),
		append(mysql.DefaultDumpArgs(), "--replace", "--skip-hex-blob", "--compact")} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			m, err := mysql.New(mysql.Config{URL: u, DumpArgs: args})
			if err != nil {
				t.Fatal(err)
			}
			checkDump(t, dump.MySQL, readDump(t, m), want)
		})
	}
}

// TestRowCounterSQLite counts sqlite3's .dump (SQL text; hoard's own
// SQLite backup copies the database file, which has no counter).
func TestRowCounterSQLite(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	cmd := exec.Command("sqlite3", db)
	cmd.Stdin = strings.NewReader(trickySQLite)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v: %s", err, out)
	}
	s, err := sqlite.New(sqlite.Config{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Tables(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if want["Ta\"ble; (x)"] != 5 || want["brackets"] != 2002 {
		t.Fatalf("fixture: %v", want)
	}
	data, err := exec.Command("sqlite3", db, ".dump").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("replace(")) && !bytes.Contains(data, []byte("\n'")) {
		t.Logf("note: this sqlite3 writes line breaks neither raw nor with replace()")
	}
	checkDump(t, dump.SQLite, data, want)
	if dump.NewRowCounter(dump.SQLite, "sqlite") != nil || dump.NewRowCounter(dump.Postgres, "tar") != nil {
		t.Error("a counter for a format it cannot read")
	}
}

// TestRowCounterHostile: bytes that are no dump give an error or counts,
// never a panic, and a counter that gives up says so.
func TestRowCounterHostile(t *testing.T) {
	for _, s := range []string{"INSERT INTO t VALUES ('unterminated", "COPY public.t (a) FROM stdin;\n1\n2\n",
		"INSERT INTO t VALUES (1", "CREATE FUNCTION f() AS $x$ ;", "/* open comment"} {
		for _, e := range []string{dump.Postgres, dump.MySQL, dump.SQLite} {
			if e != dump.Postgres && (strings.Contains(s, "$x$") || strings.HasPrefix(s, "COPY")) {
				continue
			}
			c := dump.NewRowCounter(e, "sql")
			_, _ = c.Write([]byte(s))
			if _, err := c.Rows(); !errors.Is(err, dump.ErrCount) {
				t.Errorf("%s %q: %v", e, s, err)
			}
		}
	}
	var b bytes.Buffer
	for i := 0; i < 1<<16+1; i++ {
		b.WriteString("INSERT INTO t")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(strings.Repeat("y", i/26%100))
		b.WriteString(string(rune('a' + i/2600%26)))
		b.WriteString(" VALUES (1);\n")
	}
	c := dump.NewRowCounter(dump.MySQL, "sql")
	_, _ = c.Write(b.Bytes())
	if _, err := c.Rows(); !errors.Is(err, dump.ErrCount) {
		t.Errorf("%d tables: %v", 1<<16+1, err)
	}
}
