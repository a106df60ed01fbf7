package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestE2ERunRetention: hoard run applies hoard.toml's [retention] after
// each successful backup, and forgets nothing when the backup fails.
func TestE2ERunRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	media := filepath.Join(t.TempDir(), "site")
	if err := os.MkdirAll(media, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(media, "page.txt")
	cfg := fmt.Sprintf("[media.site]\npaths = [%q]\n\n[retention]\nkeep_last = 2\nprune = true\n", media)
	e.writeConfig(cfg)

	var made []string
	for i := range 4 {
		if err := os.WriteFile(file, []byte(fmt.Sprintf("version %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		var res struct {
			ID     string `json:"id"`
			Forget []struct {
				Keep   []string `json:"keep"`
				Remove []string `json:"remove"`
			} `json:"forget"`
			Prune *struct {
				DryRun bool `json:"dry_run"`
			} `json:"prune"`
		}
		e.mustRunJSON(&res, "run")
		made = append(made, res.ID)
		if len(res.Forget) != 1 {
			t.Fatalf("run %d: forget groups %+v", i, res.Forget)
		}
		wantRemoved := 0
		if i >= 2 {
			wantRemoved = 1
		}
		if g := res.Forget[0]; len(g.Remove) != wantRemoved || len(g.Keep) != min(i+1, 2) {
			t.Errorf("run %d: forget %+v", i, g)
		}
		if (res.Prune != nil) != (wantRemoved > 0) {
			t.Errorf("run %d: prune %+v, want it only after a removal", i, res.Prune)
		}
	}

	ids := e.snapshotIDs()
	slices.Sort(ids)
	want := slices.Clone(made[2:])
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("snapshots %v, want the newest two %v of %v", ids, want, made)
	}
	for i, id := range made[2:] {
		target := t.TempDir()
		e.mustRun("restore", id[:8], "--target", target)
		got, err := os.ReadFile(filepath.Join(target, "media", "site", "site", "page.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if w := fmt.Sprintf("version %d\n", i+2); string(got) != w {
			t.Errorf("snapshot %s restores %q, want %q", id[:8], got, w)
		}
	}
	e.mustRun("check", "--read-data")

	// Text output says what was forgotten.
	if out := e.mustRun("run"); !containsAll(out, "remove "+made[2][:8], "removed 1 snapshot\n") {
		t.Errorf("run output:\n%s", out)
	}

	// A failed backup forgets nothing.
	before := e.snapshotIDs()
	e.writeConfig(cfg + fmt.Sprintf("\n[databases.gone]\npath = %q\n", filepath.Join(t.TempDir(), "missing.db")))
	if _, stderr, code := e.run("run"); code == 0 {
		t.Fatalf("run with a missing database succeeded: %s", stderr)
	}
	if after := e.snapshotIDs(); !slices.Equal(after, before) {
		t.Errorf("after a failed run: snapshots %v, want %v", after, before)
	}

	// hoard forget without flags applies [retention] too: after two more
	// snapshots made without it (backup, not run), it keeps the newest two.
	e.writeConfig(cfg)
	e.mustRun("backup", media)
	e.mustRun("backup", media)
	// prune = true in the section: --json prints forget's groups and what
	// prune would do.
	var dry struct {
		Forget []struct {
			Keep   []string `json:"keep"`
			Remove []string `json:"remove"`
		} `json:"forget"`
		Prune *struct {
			DryRun bool `json:"dry_run"`
		} `json:"prune"`
	}
	e.mustRunJSON(&dry, "forget", "--dry-run")
	if g := dry.Forget; len(g) != 1 || len(g[0].Keep) != 2 || len(g[0].Remove) != 2 || dry.Prune == nil || !dry.Prune.DryRun {
		t.Fatalf("forget --dry-run with [retention]: %+v", dry)
	}
	if n := len(e.snapshotIDs()); n != 4 {
		t.Fatalf("a dry run left %d snapshots, want 4", n)
	}
	if out := e.mustRun("forget"); !containsAll(out, "policy: [retention] of ", "removed 2 snapshots", "unused blob copies") {
		t.Errorf("forget with [retention] printed:\n%s", out)
	}
	if n := len(e.snapshotIDs()); n != 2 {
		t.Fatalf("forget with [retention] left %d snapshots, want 2", n)
	}
	// Without the section, forget with no policy still refuses.
	bare := e.on(t)
	bare.writeConfig(fmt.Sprintf("[media.site]\npaths = [%q]\n", media))
	bare.mustFail(exitUsage, "forget")
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
