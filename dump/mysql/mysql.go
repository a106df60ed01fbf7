// Package mysql backs up a MySQL or MariaDB database through mariadb-dump
// (or mysqldump) and restores it through the mariadb (or mysql) client.
//
// The dump is SQL text made in one consistent read (--single-transaction,
// InnoDB) with routines, triggers and events, binary columns as hex
// (--hex-blob) and utf8mb4, so that values with line breaks, NUL bytes and
// any Unicode survive. It is restored with the client in --binary-mode.
//
// Connections come from a URL (mysql://user@host:port/db?socket=...), and
// the client's own option files (~/.my.cnf) apply as usual. A password
// reaches the tools as MYSQL_PWD in their environment, never on their
// command line.
package mysql

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/hoard-backup/hoard/dump"
)

// DefaultDumpArgs are the dump options used when Config.DumpArgs is nil.
func DefaultDumpArgs() []string {
	return []string{"--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
		"--default-character-set=utf8mb4", "--no-tablespaces", "--skip-dump-date"}
}

// Config says how to reach the database and which tools to run.
type Config struct {
	// URL is a mysql:// or mariadb:// URL naming the database. Query
	// parameters become client options: ?socket=/run/mysqld/mysqld.sock
	// gives --socket=..., ?ssl-ca=... gives --ssl-ca=....
	URL string
	// Password, when not empty, replaces the URL's password.
	Password string
	// DumpCommand is the dump tool; empty means mariadb-dump, or mysqldump
	// if there is no mariadb-dump in PATH.
	DumpCommand string
	// ClientCommand is the client; empty means mariadb, else mysql.
	ClientCommand string
	// DumpArgs are the dump tool's options; nil means DefaultDumpArgs.
	DumpArgs []string
	// RestoreArgs are added to the client's options on restore.
	RestoreArgs []string
	// Stderr receives the tools' standard error as they run; may be nil.
	Stderr io.Writer
	// LookPath finds a tool in PATH; nil means exec.LookPath.
	LookPath func(string) (string, error)
}

// MySQL is one database.
type MySQL struct {
	c    Config
	conn conn
}

var _ dump.Engine = (*MySQL)(nil)

// New checks the configuration.
func New(c Config) (*MySQL, error) {
	if c.LookPath == nil {
		c.LookPath = exec.LookPath
	}
	if c.DumpCommand == "" {
		c.DumpCommand = firstInPath(c.LookPath, "mariadb-dump", "mysqldump")
	}
	if c.ClientCommand == "" {
		c.ClientCommand = firstInPath(c.LookPath, "mariadb", "mysql")
	}
	if c.DumpArgs == nil {
		c.DumpArgs = DefaultDumpArgs()
	}
	cn, err := parseURL(c.URL)
	if err != nil {
		return nil, err
	}
	if c.Password != "" {
		cn.password, cn.hasPassword = c.Password, true
	}
	if cn.db == "" {
		return nil, errors.New("mysql: the URL names no database (mysql://user@host/DATABASE)")
	}
	return &MySQL{c: c, conn: cn}, nil
}

func firstInPath(look func(string) (string, error), names ...string) string {
	for _, n := range names {
		if _, err := look(n); err == nil {
			return n
		}
	}
	return names[0]
}

// conn is how to connect, without the database.
type conn struct {
	args        []string // --host, --port, --user, options from the query
	host        string   // for the snapshot
	db          string
	password    string
	hasPassword bool
}

func parseURL(s string) (conn, error) {
	u, err := url.Parse(s)
	if err != nil {
		return conn{}, errors.New("mysql: malformed URL")
	}
	if u.Scheme != "mysql" && u.Scheme != "mariadb" {
		return conn{}, fmt.Errorf("mysql: URL scheme %q is not mysql:// or mariadb://", u.Scheme)
	}
	var c conn
	if h := u.Hostname(); h != "" {
		c.args = append(c.args, "--host="+h)
		c.host = u.Host
	}
	if p := u.Port(); p != "" {
		if _, err := strconv.Atoi(p); err != nil {
			return conn{}, fmt.Errorf("mysql: bad port %q", p)
		}
		c.args = append(c.args, "--port="+p)
	}
	if u.User != nil {
		if name := u.User.Username(); name != "" {
			c.args = append(c.args, "--user="+name)
		}
		if pw, ok := u.User.Password(); ok {
			c.password, c.hasPassword = pw, true
		}
	}
	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := q.Get(k)
		switch k {
		case "password":
			c.password, c.hasPassword = v, true
		case "socket":
			c.args = append(c.args, "--socket="+v)
			if c.host == "" {
				c.host = v
			}
		default:
			if !optionName.MatchString(k) {
				return conn{}, fmt.Errorf("mysql: URL parameter %q is not a client option", k)
			}
			c.args = append(c.args, "--"+k+"="+v)
		}
	}
	c.db = strings.TrimPrefix(u.Path, "/")
	if strings.HasPrefix(c.db, "-") {
		return conn{}, fmt.Errorf("mysql: database name %q starts with '-'", c.db)
	}
	return c, nil
}

var (
	optionName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	charsetRe  = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

func (c conn) env() []string {
	if !c.hasPassword {
		return nil
	}
	return []string{"MYSQL_PWD=" + c.password}
}

func (m *MySQL) command(tool string, c conn, args ...string) dump.Command {
	return dump.Command{Path: tool, Args: args, Env: c.env(), Stderr: m.c.Stderr}
}

// Name is dump.MySQL.
func (m *MySQL) Name() string { return dump.MySQL }

// Format is "sql": the dump is SQL text.
func (m *MySQL) Format() string { return "sql" }

// query runs SQL with the client on database db ("" for none) and returns
// the rows, fields split.
func (m *MySQL) query(ctx context.Context, c conn, db, sql string) ([][]string, error) {
	args := append([]string{"--batch", "--skip-column-names", "--default-character-set=utf8mb4"}, c.args...)
	if db != "" {
		args = append(args, "--database="+db)
	}
	args = append(args, "--execute="+sql)
	cmd := m.command(m.c.ClientCommand, c, args...)
	cmd.Stderr = nil
	out, err := cmd.Output(ctx, nil)
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows, nil
}

// literal is s as an SQL string expression that no sql_mode can misread.
func literal(s string) string {
	if s == "" {
		return "''"
	}
	return "CONVERT(X'" + hex.EncodeToString([]byte(s)) + "' USING utf8mb4)"
}

// ident quotes a name.
func ident(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// Backup starts the dump tool. It first checks that the tools run and that
// the database answers, so that a wrong password or database fails before
// any data is read.
func (m *MySQL) Backup(ctx context.Context) (io.ReadCloser, dump.Info, error) {
	tv, err := dump.Version(ctx, m.c.DumpCommand)
	if err != nil {
		return nil, dump.Info{}, err
	}
	rows, err := m.query(ctx, m.conn, m.conn.db, "SELECT VERSION(), @@character_set_database, @@collation_database")
	if err != nil {
		return nil, dump.Info{}, err
	}
	if len(rows) != 1 || len(rows[0]) != 3 {
		return nil, dump.Info{}, fmt.Errorf("mysql: unexpected answer from %s", m.c.ClientCommand)
	}
	info := dump.Info{
		Engine: dump.MySQL, Database: m.conn.db, Host: m.conn.host, ServerVersion: rows[0][0],
		Tool: m.c.DumpCommand, ToolVersion: tv, Options: append([]string(nil), m.c.DumpArgs...), Format: "sql",
		Details: map[string]string{"charset": rows[0][1], "collation": rows[0][2]},
	}
	args := append(append(append([]string(nil), m.conn.args...), m.c.DumpArgs...), "--", m.conn.db)
	s, err := m.command(m.c.DumpCommand, m.conn, args...).Start(ctx)
	if err != nil {
		return nil, dump.Info{}, err
	}
	return s, info, nil
}

// Restore loads a dump into the target database. A missing database is
// created (with the source's character set and collation) and dropped
// again if the restore fails; a non-empty one is replaced only with Force,
// by dropping it first (MySQL cannot rename a database, so a failed
// restore over an existing database leaves it partly restored).
func (m *MySQL) Restore(ctx context.Context, r io.Reader, t dump.Target) error {
	c := m.conn
	switch {
	case t.Into == "":
	case strings.Contains(t.Into, "://"):
		tc, err := parseURL(t.Into)
		if err != nil {
			return err
		}
		c = tc
	default:
		c.db = t.Into
	}
	if c.db == "" || strings.HasPrefix(c.db, "-") {
		return fmt.Errorf("mysql: bad target database name %q", c.db)
	}
	rows, err := m.query(ctx, c, "", "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = "+literal(c.db))
	if err != nil {
		return err
	}
	exists := len(rows) == 1 && len(rows[0]) == 1 && rows[0][0] != "0"
	created := false
	if exists {
		n, err := m.objects(ctx, c)
		if err != nil {
			return err
		}
		if n > 0 && !t.Force {
			return fmt.Errorf("database %q holds %d tables, views, routines or events: %w", c.db, n, dump.ErrNotEmpty)
		}
		if n > 0 {
			if _, err := m.query(ctx, c, "", "DROP DATABASE "+ident(c.db)); err != nil {
				return err
			}
			exists = false
		}
	}
	if !exists {
		create := "CREATE DATABASE " + ident(c.db)
		if t.Source != nil {
			if cs := t.Source.Details["charset"]; charsetRe.MatchString(cs) {
				create += " CHARACTER SET " + cs
			}
			if co := t.Source.Details["collation"]; charsetRe.MatchString(co) {
				create += " COLLATE " + co
			}
		}
		if _, err := m.query(ctx, c, "", create); err != nil {
			return err
		}
		created = true
	}
	args := append([]string{"--binary-mode", "--default-character-set=utf8mb4", "--max-allowed-packet=1G"}, c.args...)
	args = append(args, m.c.RestoreArgs...)
	args = append(args, "--database="+c.db)
	err = m.command(m.c.ClientCommand, c, args...).Feed(ctx, r)
	if err == nil {
		return nil
	}
	if created {
		if _, derr := m.query(context.WithoutCancel(ctx), c, "", "DROP DATABASE "+ident(c.db)); derr != nil {
			return fmt.Errorf("%w (and the partial database %q could not be dropped: %v)", err, c.db, derr)
		}
		return err
	}
	return fmt.Errorf("%w (database %q is partly restored)", err, c.db)
}

// objects counts the tables, views, routines and events of c.db.
func (m *MySQL) objects(ctx context.Context, c conn) (int, error) {
	l := literal(c.db)
	rows, err := m.query(ctx, c, "", "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "+l+
		") + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = "+l+
		") + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = "+l+")")
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return 0, fmt.Errorf("mysql: unexpected answer from %s", m.c.ClientCommand)
	}
	return strconv.Atoi(rows[0][0])
}
