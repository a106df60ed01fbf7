package main

import (
	"context"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/mount"
)

func mountCommand(g *globals) *cli.Command {
	var allowOther bool
	return &cli.Command{
		Name:  "mount",
		Usage: "serve the snapshots as a read-only file system (FUSE) until interrupted",
		Description: "DIR gets ids/<ID>, snapshots/<time> (and latest), hosts/<host>/<time> and tags/<tag>/<time>.\n" +
			"Snapshots taken while mounted appear within seconds. Ctrl-C (or SIGTERM, or fusermount3 -u DIR) unmounts.\n" +
			"Needs /dev/fuse and fusermount3 (Debian: fuse3).",
		ArgsUsage: "DIR",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "allow-other", Destination: &allowOther, Usage: "let other users read the files (needs user_allow_other in /etc/fuse.conf)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("mount takes one DIR")
			}
			return runMount(c.Context, g, c.Args().First(), allowOther)
		},
	}
}

func runMount(ctx context.Context, g *globals, dir string, allowOther bool) error {
	st, err := os.Stat(dir)
	if err != nil {
		return usagef("mount: %v", err)
	}
	if !st.IsDir() {
		return usagef("mount: %s is not a directory", dir)
	}
	if es, err := os.ReadDir(dir); err != nil || len(es) > 0 {
		return usagef("mount: %s is not an empty directory", dir)
	}
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true, read: true})
	if err != nil {
		return err
	}
	defer done()
	if !g.json {
		fmt.Fprintf(g.stderr, "serving the snapshots at %s; Ctrl-C unmounts\n", dir)
	}
	return mount.Mount(ctx, r, dir, mount.Options{AllowOther: allowOther, Logger: g.log})
}
