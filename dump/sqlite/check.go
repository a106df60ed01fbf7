package sqlite

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/hoard-backup/hoard/dump"
)

var _ dump.Checker = (*SQLite)(nil)

func (s *SQLite) file(into string) string {
	if into == "" {
		return s.c.Path
	}
	return into
}

// Tables counts the rows of every table but SQLite's own.
func (s *SQLite) Tables(ctx context.Context, into string) (map[string]int64, error) {
	f := s.file(into)
	defer removeSidecarsIfScratch(f, into)
	out, err := s.tool(f, true, ".mode list", ".separator | \"\\n\"", tablesQuery).Output(ctx, nil)
	if err != nil {
		return nil, err
	}
	names, err := tableNames(string(out))
	if err != nil {
		return nil, fmt.Errorf("sqlite: unexpected answer from %s: %w", s.c.Command, err)
	}
	return s.count(ctx, f, names)
}

// tablesQuery lists the tables whose rows are counted: all but SQLite's own
// (sqlite_sequence, sqlite_stat1), as the row counter of a .dump leaves
// them out. Names are given in hex, so that one holding a line break or
// the separator is read back whole; each line is "table|HEX".
const tablesQuery = "SELECT 'table', hex(name) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"

// tableNames reads the "table|HEX" lines of tablesQuery's answer (other
// lines are other commands' answers).
func tableNames(out string) ([]string, error) {
	var names []string
	for _, l := range strings.Split(out, "\n") {
		h, ok := strings.CutPrefix(l, "table|")
		if !ok {
			continue
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, err
		}
		names = append(names, string(b))
	}
	return names, nil
}

// count counts the rows of the tables in one run of the tool: one query,
// a UNION ALL of a count(*) a table, each named by its index.
func (s *SQLite) count(ctx context.Context, f string, names []string) (map[string]int64, error) {
	counts := map[string]int64{}
	if len(names) == 0 {
		return counts, nil
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("SELECT %d, count(*) FROM \"%s\"", i, strings.ReplaceAll(n, `"`, `""`))
	}
	out, err := s.tool(f, true, ".mode list", ".separator \x1f \"\\n\"", strings.Join(q, " UNION ALL ")).Output(ctx, nil)
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		a, b, ok := strings.Cut(l, "\x1f")
		i, err1 := strconv.Atoi(a)
		n, err2 := strconv.ParseInt(b, 10, 64)
		if !ok || err1 != nil || err2 != nil || i < 0 || i >= len(names) {
			return nil, fmt.Errorf("sqlite: unexpected answer from %s", s.c.Command)
		}
		counts[names[i]] = n
	}
	if len(counts) != len(names) {
		return nil, fmt.Errorf("sqlite: unexpected answer from %s", s.c.Command)
	}
	return counts, nil
}

// Check runs PRAGMA integrity_check.
func (s *SQLite) Check(ctx context.Context, into string) ([]dump.CheckResult, error) {
	f := s.file(into)
	defer removeSidecarsIfScratch(f, into)
	out, err := s.tool(f, true, "PRAGMA integrity_check").Output(ctx, nil)
	r := dump.CheckResult{Name: "PRAGMA integrity_check", OK: true}
	var te *dump.ToolError
	switch {
	case err != nil && ctx.Err() == nil && errors.As(err, &te) && te.Stderr != "":
		r.OK, r.Detail = false, strings.TrimSpace(te.Stderr)
	case err != nil:
		return nil, err
	default:
		if res := strings.TrimSpace(string(out)); res != "ok" {
			r.OK, r.Detail = false, fmt.Sprintf("%.2000s", res)
		}
	}
	return []dump.CheckResult{r}, nil
}

// Drop removes the file and its -wal and -shm files.
func (s *SQLite) Drop(_ context.Context, into string) error {
	f := s.file(into)
	if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	removeSidecars(f)
	return nil
}

// Scratch lists nothing: SQLite's scratch copies are files.
func (s *SQLite) Scratch(context.Context, string) ([]string, error) { return nil, nil }

// removeSidecarsIfScratch removes the empty -wal and -shm files a
// read-only look may leave, but never the live database's.
func removeSidecarsIfScratch(f, into string) {
	if into != "" {
		removeSidecars(f)
	}
}
