package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// killState is what the harness knows of the repository under kills.
type killState struct {
	c    Config
	res  *Result
	rnd  *rand.Rand
	h    *hoard
	src  *source
	tmp  string
	want map[string]string // snapshot -> digest of its tree: every snapshot the repository may list
	// done holds the snapshots whose backup completed and that no forget
	// (completed or killed) named: they must be listed.
	done map[string]bool
	dur  map[string]time.Duration // how long each command takes, for choosing kill moments
	// pending is the tree of a killed backup (before: the snapshots listed
	// before it) until verify has seen whether it saved its snapshot.
	pending string
	before  []string
}

func runKills(c Config, res *Result, rnd *rand.Rand, pw string) error {
	base := filepath.Join(c.Dir, "kills")
	st := &killState{c: c, res: res, rnd: rnd, tmp: filepath.Join(base, "tmp"),
		h:    &hoard{bin: c.Hoard, repo: filepath.Join(base, "repo"), pw: pw, timeout: c.Timeout},
		want: map[string]string{}, done: map[string]bool{}, dur: map[string]time.Duration{}}
	var err error
	if st.src, err = newSource(filepath.Join(base, "src"), rnd); err != nil {
		return err
	}
	if err := mkdirs(st.tmp); err != nil {
		return err
	}
	if o := st.h.run(0, "init", "--s2k", "iterated"); o.code != 0 {
		return fmt.Errorf("init: %v", o)
	}
	for range 2 {
		if err := st.op("backup", 0); err != nil {
			return err
		}
	}
	for _, op := range []string{"forget", "prune", "repair-index", "repair-snapshots"} {
		if err := st.op(op, 0); err != nil {
			return err
		}
	}
	rounds := 0
	for res.KillPoints < c.Kills && rounds < 4*c.Kills+20 {
		rounds++
		op := st.pick()
		d := st.dur[op]
		if d == 0 {
			d = time.Second
		}
		// Anywhere from the start (opening the key) to the end.
		after := time.Duration(float64(d) * (0.05 + 0.95*rnd.Float64()))
		if err := st.op(op, after); err != nil {
			return err
		}
		if rounds%20 == 0 {
			c.logf("kills: %d kill points in %d rounds; corrupt %d, lost %d, unrestorable %d, wrong bytes %d",
				res.KillPoints, rounds, res.Corrupt, res.LostSnapshots, res.Unrestorable, res.WrongBytes)
		}
	}
	// Finally every snapshot, listed or not, is accounted for.
	return st.verify(true, true)
}

func mkdirs(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// pick chooses the next command: mostly backups and prunes, forgets when
// the repository holds many snapshots.
func (st *killState) pick() string {
	n := len(st.want)
	switch r := st.rnd.IntN(100); {
	case n > 8 && r < 50:
		return "forget"
	case n < 1 || r < 35:
		return "backup"
	case r < 50:
		if n < 3 {
			return "backup"
		}
		return "forget"
	case r < 75:
		return "prune"
	case r < 87:
		return "repair-index"
	default:
		return "repair-snapshots"
	}
}

// op runs one command, killed after killAfter if that is > 0 and it still
// runs, then checks the repository.
func (st *killState) op(op string, killAfter time.Duration) error {
	var args []string
	var digest string
	var forgotten []string
	switch op {
	case "backup":
		if err := st.src.change(); err != nil {
			return err
		}
		d, err := digestDir(st.src.dir)
		if err != nil {
			return err
		}
		digest = d
		args = []string{"--json", "backup", st.src.dir}
	case "forget":
		ids, o := st.h.snapshots()
		if o.code != 0 {
			st.corrupt("snapshots before forget", o)
			return nil
		}
		if len(ids) == 0 {
			return nil
		}
		for range 1 + st.rnd.IntN(2) {
			forgotten = append(forgotten, ids[st.rnd.IntN(len(ids))])
		}
		slices.Sort(forgotten)
		forgotten = slices.Compact(forgotten)
		args = append([]string{"forget"}, forgotten...)
		if st.rnd.IntN(3) == 0 {
			args = append(args, "--prune")
		}
	case "prune":
		args = []string{"prune", "--max-unused", []string{"0%", "5%", "30%"}[st.rnd.IntN(3)]}
	case "repair-index":
		args = []string{"repair", "index"}
	case "repair-snapshots":
		args = []string{"repair", "snapshots", "--forget"}
	}
	var before []string
	if op == "backup" {
		var o outcome
		if before, o = st.h.snapshots(); o.code != 0 {
			st.corrupt("snapshots before "+op, o)
		}
	}
	// A forget, once started, may have removed what it names.
	for _, f := range forgotten {
		delete(st.done, f)
	}
	o := st.h.run(killAfter, args...)
	if o.panicked {
		st.res.Panics++
		st.c.logf("PANIC in %s: %v", op, o)
	}
	if o.hung {
		st.res.Hangs++
		st.c.logf("HANG in %s", op)
	}
	if o.killed {
		st.res.KillPoints++
		st.res.KillsByOp[op]++
		st.c.debugf("killed %s after %v", op, killAfter.Round(time.Millisecond))
	} else {
		if killAfter > 0 {
			st.res.Completed++
		}
		if o.code != 0 {
			st.res.Failed++
			st.c.logf("FAILED %s (not killed): %v", op, o)
		}
		st.dur[op] = o.dur
	}
	st.pending = ""
	if op == "backup" {
		if !o.killed && o.code == 0 {
			var br struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal([]byte(o.stdout), &br); err != nil || br.ID == "" {
				st.corrupt("backup output", o)
			} else {
				st.want[br.ID] = digest
				st.done[br.ID] = true
			}
		} else {
			// A killed backup may have saved its snapshot: whatever new
			// one verify finds listed must be this tree.
			st.pending, st.before = digest, before
		}
	}
	if o.killed {
		if u := st.h.run(0, "unlock"); u.code != 0 {
			st.corrupt("unlock after a kill", u)
		}
	}
	return st.verify(o.killed || st.rnd.IntN(4) == 0, st.rnd.IntN(25) == 0)
}

// verify checks the repository: check --read-data (with check), completed
// snapshots listed, and restores of some (all with all).
func (st *killState) verify(check, all bool) error {
	if check {
		st.res.Checks++
		if o := st.h.run(0, "check", "--read-data"); o.code != 0 {
			st.corrupt("check --read-data", o)
			st.c.logf("  repairing to go on: repair index, repair snapshots --forget, prune")
			st.h.run(0, "repair", "index")
			st.h.run(0, "repair", "snapshots", "--forget")
			st.h.run(0, "prune")
		}
	}
	ids, o := st.h.snapshots()
	if o.code != 0 {
		st.corrupt("snapshots", o)
		return nil
	}
	if st.pending != "" {
		for _, id := range ids {
			if _, ok := st.want[id]; !ok && !slices.Contains(st.before, id) {
				st.want[id] = st.pending
			}
		}
		st.pending = ""
	}
	for id := range st.done {
		if !slices.Contains(ids, id) {
			st.res.LostSnapshots++
			st.c.logf("LOST snapshot %s", id[:8])
			delete(st.done, id)
		}
	}
	for id := range st.want {
		if !slices.Contains(ids, id) {
			delete(st.want, id) // forgotten
		}
	}
	var sample []string
	if all {
		sample = ids
	} else if len(ids) > 0 {
		// The newest (a killed backup's, perhaps), and now and then another.
		sample = []string{ids[len(ids)-1]}
		if st.rnd.IntN(3) == 0 {
			sample = append(sample, ids[st.rnd.IntN(len(ids))])
		}
	}
	for _, id := range slices.Compact(sample) {
		want, ok := st.want[id]
		if !ok {
			st.res.Unrestorable++
			st.c.logf("UNKNOWN snapshot %s listed", id[:8])
			continue
		}
		st.res.Restores++
		got, o := st.h.restore(st.tmp, id)
		switch {
		case o.panicked:
			st.res.Panics++
			st.c.logf("PANIC in restore: %v", o)
		case o.code != 0:
			st.res.Unrestorable++
			st.c.logf("UNRESTORABLE snapshot %s: %v", id[:8], o)
		case got != want:
			st.res.WrongBytes++
			st.c.logf("WRONG BYTES restoring snapshot %s", id[:8])
		}
	}
	return nil
}

func (st *killState) corrupt(what string, o outcome) {
	st.res.Corrupt++
	st.c.logf("CORRUPT? %s: %v", what, o)
}
