// Package postgres backs up a PostgreSQL database through pg_dump and
// restores it through pg_restore (or psql, for a plain SQL dump).
//
// The default dump is pg_dump's custom format, uncompressed
// (--format=custom --compress=0): pg_restore can restore it selectively, and
// an uncompressed archive deduplicates from one day to the next (hoard
// compresses each stored chunk itself). pg_dump writes one length-prefixed
// block per row in that format, so a changed row changes only the bytes
// around it.
//
// Connections come from a URL (postgres://user@host:port/db?sslmode=...),
// else from libpq's own PG* environment variables. A password in the URL or
// the Config reaches the tools as PGPASSWORD in their environment, never on
// their command line.
package postgres

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hoard-backup/hoard/dump"
)

// Default tool names, looked up in PATH.
const (
	DefaultDumpCommand    = "pg_dump"
	DefaultRestoreCommand = "pg_restore"
	DefaultClientCommand  = "psql"
	DefaultMaintenanceDB  = "postgres"
)

// DefaultDumpArgs are the dump options used when Config.DumpArgs is nil.
func DefaultDumpArgs() []string { return []string{"--format=custom", "--compress=0"} }

// Config says how to reach the database and which tools to run.
type Config struct {
	// URL is a postgres:// or postgresql:// URL. Empty: libpq's PG*
	// environment variables (PGHOST, PGPORT, PGUSER, PGDATABASE, ...).
	URL string
	// Password, when not empty, replaces the URL's password.
	Password string
	// DumpCommand, RestoreCommand and ClientCommand are pg_dump, pg_restore
	// and psql; empty means the defaults.
	DumpCommand, RestoreCommand, ClientCommand string
	// DumpArgs are pg_dump's options; nil means DefaultDumpArgs. A plain
	// format (--format=plain) is restored through psql instead of pg_restore.
	DumpArgs []string
	// RestoreArgs are added to pg_restore's (or psql's) options, e.g.
	// --no-owner to restore on a server without the original roles.
	RestoreArgs []string
	// MaintenanceDB is the database connected to when creating, renaming
	// and dropping databases; empty means "postgres".
	MaintenanceDB string
	// Stderr receives the tools' standard error as they run; may be nil.
	Stderr io.Writer
}

// Postgres is one database.
type Postgres struct {
	c    Config
	conn conn
}

var _ dump.Engine = (*Postgres)(nil)

// New checks the configuration.
func New(c Config) (*Postgres, error) {
	if c.DumpCommand == "" {
		c.DumpCommand = DefaultDumpCommand
	}
	if c.RestoreCommand == "" {
		c.RestoreCommand = DefaultRestoreCommand
	}
	if c.ClientCommand == "" {
		c.ClientCommand = DefaultClientCommand
	}
	if c.DumpArgs == nil {
		c.DumpArgs = DefaultDumpArgs()
	}
	if c.MaintenanceDB == "" {
		c.MaintenanceDB = DefaultMaintenanceDB
	}
	cn, err := parseURL(c.URL)
	if err != nil {
		return nil, err
	}
	if c.Password != "" {
		cn.password, cn.hasPassword = c.Password, true
	}
	return &Postgres{c: c, conn: cn}, nil
}

// conn is a connection without its database: a URL with the password taken
// out of it.
type conn struct {
	u           url.URL // no password; Path is set per database
	db          string
	password    string
	hasPassword bool
}

func parseURL(s string) (conn, error) {
	if s == "" {
		return conn{u: url.URL{Scheme: "postgresql"}}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse's error repeats the URL, password included.
		return conn{}, errors.New("postgres: malformed URL")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return conn{}, fmt.Errorf("postgres: URL scheme %q is not postgres://", u.Scheme)
	}
	var c conn
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			c.password, c.hasPassword = pw, true
		}
		u.User = url.User(u.User.Username())
		if u.User.Username() == "" {
			u.User = nil
		}
	}
	q := u.Query()
	if pw := q.Get("password"); pw != "" {
		c.password, c.hasPassword = pw, true
	}
	q.Del("password")
	c.db = strings.TrimPrefix(u.Path, "/")
	if db := q.Get("dbname"); db != "" {
		c.db = db
	}
	q.Del("dbname")
	u.RawQuery = q.Encode()
	u.Path, u.RawPath = "", ""
	c.u = *u
	return c, nil
}

// url returns the connection URL for database db ("" for libpq's default).
func (c conn) url(db string) string {
	u := c.u
	u.Path = "/" + db
	return u.String()
}

// env is what the tools' environment gets: the password, if any.
func (c conn) env() []string {
	if !c.hasPassword {
		return nil
	}
	return []string{"PGPASSWORD=" + c.password}
}

// host names the server for the snapshot, without credentials.
func (c conn) host() string {
	h := c.u.Host
	if qh := c.u.Query().Get("host"); qh != "" {
		h = qh
	}
	return h
}

// command builds a run of tool with the connection's environment.
func (p *Postgres) command(tool string, c conn, args ...string) dump.Command {
	return dump.Command{Path: tool, Args: args, Env: c.env(), Stderr: p.c.Stderr}
}

// psql runs SQL (with :'name' and :"name" variables) on database db and
// returns the rows, fields split.
func (p *Postgres) psql(ctx context.Context, c conn, db, sql string, vars ...string) ([][]string, error) {
	args := []string{"-X", "-w", "-q", "-A", "-t", "--field-separator=\x1f", "-v", "ON_ERROR_STOP=1"}
	for i := 0; i+1 < len(vars); i += 2 {
		args = append(args, "-v", vars[i]+"="+vars[i+1])
	}
	args = append(args, "--dbname="+c.url(db), "-f", "-")
	cmd := p.command(p.c.ClientCommand, c, args...)
	cmd.Stderr = nil // queries' errors are returned, not shown
	out, err := cmd.Output(ctx, strings.NewReader(sql))
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\x1f"))
		}
	}
	return rows, nil
}

const probeSQL = `SELECT current_database(), current_setting('server_version'), current_setting('server_version_num'),
 pg_encoding_to_char(d.encoding), d.datcollate, d.datctype
 FROM pg_database d WHERE d.datname = current_database();`

// probe connects to the database and returns its name, server version and
// properties.
func (p *Postgres) probe(ctx context.Context, c conn, db string) (dump.Info, error) {
	rows, err := p.psql(ctx, c, db, probeSQL)
	if err != nil {
		return dump.Info{}, err
	}
	if len(rows) != 1 || len(rows[0]) != 6 {
		return dump.Info{}, fmt.Errorf("postgres: unexpected answer from %s", p.c.ClientCommand)
	}
	r := rows[0]
	return dump.Info{
		Engine: dump.Postgres, Database: r[0], Host: c.host(), ServerVersion: r[1],
		Details: map[string]string{"server_version_num": r[2], "encoding": r[3], "lc_collate": r[4], "lc_ctype": r[5]},
	}, nil
}

// Backup starts pg_dump. It first checks that the tools run and that the
// database answers, so that a wrong password or database fails before any
// data is read.
func (p *Postgres) Backup(ctx context.Context) (io.ReadCloser, dump.Info, error) {
	tv, err := dump.Version(ctx, p.c.DumpCommand)
	if err != nil {
		return nil, dump.Info{}, err
	}
	info, err := p.probe(ctx, p.conn, p.conn.db)
	if err != nil {
		return nil, dump.Info{}, err
	}
	info.Tool, info.ToolVersion = p.c.DumpCommand, tv
	info.Options = append([]string(nil), p.c.DumpArgs...)
	info.Format = dumpFormat(p.c.DumpArgs)
	args := append([]string{"--no-password"}, p.c.DumpArgs...)
	// The database probed, by name: the same one even if PGDATABASE changes.
	args = append(args, "--dbname="+p.conn.url(info.Database))
	s, err := p.command(p.c.DumpCommand, p.conn, args...).Start(ctx)
	if err != nil {
		return nil, dump.Info{}, err
	}
	return s, info, nil
}

// Name is dump.Postgres.
func (p *Postgres) Name() string { return dump.Postgres }

// Format names the format the dump options ask for.
func (p *Postgres) Format() string { return dumpFormat(p.c.DumpArgs) }

// dumpFormat names the format pg_dump's options ask for: "custom", "tar"
// or "sql" (pg_dump's default, a plain script).
func dumpFormat(args []string) string {
	f := "p"
	for i, a := range args {
		switch {
		case (a == "-F" || a == "--format") && i+1 < len(args):
			f = args[i+1]
		case strings.HasPrefix(a, "--format="):
			f = strings.TrimPrefix(a, "--format=")
		case strings.HasPrefix(a, "-F") && len(a) > 2:
			f = a[2:]
		}
	}
	switch {
	case strings.HasPrefix(f, "c"):
		return "custom"
	case strings.HasPrefix(f, "t"):
		return "tar"
	}
	return "sql"
}

// Restore loads a dump into the target database. A new database, or a
// non-empty one being replaced (Force), is restored under a temporary name
// and renamed when the restore succeeded, so that a failed restore leaves
// the target as it was. An existing empty database is restored into
// directly, in a single transaction.
func (p *Postgres) Restore(ctx context.Context, r io.Reader, t dump.Target) error {
	c, err := p.target(t.Into)
	if err != nil {
		return err
	}
	if c.db == "" {
		return errors.New("postgres: no database to restore into (give one in the URL or --into)")
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("postgres: reading the dump: %w", err)
	}
	// pg_dump's SQL scripts start with a comment; archives (custom, tar)
	// go to pg_restore.
	archive := !bytes.Equal(head, []byte("--"))

	maint := p.c.MaintenanceDB
	rows, err := p.psql(ctx, c, maint, `SELECT current_setting('server_version_num')::int,
 (SELECT count(*) FROM pg_database WHERE datname = :'target');`, "target", c.db)
	if err != nil {
		return err
	}
	if len(rows) != 1 || len(rows[0]) != 2 {
		return fmt.Errorf("postgres: unexpected answer from %s", p.c.ClientCommand)
	}
	versionNum, _ := strconv.Atoi(rows[0][0])
	exists := rows[0][1] != "0"
	if exists {
		n, err := p.objects(ctx, c, c.db)
		if err != nil {
			return err
		}
		if n == 0 {
			return p.load(ctx, c, c.db, br, archive, true)
		}
		if !t.Force {
			return fmt.Errorf("database %q holds %d objects: %w", c.db, n, dump.ErrNotEmpty)
		}
	}
	tmp, err := tempName(c.db)
	if err != nil {
		return err
	}
	create := `CREATE DATABASE :"tmp" TEMPLATE template0`
	vars := []string{"tmp", tmp}
	if t.Source != nil && t.Source.Details["encoding"] != "" {
		d := t.Source.Details
		create += ` ENCODING :'enc' LC_COLLATE :'coll' LC_CTYPE :'ctype'`
		vars = append(vars, "enc", d["encoding"], "coll", d["lc_collate"], "ctype", d["lc_ctype"])
	}
	if _, err := p.psql(ctx, c, maint, create+";", vars...); err != nil {
		return err
	}
	if err := p.load(ctx, c, tmp, br, archive, false); err != nil {
		// ctx may be cancelled: clean up regardless.
		if _, derr := p.psql(context.WithoutCancel(ctx), c, maint, `DROP DATABASE IF EXISTS :"tmp";`, "tmp", tmp); derr != nil {
			return fmt.Errorf("%w (and the partial database %q could not be dropped: %v)", err, tmp, derr)
		}
		return err
	}
	return p.swap(ctx, c, tmp, exists, versionNum)
}

// target resolves Target.Into: "" is the configured database, a URL is
// another server, anything else a database name on the configured server.
func (p *Postgres) target(into string) (conn, error) {
	switch {
	case into == "":
		return p.conn, nil
	case strings.Contains(into, "://"):
		return parseURL(into)
	}
	c := p.conn
	c.db = into
	return c, nil
}

const objectsSQL = `SELECT
 (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)')
 + (SELECT count(*) FROM pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
 + (SELECT count(*) FROM pg_namespace WHERE nspname NOT IN ('public', 'information_schema') AND nspname !~ '^pg_')
 + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql');`

// objects counts what a database holds besides the empty defaults.
func (p *Postgres) objects(ctx context.Context, c conn, db string) (int, error) {
	rows, err := p.psql(ctx, c, db, objectsSQL)
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return 0, fmt.Errorf("postgres: unexpected answer from %s", p.c.ClientCommand)
	}
	return strconv.Atoi(rows[0][0])
}

// load feeds the dump to pg_restore (an archive) or psql (SQL text).
func (p *Postgres) load(ctx context.Context, c conn, db string, r io.Reader, archive, single bool) error {
	var cmd dump.Command
	if archive {
		args := []string{"--no-password", "--exit-on-error"}
		if single {
			args = append(args, "--single-transaction")
		}
		args = append(args, p.c.RestoreArgs...)
		args = append(args, "--dbname="+c.url(db))
		cmd = p.command(p.c.RestoreCommand, c, args...)
	} else {
		args := []string{"-X", "-w", "-q", "-v", "ON_ERROR_STOP=1"}
		if single {
			args = append(args, "--single-transaction")
		}
		args = append(args, p.c.RestoreArgs...)
		args = append(args, "--dbname="+c.url(db), "-f", "-")
		cmd = p.command(p.c.ClientCommand, c, args...)
	}
	return cmd.Feed(ctx, r)
}

// swap gives the restored database tmp the target's name, dropping the old
// target first if there is one. Autovacuum may be connected to tmp: new
// connections are refused and renaming is retried for a while.
func (p *Postgres) swap(ctx context.Context, c conn, tmp string, exists bool, versionNum int) error {
	maint := p.c.MaintenanceDB
	if _, err := p.psql(ctx, c, maint, `ALTER DATABASE :"tmp" ALLOW_CONNECTIONS false;`, "tmp", tmp); err != nil {
		return fmt.Errorf("restored into %q, but: %w", tmp, err)
	}
	if exists {
		drop := `DROP DATABASE :"target" WITH (FORCE);`
		if versionNum < 130000 {
			drop = `DROP DATABASE :"target";`
		}
		if _, err := p.psql(ctx, c, maint, drop, "target", c.db); err != nil {
			return fmt.Errorf("restored into %q, but the old %q could not be dropped: %w", tmp, c.db, err)
		}
	}
	var err error
	for try := 0; try < 30; try++ {
		// Best effort: only a superuser may stop an autovacuum worker.
		_, _ = p.psql(ctx, c, maint, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :'tmp' AND pid <> pg_backend_pid();`, "tmp", tmp)
		_, err = p.psql(ctx, c, maint, `ALTER DATABASE :"tmp" RENAME TO :"target";
ALTER DATABASE :"target" ALLOW_CONNECTIONS true;`, "tmp", tmp, "target", c.db)
		var te *dump.ToolError
		if err == nil || !errors.As(err, &te) || !strings.Contains(te.Stderr, "being accessed by other users") {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		return fmt.Errorf("restored into %q, but it could not be renamed to %q: %w", tmp, c.db, err)
	}
	return nil
}

// tempName is a fresh database name for restoring db.
func tempName(db string) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	suffix := "_hoard_" + hex.EncodeToString(b[:])
	// Identifiers are at most 63 bytes; cut at a rune boundary.
	for len(db)+len(suffix) > 63 {
		_, size := lastRune(db)
		db = db[:len(db)-size]
	}
	return db + suffix, nil
}

func lastRune(s string) (rune, int) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i]&0xc0 != 0x80 {
			return rune(s[i]), len(s) - i
		}
	}
	return 0, len(s)
}
