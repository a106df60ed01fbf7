package main

import (
	"context"

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
	return runItems(ctx, g, "run", dbs, media, o.tags.Value(), o.host)
}
