package postgres

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hoard-backup/hoard/dump"
)

var _ dump.Checker = (*Postgres)(nil)

// DefaultAmcheckCommand is PostgreSQL's checker of tables and B-tree
// indexes; Check runs it when it is installed.
const DefaultAmcheckCommand = "pg_amcheck"

// countSQL writes the query that counts every user table's rows. ONLY:
// each table's own rows, as its dump's COPY block holds them; a partitioned
// or inheritance parent's count would include its children's rows, which
// the dump holds under the children's names.
const countSQL = `SELECT coalesce(string_agg(format('SELECT %L, count(*) FROM ONLY %I.%I', schemaname || '.' || tablename,
 schemaname, tablename), ' UNION ALL '), '')
 FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema');`

// Tables counts the rows of every table outside the system schemas, named
// schema.table.
func (p *Postgres) Tables(ctx context.Context, into string) (map[string]int64, error) {
	c, err := p.target(into)
	if err != nil {
		return nil, err
	}
	rows, err := p.psql(ctx, c, c.db, countSQL)
	if err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	if len(rows) == 0 || len(rows[0]) != 1 || rows[0][0] == "" {
		return counts, nil
	}
	rows, err = p.psql(ctx, c, c.db, rows[0][0]+";")
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if len(r) != 2 {
			return nil, fmt.Errorf("postgres: unexpected answer from %s", p.c.ClientCommand)
		}
		n, err := strconv.ParseInt(r[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("postgres: unexpected row count %q", r[1])
		}
		counts[r[0]] = n
	}
	return counts, nil
}

// Check reads every table whole (a count(*) scans each heap page) and, where
// pg_amcheck is installed, checks tables and B-tree indexes with it
// (installing the amcheck extension in the database if it is missing:
// Check is meant for a scratch copy).
func (p *Postgres) Check(ctx context.Context, into string) ([]dump.CheckResult, error) {
	c, err := p.target(into)
	if err != nil {
		return nil, err
	}
	res := []dump.CheckResult{{Name: "every table can be read", OK: true}}
	if _, err := p.Tables(ctx, into); err != nil {
		res[0] = dump.CheckResult{Name: res[0].Name, Detail: err.Error()}
		return res, nil
	}
	amcheck := findAmcheck()
	if amcheck == "" {
		return res, nil
	}
	cmd := p.command(amcheck, c, "--no-password", "--install-missing", "--heapallindexed", "--", c.url(c.db))
	cmd.Stderr = nil
	// Feed sends pg_amcheck's findings (standard output) where its
	// standard error goes: into the ToolError's tail.
	err = cmd.Feed(ctx, strings.NewReader(""))
	r := dump.CheckResult{Name: DefaultAmcheckCommand, OK: err == nil}
	if err != nil {
		var te *dump.ToolError
		if ctx.Err() != nil || !errors.As(err, &te) {
			return nil, err
		}
		r.Detail = strings.TrimSpace(te.Stderr)
	}
	return append(res, r), nil
}

// findAmcheck finds pg_amcheck in PATH, else in Debian's versioned
// directories (/usr/lib/postgresql/N/bin, the newest), where
// postgresql-client installs it without a link in /usr/bin.
func findAmcheck() string {
	if p, err := exec.LookPath(DefaultAmcheckCommand); err == nil {
		return p
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + DefaultAmcheckCommand)
	best, bestV := "", -1
	for _, p := range m {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		if err == nil && v > bestV {
			best, bestV = p, v
		}
	}
	return best
}

// Drop drops the database if it exists.
func (p *Postgres) Drop(ctx context.Context, into string) error {
	c, err := p.target(into)
	if err != nil {
		return err
	}
	// WITH (FORCE) would need PostgreSQL 13; a scratch database has no
	// other sessions.
	_, err = p.psql(ctx, c, p.c.MaintenanceDB, `DROP DATABASE IF EXISTS :"db";`, "db", c.db)
	return err
}

// Scratch lists the databases whose names start with prefix.
func (p *Postgres) Scratch(ctx context.Context, prefix string) ([]string, error) {
	rows, err := p.psql(ctx, p.conn, p.c.MaintenanceDB,
		`SELECT datname FROM pg_database WHERE left(datname, length(:'prefix')) = :'prefix' ORDER BY 1;`, "prefix", prefix)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, r := range rows {
		names = append(names, r[0])
	}
	return names, nil
}
