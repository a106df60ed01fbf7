package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config says what Run does.
type Config struct {
	Kills, Faults int
	Seed          uint64
	Dir           string // work directory; Run creates what it needs in it
	Hoard         string // the hoard binary
	Verbose       bool
	Log           io.Writer // progress and findings; nil discards
	// Timeout bounds each hoard command; one that runs longer is a hang.
	Timeout time.Duration
	// Workers run that many independent repositories at once, each with
	// its share of the kill points and faults.
	Workers int
}

// Result holds the counts.
type Result struct {
	Seed uint64

	KillPoints    int            // commands killed while running
	KillsByOp     map[string]int // per command
	Completed     int            // commands that finished before their kill
	Failed        int            // commands that failed by themselves (not killed)
	Checks        int            // check --read-data runs after kills
	Corrupt       int            // check --read-data failed after a kill (and unlock)
	LostSnapshots int            // completed snapshots no longer listed
	Unrestorable  int            // listed snapshots whose restore failed
	Restores      int

	Faults       int
	FaultsByKind map[string]int
	Detected     int            // faults check --read-data reported
	Harmless     int            // faults after which every snapshot restored (e.g. in a lock file)
	FaultRestore int            // restores run after faults
	FailedCodes  map[int]int    // exit codes of failed restores and checks after faults
	Unclear      int            // failures with exit 1 (no specific code)
	UnclearKinds map[string]int // by file kind
	Missed       int            // check passed, yet a restore failed

	WrongBytes int // restores that exited 0 with content that differs
	Panics     int
	Hangs      int
}

// OK reports whether nothing that must never happen happened.
func (r *Result) OK() bool {
	return r.Corrupt == 0 && r.Failed == 0 && r.LostSnapshots == 0 && r.Unrestorable == 0 && r.WrongBytes == 0 && r.Panics == 0 &&
		r.Hangs == 0 && r.Missed == 0
}

// Print writes the counts.
func (r *Result) Print(w io.Writer) {
	fmt.Fprintf(w, "seed %d\n", r.Seed)
	fmt.Fprintf(w, "kill points: %d (%s); %d commands finished before their kill; %d failed by themselves\n",
		r.KillPoints, countsString(r.KillsByOp), r.Completed, r.Failed)
	fmt.Fprintf(w, "  after kills: %d check --read-data runs, %d corrupt repositories, %d lost completed snapshots, %d snapshots that did not restore (%d restores)\n",
		r.Checks, r.Corrupt, r.LostSnapshots, r.Unrestorable, r.Restores)
	fmt.Fprintf(w, "faults: %d (%s)\n", r.Faults, countsString(r.FaultsByKind))
	fmt.Fprintf(w, "  %d detected by check --read-data, %d harmless (every snapshot restored), %d restores; check passed but a restore failed: %d\n",
		r.Detected, r.Harmless, r.FaultRestore, r.Missed)
	codes := map[string]int{}
	for c, n := range r.FailedCodes {
		codes[fmt.Sprintf("exit %d", c)] = n
	}
	fmt.Fprintf(w, "  failed commands by exit code: %s; exit 1 (unclear): %d (%s)\n", countsString(codes), r.Unclear, countsString(r.UnclearKinds))
	fmt.Fprintf(w, "wrong bytes restored: %d, panics: %d, hangs: %d\n", r.WrongBytes, r.Panics, r.Hangs)
}

func countsString(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// Build compiles ./cmd/hoard (from the module root, found from the working
// directory) into bin.
func Build(bin string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/hoard")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/hoard: %v\n%s", err, out)
	}
	return nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Run runs the kill points, then the faults.
func Run(c Config) (*Result, error) {
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.Workers > 1 {
		return runWorkers(c)
	}
	res := &Result{Seed: c.Seed, KillsByOp: map[string]int{}, FaultsByKind: map[string]int{}, FailedCodes: map[int]int{},
		UnclearKinds: map[string]int{}}
	rnd := rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
	pw := filepath.Join(c.Dir, "passphrase")
	if err := os.WriteFile(pw, []byte("fault harness passphrase\n"), 0o600); err != nil {
		return nil, err
	}
	if c.Kills > 0 {
		if err := runKills(c, res, rnd, pw); err != nil {
			return res, err
		}
	}
	if c.Faults > 0 {
		if err := runFaults(c, res, rnd, pw); err != nil {
			return res, err
		}
	}
	return res, nil
}

// hoard runs the binary against one repository.
type hoard struct {
	bin, repo, pw string
	timeout       time.Duration
}

// outcome is how a command ended.
type outcome struct {
	code           int
	stdout, stderr string
	killed         bool // by the harness's SIGKILL
	hung           bool
	panicked       bool
	dur            time.Duration
}

func (h *hoard) command(args ...string) *exec.Cmd {
	cmd := exec.Command(h.bin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOARD_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "HOARD_REPOSITORY="+h.repo, "HOARD_PASSWORD_FILE="+h.pw)
	return cmd
}

// run runs a command to its end (or kills it after killAfter, when > 0,
// or after the timeout, which makes it a hang).
func (h *hoard) run(killAfter time.Duration, args ...string) outcome {
	cmd := h.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return outcome{code: -1, stderr: err.Error()}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var o outcome
	var kill <-chan time.Time
	if killAfter > 0 {
		kill = time.After(killAfter)
	}
	timeout := time.After(h.timeout)
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-kill:
			o.killed = true
			_ = cmd.Process.Signal(syscall.SIGKILL)
			kill = nil
		case <-timeout:
			o.hung = true
			_ = cmd.Process.Signal(syscall.SIGKILL)
			timeout = nil
		}
	}
	o.dur = time.Since(start)
	o.stdout, o.stderr = out.String(), errb.String()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		o.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			o.code = -1
		} else {
			o.killed = false // it ended by itself before the signal
		}
	} else if err != nil {
		o.code = -1
	} else {
		o.killed = false
	}
	o.panicked = strings.Contains(o.stderr, "panic:") || strings.Contains(o.stderr, "fatal error:")
	return o
}

func (o outcome) String() string {
	s := strings.TrimSpace(o.stderr)
	if len(s) > 600 {
		s = s[:600] + "..."
	}
	return fmt.Sprintf("exit %d: %s", o.code, s)
}

// snapshots lists the repository's snapshot IDs.
func (h *hoard) snapshots() ([]string, outcome) {
	o := h.run(0, "--json", "snapshots")
	if o.code != 0 {
		return nil, o
	}
	var sns []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(o.stdout), &sns); err != nil {
		o.code = -1
		o.stderr = "decode snapshots: " + err.Error()
		return nil, o
	}
	ids := make([]string, len(sns))
	for i, s := range sns {
		ids[i] = s.ID
	}
	return ids, o
}

// restore restores a snapshot into a fresh folder under dir and returns
// the digest of its src tree.
func (h *hoard) restore(dir, sid string) (string, outcome) {
	target, err := os.MkdirTemp(dir, "restore-")
	if err != nil {
		return "", outcome{code: -1, stderr: err.Error()}
	}
	defer os.RemoveAll(target)
	o := h.run(0, "restore", sid, "--target", target)
	if o.code != 0 {
		return "", o
	}
	d, err := digestDir(filepath.Join(target, "src"))
	if err != nil {
		o.code = -1
		o.stderr = "digest: " + err.Error()
	}
	return d, o
}

// digestDir describes the regular files, symlinks and directories under
// dir with their content's SHA-256.
func digestDir(dir string) (string, error) {
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			lines = append(lines, "f "+rel+" "+hex.EncodeToString(sum[:]))
		case d.IsDir():
			lines = append(lines, "d "+rel)
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			lines = append(lines, "l "+rel+" "+t)
		}
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n"), err
}

// source is a small tree that changes between backups.
type source struct {
	dir string
	rnd *rand.Rand
	n   int
}

func newSource(dir string, rnd *rand.Rand) (*source, error) {
	s := &source{dir: dir, rnd: rnd}
	for _, d := range []string{"a", "b/c", "d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	for range 16 {
		if err := s.write(); err != nil {
			return nil, err
		}
	}
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
		return nil, err
	}
	return s, nil
}

// write adds or rewrites one file of up to 160 KiB (a few empty ones).
func (s *source) write() error {
	dirs := []string{"a", "b/c", "d", "."}
	name := filepath.Join(s.dir, dirs[s.rnd.IntN(len(dirs))], fmt.Sprintf("f%03d", s.rnd.IntN(s.n+4)))
	s.n++
	size := s.rnd.IntN(160 << 10)
	if s.rnd.IntN(10) == 0 {
		size = 0
	}
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(s.rnd.Uint32())
	}
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(seed).Read(b)
	if s.rnd.IntN(2) == 0 {
		// Half the files compress: repeated text.
		for i := range b {
			b[i] = "hoard fault harness "[i%20]
		}
	}
	return os.WriteFile(name, b, 0o644)
}

// change rewrites or adds a few files and sometimes removes one.
func (s *source) change() error {
	for range 1 + s.rnd.IntN(3) {
		if err := s.write(); err != nil {
			return err
		}
	}
	if s.rnd.IntN(3) == 0 {
		var files []string
		_ = filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
		if len(files) > 4 {
			return os.Remove(files[s.rnd.IntN(len(files))])
		}
	}
	return nil
}

// copyTree copies the regular files and directories of src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o600)
	})
}

func (c Config) logf(format string, args ...any) {
	fmt.Fprintf(c.Log, format+"\n", args...)
}

func (c Config) debugf(format string, args ...any) {
	if c.Verbose {
		c.logf(format, args...)
	}
}

// runWorkers runs c.Workers harnesses at once, each in its own
// subdirectory with its own seed, and adds up their counts.
func runWorkers(c Config) (*Result, error) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results = make([]*Result, c.Workers)
		errs    = make([]error, c.Workers)
	)
	for w := range c.Workers {
		wc := c
		wc.Workers = 1
		wc.Dir = filepath.Join(c.Dir, fmt.Sprintf("w%d", w))
		wc.Seed = c.Seed + uint64(w)
		wc.Kills = c.Kills / c.Workers
		wc.Faults = c.Faults / c.Workers
		if w < c.Kills%c.Workers {
			wc.Kills++
		}
		if w < c.Faults%c.Workers {
			wc.Faults++
		}
		wc.Log = &prefixWriter{mu: &mu, w: c.Log, prefix: fmt.Sprintf("[w%d] ", w)}
		if err := os.MkdirAll(wc.Dir, 0o755); err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[w], errs[w] = Run(wc)
		}()
	}
	wg.Wait()
	total := &Result{Seed: c.Seed, KillsByOp: map[string]int{}, FaultsByKind: map[string]int{}, FailedCodes: map[int]int{},
		UnclearKinds: map[string]int{}}
	for w, r := range results {
		if errs[w] != nil {
			return total, fmt.Errorf("worker %d: %w", w, errs[w])
		}
		total.add(r)
	}
	return total, nil
}

func (r *Result) add(o *Result) {
	r.KillPoints += o.KillPoints
	r.Completed += o.Completed
	r.Failed += o.Failed
	r.Checks += o.Checks
	r.Corrupt += o.Corrupt
	r.LostSnapshots += o.LostSnapshots
	r.Unrestorable += o.Unrestorable
	r.Restores += o.Restores
	r.Faults += o.Faults
	r.Detected += o.Detected
	r.Harmless += o.Harmless
	r.FaultRestore += o.FaultRestore
	r.Unclear += o.Unclear
	r.Missed += o.Missed
	r.WrongBytes += o.WrongBytes
	r.Panics += o.Panics
	r.Hangs += o.Hangs
	for k, v := range o.KillsByOp {
		r.KillsByOp[k] += v
	}
	for k, v := range o.FaultsByKind {
		r.FaultsByKind[k] += v
	}
	for k, v := range o.FailedCodes {
		r.FailedCodes[k] += v
	}
	for k, v := range o.UnclearKinds {
		r.UnclearKinds[k] += v
	}
}

// prefixWriter writes whole lines with a prefix, one writer at a time.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.w.Write(append([]byte(p.prefix), b...))
	return len(b), err
}
