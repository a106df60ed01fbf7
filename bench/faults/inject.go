package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/local"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/lock"
	"github.com/hoard-backup/hoard/repo/pack"
)

// fileKinds are the repository file kinds faults go into.
var fileKinds = []string{"config", "key", "index", "snapshot", "data-pack", "tree-pack", "lock"}

// damages are what is done to the file.
var damages = []string{"flip", "truncate", "delete"}

func runFaults(c Config, res *Result, rnd *rand.Rand, pw string) error {
	base := filepath.Join(c.Dir, "faults")
	clean := filepath.Join(base, "clean")
	tmp := filepath.Join(base, "tmp")
	if err := mkdirs(tmp); err != nil {
		return err
	}
	h := &hoard{bin: c.Hoard, repo: clean, pw: pw, timeout: c.Timeout}
	if o := h.run(0, "init", "--s2k", "iterated"); o.code != 0 {
		return fmt.Errorf("init: %v", o)
	}
	src, err := newSource(filepath.Join(base, "src"), rnd)
	if err != nil {
		return err
	}
	// Three snapshots, each from its own backup: its own packs, index file
	// and snapshot file.
	want := map[string]string{}
	for range 3 {
		if err := src.change(); err != nil {
			return err
		}
		d, err := digestDir(src.dir)
		if err != nil {
			return err
		}
		o := h.run(0, "--json", "backup", src.dir)
		var br struct {
			ID string `json:"id"`
		}
		if o.code != 0 || json.Unmarshal([]byte(o.stdout), &br) != nil {
			return fmt.Errorf("backup: %v", o)
		}
		want[br.ID] = d
	}
	files, err := plantLockAndClassify(clean, pw)
	if err != nil {
		return err
	}
	for _, k := range fileKinds {
		if len(files[k]) == 0 {
			return fmt.Errorf("no %s file in the clean repository", k)
		}
	}
	work := filepath.Join(base, "work")
	for i := range c.Faults {
		kind := fileKinds[i%len(fileKinds)]
		damage := damages[(i/len(fileKinds))%len(damages)]
		rel := files[kind][rnd.IntN(len(files[kind]))]
		if err := os.RemoveAll(work); err != nil {
			return err
		}
		if err := copyTree(clean, work); err != nil {
			return err
		}
		what, err := injectFault(filepath.Join(work, rel), damage, rnd)
		if err != nil {
			return err
		}
		res.Faults++
		res.FaultsByKind[kind]++
		fh := &hoard{bin: c.Hoard, repo: work, pw: pw, timeout: c.Timeout}
		note := func(cmd string, o outcome) {
			if o.panicked {
				res.Panics++
				c.logf("PANIC after %s in %s (%s): %s: %v", what, kind, rel, cmd, o)
			}
			if o.hung {
				res.Hangs++
				c.logf("HANG after %s in %s (%s): %s", what, kind, rel, cmd)
			}
			if o.code != 0 {
				res.FailedCodes[o.code]++
				if o.code == 1 {
					res.Unclear++
					res.UnclearKinds[kind+"/"+damage]++
					c.debugf("unclear (exit 1) after %s in %s: %s: %v", what, rel, cmd, o)
				}
			}
		}
		chk := fh.run(0, "check", "--read-data")
		note("check --read-data", chk)
		if chk.code != 0 {
			res.Detected++
		}
		allOK := true
		ids := make([]string, 0, len(want))
		for id := range want {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if kind == "snapshot" && damage == "delete" && strings.HasSuffix(rel, id) {
				// A deleted snapshot file is a snapshot the repository no
				// longer has: nothing can tell (docs/gpg.md: deleting
				// snapshots is not prevented).
				continue
			}
			res.FaultRestore++
			got, o := fh.restore(tmp, id)
			note("restore", o)
			switch {
			case o.code != 0:
				allOK = false
			case got != want[id]:
				res.WrongBytes++
				allOK = false
				c.logf("WRONG BYTES after %s in %s (%s): snapshot %s", what, kind, rel, id[:8])
			}
		}
		if allOK {
			res.Harmless++
		} else if chk.code == 0 {
			res.Missed++
			c.logf("MISSED: check --read-data passed after %s in %s (%s), yet a restore failed", what, kind, rel)
		}
		c.debugf("fault %d: %s in %s (%s): check exit %d, all restored: %v", i, what, kind, rel, chk.code, allOK)
		if (i+1)%25 == 0 {
			c.logf("faults: %d done; detected %d, harmless %d, wrong bytes %d, panics %d, unclear %d",
				i+1, res.Detected, res.Harmless, res.WrongBytes, res.Panics, res.Unclear)
		}
	}
	return os.RemoveAll(work)
}

// injectFault damages the file at p and says how.
func injectFault(p, damage string, rnd *rand.Rand) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	switch damage {
	case "flip":
		if len(b) == 0 {
			return "nothing to flip", nil
		}
		off := rnd.IntN(len(b))
		bit := rnd.IntN(8)
		b[off] ^= 1 << bit
		return fmt.Sprintf("bit %d of byte %d of %d flipped", bit, off, len(b)), os.WriteFile(p, b, 0o600)
	case "truncate":
		n := 0
		if len(b) > 0 {
			n = rnd.IntN(len(b))
		}
		return fmt.Sprintf("truncated from %d to %d bytes", len(b), n), os.WriteFile(p, b[:n], 0o600)
	default:
		return "deleted", os.Remove(p)
	}
}

// plantLockAndClassify writes a shared lock of another host into the
// repository (as a running backup elsewhere would leave) and returns its
// files by kind, as paths relative to the repository folder.
func plantLockAndClassify(dir, pw string) (map[string][]string, error) {
	ctx := context.Background()
	be, err := local.Open(ctx, local.Config{Path: dir})
	if err != nil {
		return nil, err
	}
	pass, err := os.ReadFile(pw)
	if err != nil {
		return nil, err
	}
	r, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte(strings.TrimSpace(string(pass)))})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	info, _ := json.Marshal(lock.Info{Time: time.Now().UTC(), Host: "another-host.example", PID: 4242, Nonce: "00112233445566778899aabbccddeeff"})
	if _, err := r.SaveUnpacked(ctx, backends.LockFile, info); err != nil {
		return nil, err
	}
	if _, err := r.LoadIndex(ctx); err != nil {
		return nil, err
	}
	out := map[string][]string{"config": {"config"}}
	for _, p := range r.Index().Packs() {
		kind := "data-pack"
		if p.Kind == pack.TreeBlob {
			kind = "tree-pack"
		}
		out[kind] = append(out[kind], filepath.FromSlash(repo.FilePath(repo.PackFile, p.ID)))
	}
	for dirName, kind := range map[string]string{"keys": "key", "index": "index", "snapshots": "snapshot", "locks": "lock"} {
		ents, err := os.ReadDir(filepath.Join(dir, dirName))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			out[kind] = append(out[kind], filepath.Join(dirName, e.Name()))
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out, nil
}
