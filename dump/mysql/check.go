package mysql

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/hoard-backup/hoard/dump"
)

var _ dump.Checker = (*MySQL)(nil)

// target resolves a database name ("" for the configured one).
func (m *MySQL) target(into string) (conn, error) {
	c := m.conn
	switch {
	case into == "":
	case strings.Contains(into, "://"):
		return parseURL(into)
	default:
		c.db = into
	}
	if c.db == "" || strings.HasPrefix(c.db, "-") {
		return conn{}, fmt.Errorf("mysql: bad database name %q", c.db)
	}
	return c, nil
}

// baseTables lists the database's tables (not views).
func (m *MySQL) baseTables(ctx context.Context, c conn) ([]string, error) {
	rows, err := m.query(ctx, c, "", "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "+
		literal(c.db)+" AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, r := range rows {
		names = append(names, r[0])
	}
	return names, nil
}

// Tables counts the rows of every table.
func (m *MySQL) Tables(ctx context.Context, into string) (map[string]int64, error) {
	c, err := m.target(into)
	if err != nil {
		return nil, err
	}
	names, err := m.baseTables(ctx, c)
	if err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	if len(names) == 0 {
		return counts, nil
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("SELECT %d, COUNT(*) FROM %s", i, ident(n))
	}
	rows, err := m.query(ctx, c, c.db, strings.Join(q, " UNION ALL "))
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if len(r) != 2 {
			return nil, fmt.Errorf("mysql: unexpected answer from %s", m.c.ClientCommand)
		}
		i, err1 := strconv.Atoi(r[0])
		n, err2 := strconv.ParseInt(r[1], 10, 64)
		if err1 != nil || err2 != nil || i < 0 || i >= len(names) {
			return nil, fmt.Errorf("mysql: unexpected answer from %s", m.c.ClientCommand)
		}
		counts[names[i]] = n
	}
	return counts, nil
}

// Check runs CHECK TABLE on every table: one result per table, failed when
// the server reports an error or a status other than OK.
func (m *MySQL) Check(ctx context.Context, into string) ([]dump.CheckResult, error) {
	c, err := m.target(into)
	if err != nil {
		return nil, err
	}
	names, err := m.baseTables(ctx, c)
	if err != nil {
		return nil, err
	}
	var res []dump.CheckResult
	for _, n := range names {
		rows, err := m.query(ctx, c, c.db, "CHECK TABLE "+ident(n))
		if err != nil {
			return nil, err
		}
		r := dump.CheckResult{Name: "CHECK TABLE " + n, OK: true}
		var msgs []string
		for _, row := range rows {
			// Table, Op, Msg_type, Msg_text
			if len(row) != 4 {
				return nil, fmt.Errorf("mysql: unexpected answer from %s", m.c.ClientCommand)
			}
			typ, text := strings.ToLower(row[2]), row[3]
			if typ == "error" || (typ == "status" && !strings.EqualFold(text, "OK")) {
				r.OK = false
			}
			if typ != "status" || !strings.EqualFold(text, "OK") {
				msgs = append(msgs, row[2]+": "+text)
			}
		}
		if !r.OK {
			r.Detail = strings.Join(msgs, "; ")
		}
		res = append(res, r)
	}
	return res, nil
}

// Drop drops the database if it exists.
func (m *MySQL) Drop(ctx context.Context, into string) error {
	c, err := m.target(into)
	if err != nil {
		return err
	}
	_, err = m.query(ctx, c, "", "DROP DATABASE IF EXISTS "+ident(c.db))
	return err
}

// Scratch lists the databases whose names start with prefix.
func (m *MySQL) Scratch(ctx context.Context, prefix string) ([]string, error) {
	rows, err := m.query(ctx, m.conn, "", "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, "+
		strconv.Itoa(len(prefix))+") = "+literal(prefix)+" ORDER BY 1")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, r := range rows {
		names = append(names, r[0])
	}
	return names, nil
}
