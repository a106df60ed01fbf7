package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/config"
	"github.com/hoard-backup/hoard/database"
	"github.com/hoard-backup/hoard/dump/drill"
	"github.com/hoard-backup/hoard/snapshot"
)

type runOptions struct {
	tags cli.StringSlice
	host string
}

func runCommand(g *globals) *cli.Command {
	o := &runOptions{}
	return &cli.Command{
		Name: "run",
		Usage: "back up every database and media tree the config file names into one snapshot " +
			"(the line for cron); no snapshot unless every dump succeeds",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "tag", Destination: &o.tags, Usage: "add a tag (repeatable)"},
			&cli.StringFlag{Name: "host", Destination: &o.host, Usage: "record this host name instead of the config's or the machine's"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("run takes no arguments: it backs up what the config file names")
			}
			return runRun(c.Context, g, o)
		},
	}
}

func runRun(ctx context.Context, g *globals, o *runOptions) error {
	cfg, err := g.needConfig()
	if err != nil {
		return err
	}
	var (
		dbs   []*config.Database
		media []*config.Media
	)
	for _, n := range cfg.DatabaseNames() {
		dbs = append(dbs, cfg.Databases[n])
	}
	for _, n := range cfg.MediaNames() {
		media = append(media, cfg.Media[n])
	}
	if len(dbs) == 0 && len(media) == 0 {
		return usagef("%s names no databases and no media trees", cfg.File)
	}
	sn, err := runItems(ctx, g, snapshot.KindRun, dbs, media, o.tags.Value(), o.host)
	if err != nil {
		return err // no snapshot: nothing is forgotten
	}
	incomplete := sn.Summary.Errors > 0
	if !g.json {
		if err := reportItems(g, sn, nil); err != nil && !incomplete {
			return err
		}
	}
	extra := map[string]any{}
	var failures []error
	drills, verifyErr := verifyAfterRun(ctx, g, sn, dbs)
	if drills != nil {
		extra["verify"] = drills
	}
	if verifyErr != nil {
		failures = append(failures, verifyErr)
	}
	spots, spotErr := spotChecksAfterRun(ctx, g, sn, media)
	if len(spots) > 0 {
		extra["spot_check"] = spots
	}
	if spotErr != nil {
		failures = append(failures, spotErr)
	}
	if !cfg.Retention.IsZero() {
		switch {
		case incomplete:
			g.log.Warn("the snapshot is incomplete, so [retention] was not applied", "snapshot", sn.ID.Str())
		case verifyErr != nil || spotErr != nil:
			// Forgetting older snapshots is not safe when the newest may
			// not restore, or may not hold what the live data holds.
			g.log.Warn("a restore drill or spot check of the snapshot failed, so [retention] was not applied", "snapshot", sn.ID.Str())
		default:
			ret, err := applyRetention(ctx, g, cfg.Retention)
			for k, v := range ret {
				extra[k] = v
			}
			if err != nil {
				failures = append(failures, fmt.Errorf("[retention] failed: %w", err))
			}
		}
	}
	if len(cfg.Copies) > 0 {
		copies, err := copyAfterRun(ctx, g, cfg)
		if len(copies) > 0 {
			extra["copy"] = copies
		}
		if err != nil {
			failures = append(failures, err)
		}
	}
	if g.json {
		if err := reportItems(g, sn, extra); err != nil && !incomplete {
			return err
		}
	}
	if len(failures) > 0 {
		return fmt.Errorf("snapshot %s saved, but %w", sn.ID.Str(), errors.Join(failures...))
	}
	return incompleteIf(sn)
}

// verifyAfterRun drills the dumps in sn of the databases whose
// verify_after_run is set, and prints them (as text; JSON is printed with
// the run). The error is a drillError if a drill failed.
func verifyAfterRun(ctx context.Context, g *globals, sn *snapshot.Snapshot, dbs []*config.Database) ([]*database.Drill, error) {
	var verify []*config.Database
	for _, d := range dbs {
		if d.VerifyAfterRun {
			verify = append(verify, d)
		}
	}
	if len(verify) == 0 {
		return nil, nil
	}
	targets := drillTargets(ctx, g, verify)
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true, read: true})
	if err != nil {
		return nil, fmt.Errorf("restore drills: %w", err)
	}
	defer done()
	drills := database.DrillSnapshot(ctx, r, sn, targets, drill.StaleAfter, g.restoreProgress)
	if !g.json {
		for _, d := range drills {
			printDrill(g, d)
		}
	}
	return drills, drillsFailed(drills)
}
