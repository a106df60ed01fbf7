package main

// Helpers for the end-to-end tests (e2e_*_test.go). They run the real hoard
// binary, built once per `go test` run, as a subprocess against a repository
// in a temporary folder. Test names start with TestE2E so that
// `go test ./cmd/hoard -run E2E` selects them all.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends/s3/s3test"
	"github.com/hoard-backup/hoard/internal/testenv"
)

var (
	pkgDir   string // this package's folder: the working directory at start
	binDir   string // temporary folder holding the built binary
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	// The in-process S3 server changes the working directory (s3test):
	// paths below this package are taken from pkgDir, never relative.
	pkgDir, _ = os.Getwd()
	moreParallel()
	code := m.Run()
	s3test.Stop()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// moreParallel runs twice as many parallel tests as there are cores,
// unless -parallel was given: the end-to-end tests spend much of their time
// waiting for hoard, gpg, the database tools and the servers, each a
// process of its own, so one test per core leaves the cores idle.
func moreParallel() {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(2*runtime.GOMAXPROCS(0)))
	}
}

// hoardBinary builds ./cmd/hoard once (on first use, so unit tests of this
// package do not pay for it) and returns the binary's path. It is a test
// build (-tags hoardtest), with the hooks of testhooks_hoardtest.go.
func hoardBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binError = testenv.ProcessTempDir("hoard-e2e-bin-")
		if binError != nil {
			return
		}
		binPath = filepath.Join(binDir, "hoard")
		cmd := exec.Command("go", "build", "-tags", "hoardtest", "-o", binPath, ".")
		cmd.Dir = pkgDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build ./cmd/hoard: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// sweepsEnv names the variable that turns on the slowest sweeps of the
// end-to-end tests (a 1 GiB stream, a tree with a 1 GiB file, rounds of
// prune crashes). The README's test command leaves them out so that it
// stays under 8 minutes on 2 cores; .ci/run runs them after it.
const sweepsEnv = "HOARD_TEST_SWEEPS"

// sweeps reports whether the slow sweeps run: sweepsEnv set and not -short.
func sweeps() bool { return os.Getenv(sweepsEnv) != "" && !testing.Short() }

// env is one repository and the passphrase that opens it.
type env struct {
	t        *testing.T
	repo     string   // repository folder; passed as HOARD_REPOSITORY
	pwFile   string   // passphrase file; passed as HOARD_PASSWORD_FILE
	extraEnv []string // KEY=VALUE added to (and overriding) the above
	// knownKeys is the machine's file of pinned data keys, passed as
	// HOARD_KNOWN_KEYS (so that tests never write the user's own); empty
	// means a new file for every command.
	knownKeys string
}

// testPassphrase is what newEnv writes to pwFile.
const testPassphrase = "correct horse battery staple"

// newEnv makes a fresh repository (hoard init --s2k iterated) in a
// temporary folder.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := newEnvNoInit(t)
	e.mustRun("init", "--s2k", "iterated")
	return e
}

// newEnvNoInit is newEnv without the init: repo does not exist yet.
func newEnvNoInit(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, repo: filepath.Join(dir, "repo"), pwFile: filepath.Join(dir, "passphrase"), knownKeys: filepath.Join(dir, "known_keys")}
	if err := os.WriteFile(e.pwFile, []byte(testPassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// on returns a copy of e that reports to t: use it in subtests, since
// t.Fatal must be called from the test's own goroutine.
func (e *env) on(t *testing.T) *env {
	c := *e
	c.t = t
	c.extraEnv = append([]string(nil), e.extraEnv...)
	return &c
}

// command returns an unstarted hoard command with the environment set:
// the caller's environment without any HOARD_* variables, then
// HOARD_REPOSITORY, HOARD_PASSWORD_FILE, HOARD_CACHE_DIR (beside the
// repository) and extraEnv (later entries win).
// Use it for what run cannot do, e.g. signals or streaming both ways.
func (e *env) command(args ...string) *exec.Cmd {
	e.t.Helper()
	cmd := exec.CommandContext(e.t.Context(), hoardBinary(e.t), args...)
	var vars []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOARD_") {
			vars = append(vars, kv)
		}
	}
	// The cache (a write-only host's base cache too) stays in the test's folder.
	vars = append(vars, "HOARD_REPOSITORY="+e.repo, "HOARD_PASSWORD_FILE="+e.pwFile,
		"HOARD_CACHE_DIR="+filepath.Join(filepath.Dir(e.repo), "cache"))
	if e.knownKeys != "" {
		vars = append(vars, "HOARD_KNOWN_KEYS="+e.knownKeys)
	} else {
		vars = append(vars, "HOARD_KNOWN_KEYS="+filepath.Join(e.t.TempDir(), "known_keys"))
	}
	cmd.Env = append(vars, e.extraEnv...)
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// runIO runs hoard with stdin (may be nil) and streams its standard output
// into stdout (may be nil). It returns standard error and the exit code
// (-1 if hoard was killed by a signal).
func (e *env) runIO(stdin io.Reader, stdout io.Writer, args ...string) (stderr string, exitCode int) {
	e.t.Helper()
	cmd := e.command(args...)
	cmd.Stdin = stdin
	cmd.Stdout = stdout
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	start := time.Now()
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		exitCode = ee.ExitCode()
	default:
		e.t.Fatalf("hoard %s: %v", strings.Join(args, " "), err)
	}
	if strings.Contains(errBuf.String(), "panic: ") && strings.Contains(errBuf.String(), "goroutine ") {
		e.t.Errorf("hoard %s panicked:\n%s", shortArgs(args), errBuf.String())
	}
	if d := time.Since(start); d > 2*time.Second {
		e.t.Logf("hoard %s: exit %d after %v", shortArgs(args), exitCode, d.Round(time.Millisecond))
	}
	return errBuf.String(), exitCode
}

// run runs hoard with no standard input.
func (e *env) run(args ...string) (stdout, stderr string, exitCode int) {
	e.t.Helper()
	return e.runStdin(nil, args...)
}

// runStdin runs hoard with r as standard input and collects its output.
func (e *env) runStdin(r io.Reader, args ...string) (stdout, stderr string, exitCode int) {
	e.t.Helper()
	var out bytes.Buffer
	stderr, exitCode = e.runIO(r, &out, args...)
	return out.String(), stderr, exitCode
}

// mustRun runs hoard and fails the test unless it exits 0; it returns
// standard output.
func (e *env) mustRun(args ...string) string {
	e.t.Helper()
	out, stderr, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("hoard %s: exit %d\nstderr: %s", strings.Join(args, " "), code, stderr)
	}
	return out
}

// mustRunJSON runs `hoard --json args...`, fails unless it exits 0, and
// decodes standard output into v.
func (e *env) mustRunJSON(v any, args ...string) {
	e.t.Helper()
	out := e.mustRun(append([]string{"--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("hoard --json %s: decode output: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// backupResult is the output of `hoard --json backup`.
type backupResult struct {
	ID      string `json:"id"`
	Summary struct {
		FilesNew        uint64 `json:"files_new"`
		FilesChanged    uint64 `json:"files_changed"`
		FilesUnmodified uint64 `json:"files_unmodified"`
		Dirs            uint64 `json:"dirs"`
		DataBlobsNew    uint64 `json:"data_blobs_new"`
		BytesRead       uint64 `json:"bytes_read"`
		BytesMatched    uint64 `json:"bytes_matched"`
		BytesAdded      uint64 `json:"bytes_added"`
		TotalBytes      uint64 `json:"total_bytes"`
		Errors          uint64 `json:"errors"`
	} `json:"summary"`
}

// mustBackup runs `hoard --json backup args...` with stdin (may be nil),
// fails unless it exits 0, and returns the decoded result.
func (e *env) mustBackup(stdin io.Reader, args ...string) backupResult {
	e.t.Helper()
	var out bytes.Buffer
	full := append([]string{"--json", "backup"}, args...)
	stderr, code := e.runIO(stdin, &out, full...)
	if code != 0 {
		e.t.Fatalf("hoard %s: exit %d\nstderr: %s", shortArgs(full), code, stderr)
	}
	var res backupResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.ID == "" {
		e.t.Fatalf("hoard %s: decode output: %v\n%s", shortArgs(full), err, out.String())
	}
	return res
}

// snapshotIDs returns the full IDs of the repository's snapshots, as
// `hoard --json snapshots` lists them.
func (e *env) snapshotIDs() []string {
	e.t.Helper()
	var sns []struct {
		ID string `json:"id"`
	}
	e.mustRunJSON(&sns, "snapshots")
	ids := make([]string, len(sns))
	for i, s := range sns {
		ids[i] = s.ID
	}
	return ids
}

// repoSize is the sum of the sizes of the regular files under the
// repository folder.
func (e *env) repoSize() int64 {
	e.t.Helper()
	var n int64
	err := filepath.WalkDir(e.repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// testSeed returns the seed for a test's random data: HOARD_E2E_SEED if set,
// else def. It is logged so that a failure can be reproduced.
func testSeed(t testing.TB, def uint64) uint64 {
	t.Helper()
	seed := def
	if s := os.Getenv("HOARD_E2E_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatalf("HOARD_E2E_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("random seed %d (set HOARD_E2E_SEED to repeat)", seed)
	return seed
}

func shortArgs(args []string) string {
	s := strings.Join(args, " ")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// dataGen is an endless deterministic stream in blocks of genBlock bytes,
// mixing random blocks, compressible text and runs of zeroes. Block kinds
// repeat every 8 blocks: text at 1 and 5, zeroes at 3, random otherwise.
type dataGen struct {
	rng   *rand.ChaCha8
	buf   []byte
	off   int
	block int
}

const genBlock = 4 << 20

func newDataGen(seed uint64) *dataGen {
	var s [32]byte
	for i := range 4 {
		binary.LittleEndian.PutUint64(s[8*i:], seed+uint64(i)*0x9e3779b97f4a7c15)
	}
	return &dataGen{rng: rand.NewChaCha8(s), buf: make([]byte, genBlock), off: genBlock}
}

func (g *dataGen) Read(p []byte) (int, error) {
	if g.off == len(g.buf) {
		switch g.block % 8 {
		case 1, 5:
			fillText(g.buf, g.rng)
		case 3:
			clear(g.buf)
		default:
			_, _ = g.rng.Read(g.buf)
		}
		g.block++
		g.off = 0
	}
	n := copy(p, g.buf[g.off:])
	g.off += n
	return n, nil
}

var genWords = strings.Fields(`INSERT INTO users VALUES NULL alice bob carol dave 2026-11-21 SELECT FROM
	WHERE ORDER BY LIMIT media uploads thumbnail.jpg 200 404 GET POST /api/v1/items id name created
	updated true false 0 1 42 3.14 café 日本語 ☕ lorem ipsum dolor sit amet consectetur adipiscing elit`)

// fillText fills b with words drawn by rng: text that zstd compresses well
// but that does not repeat.
func fillText(b []byte, rng *rand.ChaCha8) {
	i := 0
	for i < len(b) {
		x := rng.Uint64()
		for k := 0; k < 8 && i < len(b); k++ {
			w := genWords[int(x>>(8*k)&0xff)%len(genWords)]
			i += copy(b[i:], w)
			if i < len(b) {
				b[i] = " \n"[x>>(8*k)&1]
				i++
			}
		}
	}
}

// repoFiles returns the repository's files (relative paths, sorted),
// without locks, which come and go with every command.
func (e *env) repoFiles() []string {
	e.t.Helper()
	var out []string
	err := filepath.WalkDir(e.repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(e.repo, p)
		if d.IsDir() && rel == "locks" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}
