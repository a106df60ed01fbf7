package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/snapshot"
)

type tagOptions struct {
	filter           snapshotFilter
	set, add, remove cli.StringSlice
}

func tagCommand(g *globals) *cli.Command {
	o := &tagOptions{}
	return &cli.Command{
		Name:  "tag",
		Usage: "add, remove or set the tags of snapshots",
		Description: "Each changed snapshot is stored again under a new ID (recording the first version's ID as\n" +
			"\"original\") and the old file is removed, as restic's tag does. Without snapshot IDs, every snapshot\n" +
			"that passes --host/--tag/--path is changed; with neither, the command refuses.",
		ArgsUsage: "[SNAPSHOT...]",
		Flags: append(o.filter.flags(),
			&cli.StringSliceFlag{Name: "set", Destination: &o.set, Usage: "replace the tags with these (comma-separated, repeatable; --set '' clears them)"},
			&cli.StringSliceFlag{Name: "add", Destination: &o.add, Usage: "add these tags (comma-separated, repeatable)"},
			&cli.StringSliceFlag{Name: "remove", Destination: &o.remove, Usage: "remove these tags (comma-separated, repeatable)"},
		),
		Action: func(c *cli.Context) error {
			ch := snapshot.TagChange{SetTags: c.IsSet("set"), Set: splitTags(o.set.Value()), Add: splitTags(o.add.Value()), Remove: splitTags(o.remove.Value())}
			return runTag(c.Context, g, o, ch, c.Args().Slice())
		},
	}
}

// splitTags flattens repeated, comma-separated tag flags.
func splitTags(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

type tagResultJSON struct {
	Old  string   `json:"old"`
	New  string   `json:"new"`
	Tags []string `json:"tags"`
}

func runTag(ctx context.Context, g *globals, o *tagOptions, ch snapshot.TagChange, args []string) error {
	if !ch.SetTags && len(ch.Add) == 0 && len(ch.Remove) == 0 {
		return usagef("tag needs --set, --add or --remove")
	}
	sf, err := o.filter.filter()
	if err != nil {
		return err
	}
	if len(args) == 0 && sf.Host == "" && len(sf.Tags) == 0 && len(sf.Paths) == 0 {
		return usagef("tag needs snapshot IDs or --host/--tag/--path: it does not change every snapshot by default")
	}
	if len(args) > 0 && (sf.Host != "" || len(sf.Tags) > 0 || len(sf.Paths) > 0) {
		return usagef("give either snapshot IDs or --host/--tag/--path, not both")
	}
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, exclusive: true})
	if err != nil {
		return err
	}
	defer done()
	sns, err := o.filter.selectSnapshots(ctx, g, r, args, "left alone")
	if err != nil {
		return err
	}
	out := []tagResultJSON{}
	for _, sn := range sns {
		nsn, changed, err := snapshot.Retag(ctx, r, sn, ch)
		if err != nil {
			return err
		}
		if !changed {
			continue
		}
		out = append(out, tagResultJSON{Old: sn.ID.String(), New: nsn.ID.String(), Tags: append([]string{}, nsn.Tags...)})
		if !g.json {
			fmt.Fprintf(g.stdout, "%s -> %s  tags: %s\n", sn.ID.Str(), nsn.ID.Str(), strings.Join(nsn.Tags, ","))
		}
	}
	if g.json {
		return printJSON(g.stdout, out)
	}
	fmt.Fprintf(g.stdout, "changed %s\n", countOf(len(out), "snapshot", "snapshots"))
	return nil
}
