package main

// Helpers for the point-in-time recovery tests: scratch PostgreSQL clusters
// made with initdb on a free loopback port in 55400-55499, run as the
// postgres user (the server refuses to run as root), with the built hoard
// as archive_command. The machine's main server is never touched.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/internal/testenv"
)

// pitrEnv is a folder the postgres user owns, holding a copy of hoard, a
// repository, passphrase and key files, and the clusters' data.
type pitrEnv struct {
	t     *testing.T
	root  string
	bin   string   // PostgreSQL's server binaries
	hoard string   // the hoard binary, executable by postgres
	env   []string // HOARD_* for hoard runs (the archiving host's)
}

// pgBinDir finds initdb: pg_config --bindir, else Debian's folder.
func pgBinDir() string {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1])
	}
	return ""
}

// newPITREnv skips the test (fails it in CI) without PostgreSQL's server
// binaries, runuser or a postgres user.
func newPITREnv(t *testing.T) *pitrEnv {
	t.Helper()
	missing := func(what string) { testenv.Missing(t, "%s (install postgresql-15)", what) }
	bin := pgBinDir()
	if bin == "" {
		missing("no PostgreSQL server binaries (initdb)")
	}
	if _, err := exec.LookPath("runuser"); err != nil || os.Geteuid() != 0 {
		missing("the PITR tests run clusters as the postgres user: they need root and runuser")
	}
	if err := exec.Command("id", "postgres").Run(); err != nil {
		missing("no postgres user")
	}
	root, err := os.MkdirTemp("", "hoard-pitr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	p := &pitrEnv{t: t, root: root, bin: bin, hoard: filepath.Join(root, "hoard")}
	data, err := os.ReadFile(hoardBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.hoard, data, 0o755); err != nil {
		t.Fatal(err)
	}
	p.writeFile("passphrase", []byte(testPassphrase+"\n"))
	p.env = []string{"HOARD_REPOSITORY=" + filepath.Join(root, "repo"), "HOARD_PASSWORD_FILE=" + filepath.Join(root, "passphrase")}
	p.chown(root)
	return p
}

// chown gives path to the postgres user.
func (p *pitrEnv) chown(path string) {
	p.t.Helper()
	if out, err := exec.Command("chown", "-R", "postgres:", path).CombinedOutput(); err != nil {
		p.t.Fatalf("chown %s: %v: %s", path, err, out)
	}
}

// writeFile writes a file of root that postgres owns.
func (p *pitrEnv) writeFile(name string, data []byte) string {
	p.t.Helper()
	path := filepath.Join(p.root, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		p.t.Fatal(err)
	}
	p.chown(path)
	return path
}

// asPostgres returns a command running argv as the postgres user with a
// clean environment plus env.
func (p *pitrEnv) asPostgres(env []string, argv ...string) *exec.Cmd {
	args := []string{"-u", "postgres", "--", "env", "-i", "PATH=" + p.bin + ":/usr/bin:/bin", "HOME=" + p.root, "TZ=UTC"}
	args = append(args, env...)
	cmd := exec.CommandContext(p.t.Context(), "runuser", append(args, argv...)...)
	cmd.Dir = p.root
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// run runs hoard as postgres with p.env and extra (later wins).
func (p *pitrEnv) run(extra []string, args ...string) (stdout, stderr string, code int) {
	p.t.Helper()
	cmd := p.asPostgres(append(append([]string{}, p.env...), extra...), append([]string{p.hoard}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		p.t.Fatalf("hoard %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// mustRun runs hoard and fails the test unless it exits 0.
func (p *pitrEnv) mustRun(extra []string, args ...string) string {
	p.t.Helper()
	out, stderr, code := p.run(extra, args...)
	if code != 0 {
		p.t.Fatalf("hoard %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

// archiveCommand is archive_command pushing to the repository under db.
func (p *pitrEnv) archiveCommand(env []string, db string) string {
	return "env " + strings.Join(env, " ") + " " + p.hoard + " wal push --db " + db + " %p"
}

var (
	portMu    sync.Mutex
	portsUsed = map[int]bool{} // handed out by freePort: tests run in parallel
)

// freePort returns a loopback port in 55400-55499 that nothing listens on
// and that no other test of this process was given.
func (p *pitrEnv) freePort() int {
	p.t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	start := rand.IntN(100)
	for i := range 100 {
		port := 55400 + (start+i)%100
		if portsUsed[port] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		portsUsed[port] = true
		return port
	}
	p.t.Fatal("no free port in 55400-55499")
	return 0
}

// pgCluster is a scratch cluster.
type pgCluster struct {
	p    *pitrEnv
	data string
	port int
}

// newCluster initdbs and starts a cluster archiving with archiveCmd.
func (p *pitrEnv) newCluster(name, archiveCmd string) *pgCluster {
	p.t.Helper()
	c := &pgCluster{p: p, data: filepath.Join(p.root, name), port: p.freePort()}
	if out, err := p.asPostgres(nil, "initdb", "-D", c.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		p.t.Fatalf("initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"+
		"wal_level = replica\narchive_mode = on\narchive_command = '%s'\nfsync = off\nmax_wal_senders = 4\n",
		c.port, p.root, strings.ReplaceAll(archiveCmd, "'", "''"))
	f, err := os.OpenFile(filepath.Join(c.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	_, _ = f.WriteString(conf)
	f.Close()
	c.start()
	return c
}

func (c *pgCluster) start() {
	c.p.t.Helper()
	if out, err := c.p.asPostgres(nil, "pg_ctl", "-D", c.data, "-l", c.data+".log", "-w", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(c.data + ".log")
		c.p.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	c.p.t.Cleanup(c.stop)
}

// stop stops the cluster's server, if it runs.
func (c *pgCluster) stop() {
	_ = exec.Command("runuser", "-u", "postgres", "--", filepath.Join(c.p.bin, "pg_ctl"), "-D", c.data, "-m", "fast", "-w", "stop").Run()
}

// url is the cluster's connection URL.
func (c *pgCluster) url() string {
	return fmt.Sprintf("postgresql://postgres@127.0.0.1:%d/postgres", c.port)
}

// psql runs SQL and returns its unaligned output.
func (c *pgCluster) psql(sql string) string {
	c.p.t.Helper()
	cmd := c.p.asPostgres(nil, "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", "postgres", "-d", "postgres", "-c", sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.p.t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// switchAndWait ends the current WAL segment and waits until the server
// has archived it.
func (c *pgCluster) switchAndWait() string {
	c.p.t.Helper()
	seg := c.psql("SELECT pg_walfile_name(pg_switch_wal())")
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		got := c.psql("SELECT coalesce(last_archived_wal, '') || '|' || coalesce(last_failed_wal, '') FROM pg_stat_archiver")
		done, _, _ := strings.Cut(got, "|")
		if len(done) == 24 && done >= seg {
			return seg
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(c.data + ".log")
	c.p.t.Fatalf("segment %s not archived within 60 s; server log:\n%s", seg, tail(string(log), 3000))
	return ""
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
