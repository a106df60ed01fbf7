package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EWriteOnlyRetention: a write-only backup host applies [retention]
// with prune = true: hoard run exits 0, forgets what the policy does not
// keep, and deletes the packs only forgotten snapshots used; packs that are
// partly used are left for a full key, and the output says so. forget
// --dry-run works with the write-only key too.
func TestE2EWriteOnlyRetention(t *testing.T) {
	t.Parallel()
	full := newEnv(t)
	woPass := filepath.Join(t.TempDir(), "wo-pass")
	if err := os.WriteFile(woPass, []byte("write-only passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	full.mustRun("key", "add", "--write-only", "--s2k", "iterated", "--new-password-file", woPass)
	wo := full.on(t)
	wo.pwFile = woPass

	media := filepath.Join(t.TempDir(), "site")
	if err := os.MkdirAll(media, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("[media.site]\npaths = [%q]\n\n[retention]\nkeep_last = 1\nprune = true\n", media)
	wo.writeConfig(cfg)
	full.writeConfig(cfg)

	for i := range 3 {
		// A new file each time, never kept: its pack becomes unused.
		data := make([]byte, 64<<10)
		if _, err := newDataGen(uint64(100 + i)).Read(data); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(media, fmt.Sprintf("upload-%d.bin", i))
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			os.Remove(filepath.Join(media, fmt.Sprintf("upload-%d.bin", i-1)))
		}
		out, stderr, code := wo.run("run")
		if code != 0 {
			t.Fatalf("run %d with a write-only key: exit %d\nstdout: %s\nstderr: %s", i, code, out, stderr)
		}
		if i > 0 && !containsAll(out, "removed 1 snapshot", "write-only key: only packs no kept snapshot uses were deleted", "needs a full key") {
			t.Errorf("run %d output:\n%s", i, out)
		}
	}
	if n := len(full.snapshotIDs()); n != 1 {
		t.Fatalf("%d snapshots after three runs with keep_last = 1", n)
	}
	var dry struct {
		Forget []struct {
			Keep []string `json:"keep"`
		} `json:"forget"`
		Prune *struct {
			DryRun    bool `json:"dry_run"`
			WriteOnly bool `json:"write_only"`
		} `json:"prune"`
	}
	wo.mustRunJSON(&dry, "forget", "--dry-run")
	if len(dry.Forget) != 1 || len(dry.Forget[0].Keep) != 1 || dry.Prune == nil || !dry.Prune.WriteOnly {
		t.Fatalf("forget --dry-run with a write-only key: %+v", dry)
	}
	// What is left restores with the full key and checks clean: the
	// write-only prune deleted nothing that is used.
	full.mustRun("check", "--read-data")
	target := t.TempDir()
	full.mustRun("restore", "latest", "--target", target)
	if _, err := os.Stat(filepath.Join(target, "media", "site", "site", "upload-2.bin")); err != nil {
		t.Fatal(err)
	}
	// hoard prune itself works with the write-only key, and a full key
	// then has nothing unused left in whole packs.
	if out := wo.mustRun("prune"); !strings.Contains(out, "needs a full key") {
		t.Errorf("prune with a write-only key:\n%s", out)
	}
	full.mustRun("prune", "--max-unused", "0%")
	full.mustRun("check", "--read-data")
}

// TestE2ERetentionGroupChange: adding a [media] section makes a new group;
// forget (and run) say that the old group gets no new snapshots.
func TestE2ERetentionGroupChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	for _, d := range []string{"a", "b"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, d, "f"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	one := fmt.Sprintf("[media.a]\npaths = [%q]\n\n[retention]\nkeep_last = 1\n", filepath.Join(dir, "a"))
	e.writeConfig(one)
	e.mustRun("run")
	e.writeConfig(one + fmt.Sprintf("\n[media.b]\npaths = [%q]\n", filepath.Join(dir, "b")))
	if out := e.mustRun("run"); !strings.Contains(out, "gets no new snapshots") {
		t.Errorf("run after adding a media section:\n%s", out)
	}
	if out := e.mustRun("forget", "--dry-run"); !containsAll(out, "note: group ", "gets no new snapshots", "keeps its 1 snapshot for ever") {
		t.Errorf("forget --dry-run:\n%s", out)
	}
	// One group: no note.
	if out := e.mustRun("forget", "--dry-run", "--keep-last", "5", "--group-by", "host"); strings.Contains(out, "gets no new snapshots") {
		t.Errorf("forget with one group:\n%s", out)
	}
}
