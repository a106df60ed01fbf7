package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// migrateCommand upgrades a repository to the format version this hoard
// writes (docs/FORMAT.md, section 14.5): version 1 repositories are read
// as they are, but take delta blobs only once upgraded.
func migrateCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "upgrade the repository to the newest format version (version 2: delta blobs); older hoard versions cannot open it afterwards",
		Action: func(c *cli.Context) error {
			ctx, r, done, err := g.openRepo(c.Context, openOptions{lock: true, exclusive: true})
			if err != nil {
				return err
			}
			defer done()
			from := r.Config().Version
			upgraded, err := r.Upgrade(ctx)
			if err != nil {
				return err
			}
			if !upgraded {
				fmt.Fprintf(g.stdout, "repository is at format version %d already\n", from)
				return nil
			}
			fmt.Fprintf(g.stdout, "repository upgraded from format version %d to %d\n", from, r.Config().Version)
			return nil
		},
	}
}
