package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/config"
	"github.com/hoard-backup/hoard/database"
	"github.com/hoard-backup/hoard/dump/drill"
)

// drillError is a restore drill whose restored database failed an engine
// check or whose row counts differ from the expected ones.
type drillError struct{ msg string }

func (e drillError) Error() string { return e.msg }

func dbVerifyCommand(g *globals) *cli.Command {
	stale := drill.StaleAfter
	var all bool
	return &cli.Command{
		Name:      "verify",
		Usage:     "restore drill: restore a database snapshot into a scratch database, check it and compare row counts",
		ArgsUsage: "NAME [SNAPSHOT|latest]   (or --latest-per-database)",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "leftovers-older-than", Value: stale, Destination: &stale,
				Usage: "first drop scratch databases of earlier, killed drills older than this"},
			&cli.BoolFlag{Name: "latest-per-database", Destination: &all,
				Usage: "drill the latest snapshot of every database in the config file (and list the repository's others as skipped)"},
		},
		Action: func(c *cli.Context) error {
			if stale < 0 {
				return usagef("--leftovers-older-than must not be negative")
			}
			if all {
				if c.NArg() > 0 {
					return usagef("db verify --latest-per-database takes no arguments")
				}
				return runDBVerifyAll(c.Context, g, stale)
			}
			if c.NArg() < 1 || c.NArg() > 2 {
				return usagef("db verify takes NAME [SNAPSHOT|latest], or --latest-per-database")
			}
			ref := "latest"
			if c.NArg() == 2 {
				ref = c.Args().Get(1)
			}
			return runDBVerify(c.Context, g, c.Args().First(), ref, stale)
		},
	}
}

func runDBVerify(ctx context.Context, g *globals, name, ref string, stale time.Duration) error {
	d, err := g.database(name)
	if err != nil {
		return err
	}
	eng, err := g.engine(ctx, d)
	if err != nil {
		return err
	}
	if d.Physical {
		return usagef("database %s: %v", d.Name, database.ErrNoDrill)
	}
	if _, err := database.Checker(eng); err != nil {
		return usagef("database %s: %v", d.Name, err)
	}
	// Leftovers of a drill that was killed.
	left, err := database.DropLeftovers(ctx, eng, d.TempDir, stale)
	for _, l := range left {
		fmt.Fprintf(g.stderr, "hoard: dropped the leftover scratch database %s\n", l)
	}
	if err != nil {
		return err
	}

	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true, read: true})
	if err != nil {
		return err
	}
	defer done()
	sn, _, err := database.Find(ctx, r, d.Name, ref)
	if err != nil {
		return err
	}
	out, err := database.RunDrill(ctx, r, eng, d.Name, sn, database.DrillOptions{TempDir: d.TempDir, Progress: g.restoreProgress})
	if err != nil {
		return err
	}
	out.Leftovers = left
	if out.Expected == "live" {
		fmt.Fprintf(g.stderr, "hoard: snapshot %s records no fingerprint of %s: comparing row counts with the live database\n", sn.ID.Str(), d.Name)
	}
	if g.json {
		if err := printJSON(g.stdout, out); err != nil {
			return err
		}
	} else if out.Passed {
		printDrill(g, out)
	}
	if !out.Passed {
		return drillError{fmt.Sprintf("restore drill of %s from snapshot %s failed (row counts expected as %s):\n  %s",
			d.Name, sn.ID.Str(), expectedFrom[out.Expected], strings.Join(out.Failures, "\n  "))}
	}
	return nil
}

// expectedFrom says where a drill's expected row counts came from.
var expectedFrom = map[string]string{"fingerprint": "the fingerprint recorded at backup time", "live": "the live database's"}

// printDrill prints one drill's outcome as a line of text.
func printDrill(g *globals, d *database.Drill) {
	short := d.Snapshot
	if len(short) > 8 {
		short = short[:8]
	}
	switch {
	case d.Skipped != "":
		fmt.Fprintf(g.stdout, "restore drill of %s skipped: %s\n", d.Database, d.Skipped)
	case d.Error != "":
		fmt.Fprintf(g.stdout, "restore drill of %s (%s) from snapshot %s failed: %s\n", d.Database, d.Engine, short, d.Error)
	case !d.Passed:
		fmt.Fprintf(g.stdout, "restore drill of %s (%s) from snapshot %s failed:\n  %s\n", d.Database, d.Engine, short, strings.Join(d.Failures, "\n  "))
	default:
		fmt.Fprintf(g.stdout, "restore drill of %s (%s) from snapshot %s passed: %d checks, %d tables (row counts as %s), restore %s, checks %s\n",
			d.Database, d.Engine, short, len(d.Checks), len(d.Tables), expectedFrom[d.Expected],
			time.Duration(d.RestoreNS).Round(time.Millisecond), time.Duration(d.CheckNS).Round(time.Millisecond))
	}
}

// drillsFailed is the drillError of several drills, or nil if none failed.
func drillsFailed(drills []*database.Drill) error {
	var failed []string
	for _, d := range drills {
		if d.Failed() {
			failed = append(failed, d.Database)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return drillError{fmt.Sprintf("restore drill failed for %s", strings.Join(failed, ", "))}
}

// drillTargets are the engines of the configured databases dbs. A
// database whose engine cannot be built is drilled as a failure.
func drillTargets(ctx context.Context, g *globals, dbs []*config.Database) []database.DrillTarget {
	var targets []database.DrillTarget
	for _, d := range dbs {
		eng, err := g.engine(ctx, d)
		targets = append(targets, database.DrillTarget{Name: d.Name, Engine: eng, TempDir: d.TempDir, Err: err})
	}
	return targets
}

// runDBVerifyAll drills the latest snapshot of every configured database.
func runDBVerifyAll(ctx context.Context, g *globals, stale time.Duration) error {
	cfg, err := g.needConfig()
	if err != nil {
		return err
	}
	var dbs []*config.Database
	for _, n := range cfg.DatabaseNames() {
		dbs = append(dbs, cfg.Databases[n])
	}
	targets := drillTargets(ctx, g, dbs)
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true, read: true})
	if err != nil {
		return err
	}
	defer done()
	drills, err := database.DrillLatest(ctx, r, targets, stale, g.restoreProgress)
	if err != nil {
		return err
	}
	if g.json {
		if err := printJSON(g.stdout, map[string]any{"drills": drills}); err != nil {
			return err
		}
	} else {
		for _, d := range drills {
			printDrill(g, d)
		}
	}
	return drillsFailed(drills)
}
