package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFaultsShort is the harness in small: a few kill points and one fault
// of each damage in each file kind. The full run (bench/faults, 200 of
// each) is not part of the tests.
func TestFaultsShort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hoard and runs it about a hundred times")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "hoard")
	if err := Build(bin); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	seed := uint64(time.Now().UnixNano())
	res, err := Run(Config{Kills: 6, Faults: len(fileKinds) * len(damages), Seed: seed, Dir: dir, Hoard: bin, Log: &log})
	if err != nil {
		t.Fatalf("seed %d: %v\n%s", seed, err, log.String())
	}
	var sum strings.Builder
	res.Print(&sum)
	t.Log(sum.String())
	if !res.OK() {
		t.Fatalf("seed %d:\n%s\n%s", seed, sum.String(), log.String())
	}
	if res.KillPoints < 6 || res.Faults != len(fileKinds)*len(damages) {
		t.Fatalf("ran %d kill points and %d faults", res.KillPoints, res.Faults)
	}
	// Damage in a pack, index or snapshot file is found by check --read-data.
	if res.Detected < res.Faults/2 {
		t.Fatalf("check --read-data found %d of %d faults", res.Detected, res.Faults)
	}
}
