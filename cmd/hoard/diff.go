package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/snapshot"
)

func diffCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "list paths added (+), removed (-), modified (M) or changed in metadata only (U) from snapshot A to B",
		ArgsUsage: "A B",
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usagef("diff takes two snapshots")
			}
			return runDiff(c.Context, g, c.Args().Get(0), c.Args().Get(1))
		},
	}
}

func runDiff(ctx context.Context, g *globals, refA, refB string) error {
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true})
	if err != nil {
		return err
	}
	defer done()
	a, err := findSnapshot(ctx, r, refA)
	if err != nil {
		return err
	}
	b, err := findSnapshot(ctx, r, refB)
	if err != nil {
		return err
	}
	for _, sn := range []*snapshot.Snapshot{a, b} {
		if err := checkExpansion(ctx, r, sn.Tree); err != nil {
			return err
		}
	}
	changes, sum, err := snapshot.Diff(ctx, r, a.Tree, b.Tree)
	if err != nil {
		return err
	}
	if g.json {
		type change struct {
			Kind string `json:"kind"`
			Path string `json:"path"`
		}
		out := struct {
			A        string   `json:"a"`
			B        string   `json:"b"`
			Changes  []change `json:"changes"`
			Added    int      `json:"added"`
			Removed  int      `json:"removed"`
			Modified int      `json:"modified"`
			Metadata int      `json:"metadata"`
		}{a.ID.String(), b.ID.String(), []change{}, sum.Added, sum.Removed, sum.Modified, sum.Metadata}
		for _, c := range changes {
			out.Changes = append(out.Changes, change{c.Kind, c.Path})
		}
		return printJSON(g.stdout, out)
	}
	for _, c := range changes {
		fmt.Fprintf(g.stdout, "%s %s\n", c.Kind, quotePath(c.Path))
	}
	fmt.Fprintf(g.stdout, "%s -> %s: %d added, %d removed, %d modified, %d metadata only\n",
		a.ID.Str(), b.ID.Str(), sum.Added, sum.Removed, sum.Modified, sum.Metadata)
	return nil
}
