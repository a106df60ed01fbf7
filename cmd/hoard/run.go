package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/config"
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
	sn, err := runItems(ctx, g, "run", dbs, media, o.tags.Value(), o.host)
	if err != nil {
		return err // no snapshot: nothing is forgotten
	}
	if cfg.Retention.IsZero() {
		return reportItems(g, sn, nil)
	}
	if sn.Summary.Errors > 0 {
		g.log.Warn("the snapshot is incomplete, so [retention] was not applied", "snapshot", sn.ID.Str())
		return reportItems(g, sn, nil)
	}
	if !g.json {
		if err := reportItems(g, sn, nil); err != nil {
			return err
		}
	}
	extra, err := applyRetention(ctx, g, cfg.Retention)
	if g.json {
		if jerr := reportItems(g, sn, extra); jerr != nil {
			return jerr
		}
	}
	if err != nil {
		return fmt.Errorf("snapshot %s saved, but [retention] failed: %w", sn.ID.Str(), err)
	}
	return nil
}
