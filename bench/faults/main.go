// Command faults is hoard's crash and fault harness. It runs the real hoard
// binary against local repositories of small generated trees and counts
// what goes wrong:
//
//   - kill points: backup, forget, prune, repair index and repair snapshots
//     are killed with SIGKILL at random moments; after each kill (and a
//     normal `unlock`) the repository must pass `check --read-data`, and
//     every snapshot whose command completed must still be listed and
//     restore byte-exactly (hoard has no copy command yet, so copy is not
//     among them);
//   - faults: one repository file of each kind (config, key, index,
//     snapshot, data pack, tree pack, lock) gets a bit flip, a truncation
//     or is deleted, on a fresh copy of a clean repository; then `check
//     --read-data` and a restore of every snapshot must give the right
//     bytes or a clear error (a documented exit code other than 1), never
//     wrong bytes, a panic or a hang.
//
// It prints its counts and exits 1 if any corrupt repository, lost
// snapshot, wrong byte, panic or hang was seen.
//
//	go run ./bench/faults -kills 200 -faults 200
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	var c Config
	flag.IntVar(&c.Kills, "kills", 200, "number of kill points")
	flag.IntVar(&c.Faults, "faults", 200, "number of injected faults")
	flag.Uint64Var(&c.Seed, "seed", uint64(time.Now().UnixNano()), "random seed (printed; give it to repeat a run's choices)")
	flag.StringVar(&c.Dir, "dir", "", "work directory (default: a new temporary directory, removed afterwards)")
	flag.StringVar(&c.Hoard, "hoard", "", "hoard binary (default: built from ./cmd/hoard)")
	flag.BoolVar(&c.Verbose, "v", false, "print every kill point and fault")
	flag.IntVar(&c.Workers, "workers", 1, "independent repositories worked on at once")
	flag.Parse()
	if c.Dir == "" {
		d, err := os.MkdirTemp("", "hoard-faults-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defer os.RemoveAll(d)
		c.Dir = d
	}
	if c.Hoard == "" {
		bin := filepath.Join(c.Dir, "hoard")
		if err := Build(bin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		c.Hoard = bin
	}
	c.Log = os.Stdout
	res, err := Run(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(2)
	}
	res.Print(os.Stdout)
	if !res.OK() {
		os.Exit(1)
	}
}
