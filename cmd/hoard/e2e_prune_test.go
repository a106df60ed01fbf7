package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// pruneSrc is a small source tree whose files change between backups.
type pruneSrc struct {
	dir string
	rng *rand.Rand
	gen int
}

func newPruneSrc(t *testing.T, seed uint64) *pruneSrc {
	s := &pruneSrc{dir: filepath.Join(t.TempDir(), "src"), rng: rand.New(rand.NewPCG(seed, 3))}
	if err := os.MkdirAll(filepath.Join(s.dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		s.write(t, i)
	}
	return s
}

// write gives file i new random content of 0.3 to 1.3 MB.
func (s *pruneSrc) write(t *testing.T, i int) {
	t.Helper()
	b := make([]byte, 300<<10+s.rng.IntN(1<<20))
	for j := 0; j < len(b); j += 8 {
		v := s.rng.Uint64()
		for k := 0; k < 8 && j+k < len(b); k++ {
			b[j+k] = byte(v >> (8 * k))
		}
	}
	name := filepath.Join(s.dir, fmt.Sprintf("f%d", i))
	if i%2 == 1 {
		name = filepath.Join(s.dir, "sub", fmt.Sprintf("f%d", i))
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// change rewrites one file and notes the generation.
func (s *pruneSrc) change(t *testing.T) {
	s.gen++
	s.write(t, s.rng.IntN(4))
	if err := os.WriteFile(filepath.Join(s.dir, "gen"), []byte(fmt.Sprint(s.gen)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// digest maps each regular file under dir (relative path) to its SHA-256.
func digest(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(b)
		lines = append(lines, rel+" "+hex.EncodeToString(sum[:]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// verifyRestore restores snapshot id and compares it with want.
func (e *env) verifyRestore(id, want string) {
	e.t.Helper()
	target := filepath.Join(e.t.TempDir(), "restore")
	e.mustRun("restore", id, "--target", target)
	if got := digest(e.t, filepath.Join(target, "src")); got != want {
		e.t.Fatalf("snapshot %s restores differently:\n got %s\nwant %s", id[:8], got, want)
	}
	os.RemoveAll(target)
}

func (e *env) checkReadData() {
	e.t.Helper()
	out, stderr, code := e.run("check", "--read-data")
	if code != 0 {
		e.t.Fatalf("check --read-data: exit %d\n%s%s", code, out, stderr)
	}
}

func TestE2EForgetPrune(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := newPruneSrc(t, testSeed(t, 11))
	truth := map[string]string{}
	var order []string
	for range 8 {
		src.change(t)
		res := e.mustBackup(nil, src.dir)
		truth[res.ID] = digest(t, src.dir)
		order = append(order, res.ID)
	}
	// A policy, dry run: nothing goes.
	var groups []forgetGroupJSON
	e.mustRunJSON(&groups, "forget", "--keep-last", "3", "--dry-run")
	if len(groups) != 1 || len(groups[0].Keep) != 3 || len(groups[0].Remove) != 5 || groups[0].Keep[0] != order[7] {
		t.Fatalf("forget --keep-last 3 --dry-run: %+v", groups)
	}
	if n := len(e.snapshotIDs()); n != 8 {
		t.Fatalf("dry run removed snapshots: %d left", n)
	}
	// Forget every other snapshot by ID.
	var gone []string
	for i, id := range order {
		if i%2 == 0 {
			gone = append(gone, id[:10])
			delete(truth, id)
		}
	}
	e.mustRun(append([]string{"forget"}, gone...)...)
	before := e.repoSize()
	var plan struct {
		BytesFreed    uint64 `json:"bytes_freed"`
		PacksDeleted  int    `json:"packs_to_delete"`
		PacksRepacked int    `json:"packs_to_repack"`
	}
	e.mustRunJSON(&plan, "prune", "--dry-run")
	if plan.BytesFreed == 0 || e.repoSize() != before {
		t.Fatalf("prune --dry-run: %+v, size %d -> %d", plan, before, e.repoSize())
	}
	out := e.mustRun("prune", "--max-unused", "0")
	t.Logf("prune:\n%s", out)
	if after := e.repoSize(); after >= before {
		t.Errorf("repository %d bytes before prune, %d after", before, after)
	}
	e.checkReadData()
	ids := e.snapshotIDs()
	if len(ids) != len(truth) {
		t.Fatalf("%d snapshots, want %d", len(ids), len(truth))
	}
	for _, id := range ids {
		e.verifyRestore(id, truth[id])
	}
	// forget --prune with a policy.
	e.mustRun("forget", "--keep-last", "1", "--prune")
	e.checkReadData()
	ids = e.snapshotIDs()
	if len(ids) != 1 || ids[0] != order[7] {
		t.Fatalf("after forget --keep-last 1: %v", ids)
	}
	e.verifyRestore(ids[0], truth[ids[0]])
	// No policy is a usage error, not "remove everything".
	if _, _, code := e.run("forget"); code != exitUsage {
		t.Errorf("forget without policy: exit %d, want %d", code, exitUsage)
	}
}

// startKill starts hoard and kills it with SIGKILL after a random delay
// (it may finish first). It returns the exit code, -1 if killed.
func (e *env) startKill(rng *rand.Rand, maxDelay time.Duration, args ...string) int {
	e.t.Helper()
	cmd := e.command(args...)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Duration(rng.Int64N(int64(maxDelay)))):
		_ = cmd.Process.Kill()
		<-done
	}
	return cmd.ProcessState.ExitCode()
}

// TestE2EPruneCrash kills backup, forget and prune at random moments on
// one repository; after each round the repository checks clean and every
// snapshot that was not forgotten restores byte-identical.
func TestE2EPruneCrash(t *testing.T) {
	t.Parallel()
	if !sweeps() {
		t.Skipf("a slow sweep of prune crashes: set %s=1 to run it (.ci/run does)", sweepsEnv)
	}
	seed := testSeed(t, uint64(time.Now().UnixNano()))
	rng := rand.New(rand.NewPCG(seed, 5))
	e := newEnv(t)
	src := newPruneSrc(t, seed)
	truth := map[string]string{} // snapshot ID -> digest of what it holds
	iters := 50
	start := time.Now()
	var killed [3]int
	for it := range iters {
		src.change(t)
		want := digest(t, src.dir)
		if code := e.startKill(rng, 600*time.Millisecond, "backup", src.dir); code == -1 {
			killed[0]++
		} else if code != 0 {
			t.Fatalf("iteration %d: backup exit %d", it, code)
		}
		ids := e.snapshotIDs()
		for _, id := range ids {
			if _, ok := truth[id]; !ok {
				truth[id] = want // the backup got as far as its snapshot
			}
		}
		if code := e.startKill(rng, 400*time.Millisecond, "forget", "--keep-last", "3"); code == -1 {
			killed[1]++
		} else if code != 0 {
			t.Fatalf("iteration %d: forget exit %d", it, code)
		}
		if code := e.startKill(rng, 800*time.Millisecond, "prune", "--max-unused", "0"); code == -1 {
			killed[2]++
		} else if code != 0 {
			t.Fatalf("iteration %d: prune exit %d", it, code)
		}
		e.checkReadData()
		ids = e.snapshotIDs()
		live := map[string]bool{}
		for _, id := range ids {
			if _, ok := truth[id]; !ok {
				t.Fatalf("iteration %d: unknown snapshot %s", it, id[:8])
			}
			live[id] = true
		}
		for id := range truth {
			if !live[id] {
				delete(truth, id)
			}
		}
		// The newest and one other each round; all of them at the end.
		if len(ids) > 0 {
			e.verifyRestore(ids[len(ids)-1], truth[ids[len(ids)-1]])
			if len(ids) > 1 {
				id := ids[rng.IntN(len(ids)-1)]
				e.verifyRestore(id, truth[id])
			}
		}
	}
	e.mustRun("prune")
	e.checkReadData()
	for _, id := range e.snapshotIDs() {
		e.verifyRestore(id, truth[id])
	}
	out, _, _ := e.run("check")
	if strings.Contains(out, "not in any index") {
		t.Errorf("a final prune left unindexed packs:\n%s", out)
	}
	t.Logf("%d rounds in %v; killed %d backups, %d forgets, %d prunes", iters, time.Since(start).Round(time.Second), killed[0], killed[1], killed[2])
}

// TestE2EPruneConcurrent starts two backups and a prune together: each
// either runs or fails at once with the lock message (exit 11), and no
// snapshot loses a blob.
func TestE2EPruneConcurrent(t *testing.T) {
	seed := testSeed(t, 21)
	e := newEnv(t)
	srcs := []*pruneSrc{newPruneSrc(t, seed), newPruneSrc(t, seed+1)}
	truth := map[string]string{}
	var ran, locked [2]int
	for round := range 5 {
		wants := make([]string, 2)
		for i, s := range srcs {
			s.change(t)
			wants[i] = digest(t, s.dir)
		}
		before := map[string]bool{}
		for _, id := range e.snapshotIDs() {
			before[id] = true
		}
		var wg sync.WaitGroup
		codes := make([]int, 3)
		stderrs := make([]string, 3)
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				args := []string{"prune", "--max-unused", "0"}
				if i < 2 {
					args = []string{"--json", "backup", srcs[i].dir}
				}
				cmd := e.command(args...)
				var so, se strings.Builder
				cmd.Stdout, cmd.Stderr = &so, &se
				err := cmd.Run()
				codes[i] = cmd.ProcessState.ExitCode()
				stderrs[i] = se.String()
				if err != nil && codes[i] == 0 {
					codes[i] = -2
				}
			}()
		}
		wg.Wait()
		for i, c := range codes {
			kind := i / 2 // 0: backups, 1: prune
			switch c {
			case 0:
				ran[kind]++
			case exitLocked:
				locked[kind]++
				if !strings.Contains(stderrs[i], "locked") || !strings.Contains(stderrs[i], "pid") {
					t.Errorf("round %d: lock message unclear: %s", round, stderrs[i])
				}
			default:
				t.Fatalf("round %d: process %d exit %d: %s", round, i, c, stderrs[i])
			}
		}
		for _, id := range e.snapshotIDs() {
			if before[id] {
				continue
			}
			// Which source? Restore and compare against both.
			target := filepath.Join(t.TempDir(), "r")
			e.mustRun("restore", id, "--target", target)
			got := digest(t, filepath.Join(target, "src"))
			os.RemoveAll(target)
			if got != wants[0] && got != wants[1] {
				t.Fatalf("round %d: new snapshot %s matches neither source", round, id[:8])
			}
			truth[id] = got
		}
		e.checkReadData()
		for id, want := range truth {
			e.verifyRestore(id, want)
		}
		// Give the next prune something to do.
		e.mustRun("forget", "--keep-last", "2", "--group-by", "")
		for id := range truth {
			if !slices.Contains(e.snapshotIDs(), id) {
				delete(truth, id)
			}
		}
	}
	t.Logf("backups: %d ran, %d locked out; prunes: %d ran, %d locked out", ran[0], locked[0], ran[1], locked[1])
}
