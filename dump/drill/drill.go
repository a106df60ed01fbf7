// Package drill proves a restored database whole: it names the scratch
// database a restore drill loads a dump into, runs the engine's own checks
// on it and compares its tables' row counts with the ones expected (the
// fingerprint recorded at backup time, or the live database's).
package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hoard-backup/hoard/dump"
)

// StaleAfter is the default age after which a scratch database is taken
// for the leftover of a drill that was killed.
const StaleAfter = time.Hour

// ScratchName names a scratch database for database name: the prefix, the
// time (Unix seconds, so that a later drill can tell a leftover's age) and
// a random part, then as much of the name as fits in an identifier (63
// bytes for PostgreSQL, 64 for MySQL, minus room for the suffix
// PostgreSQL's Restore adds while it loads).
func ScratchName(name string, now time.Time) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	s := dump.ScratchPrefix + strconv.FormatInt(now.Unix(), 10) + "_" + hex.EncodeToString(b[:]) + "_"
	for _, r := range strings.ToLower(name) {
		if len(s) >= 44 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			s += string(r)
		} else {
			s += "_"
		}
	}
	return s, nil
}

// ScratchTime is when the scratch database (or file) s was named, if s is
// a name ScratchName made.
func ScratchTime(s string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(filepath.Base(s), dump.ScratchPrefix)
	if !ok {
		return time.Time{}, false
	}
	ts, _, ok := strings.Cut(rest, "_")
	if !ok {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}

// Stale keeps the scratch names made more than age before now.
func Stale(names []string, now time.Time, age time.Duration) []string {
	var old []string
	for _, n := range names {
		if t, ok := ScratchTime(n); ok && now.Sub(t) > age {
			old = append(old, n)
		}
	}
	return old
}

// StaleFiles lists the scratch SQLite files in dir made more than age
// before now.
func StaleFiles(dir string, now time.Time, age time.Duration) []string {
	m, _ := filepath.Glob(filepath.Join(dir, dump.ScratchPrefix+"*"))
	return Stale(m, now, age)
}

// DropStale drops the checker's scratch databases older than age and
// returns their names. A leftover that cannot be dropped is an error.
func DropStale(ctx context.Context, c dump.Checker, now time.Time, age time.Duration) ([]string, error) {
	names, err := c.Scratch(ctx, dump.ScratchPrefix)
	if err != nil {
		return nil, fmt.Errorf("listing leftover scratch databases: %w", err)
	}
	var dropped []string
	for _, n := range Stale(names, now, age) {
		if err := c.Drop(ctx, n); err != nil {
			return dropped, fmt.Errorf("dropping the leftover scratch database %s: %w", n, err)
		}
		dropped = append(dropped, n)
	}
	return dropped, nil
}

// Table compares one table's row count.
type Table struct {
	Name     string `json:"name"`
	Expected int64  `json:"expected"` // -1: the table is not in the fingerprint
	Restored int64  `json:"restored"` // -1: the restored database has no such table
	OK       bool   `json:"ok"`
}

// Compare lines up the expected and restored row counts, by table name.
func Compare(expected, restored map[string]int64) []Table {
	names := map[string]bool{}
	for n := range expected {
		names[n] = true
	}
	for n := range restored {
		names[n] = true
	}
	var res []Table
	for n := range names {
		t := Table{Name: n, Expected: -1, Restored: -1}
		if v, ok := expected[n]; ok {
			t.Expected = v
		}
		if v, ok := restored[n]; ok {
			t.Restored = v
		}
		t.OK = t.Expected == t.Restored
		res = append(res, t)
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Name < res[j].Name })
	return res
}

// Expected gives the row counts a fingerprint recorded at backup time
// expects of a restored database: its own counts, and 0 for a restored
// table it does not name (a table the dump created but held no rows of). ok
// is false when there is no fingerprint (a snapshot made before hoard
// recorded them, or a dump format with no counter).
func Expected(fp *dump.Fingerprint, restored map[string]int64) (expected map[string]int64, ok bool) {
	if fp.IsZero() {
		return nil, false
	}
	expected = make(map[string]int64, len(fp.Rows))
	for n, v := range fp.Rows {
		expected[n] = v
	}
	for n := range restored {
		if _, ok := expected[n]; !ok {
			expected[n] = 0
		}
	}
	return expected, true
}

// Failures describes what failed, one line each: failed checks, then
// tables whose counts differ.
func Failures(checks []dump.CheckResult, tables []Table) []string {
	var f []string
	for _, c := range checks {
		if !c.OK {
			f = append(f, fmt.Sprintf("%s failed: %s", c.Name, c.Detail))
		}
	}
	for _, t := range tables {
		switch {
		case t.OK:
		case t.Expected < 0:
			f = append(f, fmt.Sprintf("table %s: restored with %d rows but not expected", t.Name, t.Restored))
		case t.Restored < 0:
			f = append(f, fmt.Sprintf("table %s: expected %d rows, missing from the restored database", t.Name, t.Expected))
		default:
			f = append(f, fmt.Sprintf("table %s: expected %d rows, restored %d", t.Name, t.Expected, t.Restored))
		}
	}
	return f
}

// TempDir is where scratch SQLite files go: dir, else the system's.
func TempDir(dir string) string {
	if dir != "" {
		return dir
	}
	return os.TempDir()
}
