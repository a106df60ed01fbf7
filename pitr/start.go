package pitr

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// StartOptions say how to run a restored server until recovery ends.
type StartOptions struct {
	BinDir  string        // where pg_ctl and psql are; empty: PATH
	Port    int           // the port to listen on, on 127.0.0.1
	Timeout time.Duration // how long recovery may take
}

// Recovered says where recovery stopped, from the server's log.
type Recovered struct {
	Log     string   // the server log's path
	Lines   []string // the log's lines about where recovery stopped
	Running bool     // the server runs (promoted); false if recovery failed
}

// logKeys mark the server log's lines about the end of recovery.
var logKeys = []string{"recovery stopping", "last completed transaction", "redo done at", "selected new timeline",
	"recovery ended before", "could not", "FATAL", "PANIC", "database system is ready", "consistent recovery state reached"}

// Start runs the restored server in dir on o.Port and waits until recovery
// has ended: the server was promoted (it runs, read-write) or stopped. It
// leaves the server running; pg_ctl -D dir stop stops it.
func Start(ctx context.Context, dir string, o StartOptions) (*Recovered, error) {
	tool := func(n string) string {
		if o.BinDir != "" {
			return filepath.Join(o.BinDir, n)
		}
		return n
	}
	logPath := filepath.Join(dir, "hoard-recovery.log")
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s", o.Port, dir)
	cmd := exec.CommandContext(ctx, tool("pg_ctl"), "-D", dir, "-l", logPath, "-o", opts, "start")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pitr: pg_ctl start: %v: %s", err, strings.TrimSpace(string(out)))
	}
	rec := &Recovered{Log: logPath}
	deadline := time.Now().Add(o.Timeout)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		q := exec.CommandContext(ctx, tool("psql"), "-X", "-w", "-q", "-A", "-t", "-h", dir, "-p", strconv.Itoa(o.Port),
			"-d", "postgres", "-c", "SELECT pg_is_in_recovery()")
		out, err := q.Output()
		if err == nil && strings.TrimSpace(string(out)) == "f" {
			rec.Running = true
			break
		}
		if !running(dir) {
			break
		}
		if time.Now().After(deadline) {
			rec.Lines = logLines(logPath)
			return rec, fmt.Errorf("pitr: recovery did not end within %s (the server still runs; see %s)", o.Timeout, logPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
	rec.Lines = logLines(logPath)
	if !rec.Running {
		return rec, fmt.Errorf("pitr: the server stopped before recovery reached its target: %s", strings.Join(rec.Lines, "; "))
	}
	return rec, nil
}

// running reports whether the server of dir has a live postmaster.
func running(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return false
	}
	p, err := os.FindProcess(pid)
	return err == nil && !errors.Is(p.Signal(sigZero), os.ErrProcessDone) && p.Signal(sigZero) == nil
}

func logLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, k := range logKeys {
			if strings.Contains(sc.Text(), k) {
				out = append(out, sc.Text())
				break
			}
		}
	}
	return out
}
