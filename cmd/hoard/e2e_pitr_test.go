package main

// End-to-end tests of point-in-time recovery against real PostgreSQL
// clusters that the tests initdb and run (e2e_pitr_helpers_test.go).

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rows lists the table's keys, in order.
func (c *pgCluster) rows() string {
	return c.psql("SELECT coalesce(string_agg(i::text, ',' ORDER BY i), '') FROM t")
}

// pitrSetup starts a cluster archiving into the repository under "main",
// with a config file naming it as a physical database. It commits row 1,
// takes a base backup, commits row 2, makes the restore point "after_two",
// notes the LSN and the time, commits row 3 and waits until all of it is
// archived. It returns the time between rows 2 and 3 (the LSN in *lsn).
func pitrSetup(t *testing.T, p *pitrEnv, archiveEnv []string, lsn ...*string) (c *pgCluster, cfgEnv []string, between string) {
	t.Helper()
	c = p.newCluster("primary", p.archiveCommand(archiveEnv, "main"))
	cfg := p.writeFile("hoard.toml", []byte(fmt.Sprintf("[databases.main]\nurl = %q\nphysical = true\n", c.url())))
	cfgEnv = []string{"HOARD_CONFIG=" + cfg}
	c.psql("CREATE TABLE t (i int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
	c.psql("INSERT INTO t (i) VALUES (1)")
	c.switchAndWait()
	out := p.mustRun(append(append([]string{}, archiveEnv...), cfgEnv...), "db", "backup", "main")
	if !strings.Contains(out, "db/main.base.tar") {
		t.Fatalf("db backup of a physical database:\n%s", out)
	}
	c.psql("INSERT INTO t (i) VALUES (2)")
	c.psql("SELECT pg_create_restore_point('after_two')")
	if len(lsn) > 0 {
		*lsn[0] = c.psql("SELECT pg_current_wal_lsn()")
	}
	time.Sleep(1100 * time.Millisecond)
	between = c.psql("SELECT clock_timestamp()")
	time.Sleep(1100 * time.Millisecond)
	c.psql("INSERT INTO t (i) VALUES (3)")
	c.switchAndWait()
	return c, cfgEnv, between
}

// restore runs db restore NAME --data-dir DIR --start with the given
// target flags and returns the running restored cluster and the output.
func (p *pitrEnv) restore(t *testing.T, env []string, name string, target ...string) (*pgCluster, string) {
	t.Helper()
	r := &pgCluster{p: p, data: filepath.Join(p.root, name), port: p.freePort()}
	args := append([]string{"db", "restore", "main"}, target...)
	args = append(args, "--data-dir", r.data, "--start", "--port", strconv.Itoa(r.port), "--pg-bindir", p.bin, "--timeout", "120s")
	out := p.mustRun(env, args...)
	t.Cleanup(r.stop)
	return r, out
}

func TestE2EPITR(t *testing.T) {
	t.Parallel()
	p := newPITREnv(t)
	p.mustRun(nil, "init", "--s2k", "iterated")
	var lsn string
	c, cfgEnv, between := pitrSetup(t, p, p.env, &lsn)
	if got := c.rows(); got != "1,2,3" {
		t.Fatalf("primary holds %q", got)
	}

	t.Run("push and fetch rules", func(t *testing.T) {
		seg := c.psql("SELECT last_archived_wal FROM pg_stat_archiver")
		fetched := filepath.Join(p.root, "fetched", seg)
		if err := os.MkdirAll(filepath.Dir(fetched), 0o755); err != nil {
			t.Fatal(err)
		}
		p.chown(filepath.Dir(fetched))
		p.mustRun(nil, "wal", "fetch", "--db", "main", seg, fetched)
		if fi, err := os.Stat(fetched); err != nil || fi.Size() != 16<<20 {
			t.Fatalf("fetched segment: %v %v", fi, err)
		}
		// The same content again: success, nothing written.
		before := p.walFiles(t)
		p.mustRun(nil, "wal", "push", "--db", "main", fetched)
		if after := p.walFiles(t); after != before {
			t.Errorf("a repeated push changed the catalog: %d -> %d entries", before, after)
		}
		// Other content under the same name: refused, loudly.
		data, _ := os.ReadFile(fetched)
		data[len(data)/2] ^= 0xff
		if err := os.WriteFile(fetched, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := p.run(nil, "wal", "push", "--db", "main", fetched)
		if code != exitRefused || !strings.Contains(stderr, "different content") || !strings.Contains(stderr, seg) {
			t.Errorf("push of different content: exit %d, stderr %q", code, stderr)
		}
		// A file that is not archived: a quick failure, no file.
		missing := filepath.Join(p.root, "fetched", "0000000100000000000000EE")
		start := time.Now()
		_, stderr, code = p.run(nil, "wal", "fetch", "--db", "main", "0000000100000000000000EE", missing)
		if code == 0 || !strings.Contains(stderr, "not archived") {
			t.Errorf("fetch of a missing segment: exit %d, stderr %q", code, stderr)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("fetch of a missing segment took %v", d)
		}
		if _, err := os.Stat(missing); !os.IsNotExist(err) {
			t.Errorf("fetch of a missing segment left a file: %v", err)
		}
	})

	r1, out := p.restore(t, cfgEnv, "r1", "--to-time", between)
	if got := r1.rows(); got != "1,2" {
		t.Fatalf("restore to %s (between rows 2 and 3) holds rows %q, want 1,2\n%s", between, got, out)
	}
	if !strings.Contains(out, "recovery stopping before commit") {
		t.Errorf("restore --start does not report where recovery stopped:\n%s", out)
	}

	// The other targets: an LSN and a named restore point, both after row 2.
	// Trial restores: they must not archive their new timelines, or the
	// restore to the end below would follow theirs.
	for _, target := range [][]string{{"--to-lsn", lsn, "--no-archive"}, {"--to-name", "after_two", "--no-archive"}} {
		r, out := p.restore(t, cfgEnv, "r-"+target[0][5:], target...)
		if got := r.rows(); got != "1,2" {
			t.Errorf("restore %s holds rows %q, want 1,2\n%s", strings.Join(target, " "), got, out)
		}
		r.stop()
	}

	// A physical backup is not a dump: db restore without --data-dir refuses.
	if _, stderr, code := p.run(cfgEnv, "db", "restore", "main"); code != exitRefused || !strings.Contains(stderr, "--data-dir") {
		t.Errorf("db restore of a physical backup without --data-dir: exit %d, %s", code, stderr)
	}

	// A data directory that holds files is refused without --force.
	_, stderr, code := p.run(cfgEnv, "db", "restore", "main", "--to-end", "--data-dir", r1.data)
	if code != exitRefused || !strings.Contains(stderr, "not empty") {
		t.Errorf("restore into a non-empty data directory: exit %d, %s", code, stderr)
	}
	if got := r1.rows(); got != "1,2" {
		t.Errorf("the refused restore changed the running cluster: %q", got)
	}

	// The restored cluster is promoted to timeline 2 and archives into the
	// same repository; the old primary is gone. A restore to the end must
	// follow timeline 2 (row 4), not timeline 1 (row 3).
	c.stop()
	r1.psql("INSERT INTO t (i) VALUES (4)")
	r1.switchAndWait()
	r1.stop()
	list := p.mustRun(nil, "wal", "list", "--db", "main")
	if !strings.Contains(list, "main      2") && !strings.Contains(list, "main  2") {
		t.Errorf("wal list shows no timeline 2:\n%s", list)
	}
	r2, out := p.restore(t, cfgEnv, "r2", "--to-end")
	if got := p.mustRun(cfgEnv, "db", "list"); !strings.Contains(got, "recoverable from") {
		t.Errorf("db list shows no recovery window:\n%s", got)
	}
	if got := r2.rows(); got != "1,2,4" {
		t.Fatalf("restore to the end after a PITR holds rows %q, want 1,2,4 (timeline 2)\n%s", got, out)
	}
	r2.stop()

	// A segment deleted from the repository: wal list reports the gap, and
	// a restore that needs it fails naming it. (The segment after the base
	// backup's first would not do: timeline 2 has its own copy of it.)
	seg := baseStartWAL(t, p)
	if err := os.Remove(filepath.Join(p.root, "repo", "wal", "main_"+seg)); err != nil {
		t.Fatal(err)
	}
	list = p.mustRun(nil, "wal", "list", "--db", "main")
	if !strings.Contains(list, seg) {
		t.Errorf("wal list does not name the deleted segment %s:\n%s", seg, list)
	}
	out, _, code = p.run(nil, "check")
	if code != exitDamaged || !strings.Contains(out, seg) {
		t.Errorf("check after deleting %s: exit %d\n%s", seg, code, out)
	}
	_, stderr, code = p.run(cfgEnv, "db", "restore", "main", "--to-end", "--data-dir", filepath.Join(p.root, "r3"))
	if code != exitDamaged || !strings.Contains(stderr, seg) {
		t.Errorf("restore past a missing segment: exit %d, stderr %q (want it to name %s)", code, stderr, seg)
	}
}

// walFiles counts the WAL catalog's entries.
func (p *pitrEnv) walFiles(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(p.root, "repo", "wal"))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// baseStartWAL names the first segment of the first base backup: one
// that every restore of it needs.
func baseStartWAL(t *testing.T, p *pitrEnv) string {
	t.Helper()
	var sns []struct {
		Source struct {
			Databases []struct {
				Details map[string]string `json:"details"`
			} `json:"databases"`
		} `json:"source"`
	}
	out := p.mustRun(nil, "--json", "snapshots")
	if err := jsonUnmarshal(out, &sns); err != nil || len(sns) == 0 {
		t.Fatalf("snapshots: %v\n%s", err, out)
	}
	return sns[0].Source.Databases[0].Details["start_wal"]
}
