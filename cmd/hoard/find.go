package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/snapshot"
)

type findOptions struct {
	filter     snapshotFilter
	snapshots  cli.StringSlice
	ignoreCase bool
	newer      string
	older      string
}

func findCommand(g *globals) *cli.Command {
	o := &findOptions{}
	return &cli.Command{
		Name:  "find",
		Usage: "find files and directories by name or path in snapshots",
		Description: "A PATTERN without a slash matches entry names (`*.sql`); one with a slash matches whole paths\n" +
			"(`/srv/media/*/thumbs`). Patterns use shell glob syntax: quote them.",
		ArgsUsage: "PATTERN",
		Flags: append(o.filter.flags(),
			&cli.StringSliceFlag{Name: "snapshot", Aliases: []string{"s"}, Destination: &o.snapshots, Usage: "only this snapshot (repeatable; \"latest\" for the newest)"},
			&cli.BoolFlag{Name: "ignore-case", Aliases: []string{"i"}, Destination: &o.ignoreCase, Usage: "ignore case when matching"},
			&cli.StringFlag{Name: "newer", Destination: &o.newer, Usage: "only entries modified after this time (2006-01-02 or 2006-01-02 15:04:05, local time)"},
			&cli.StringFlag{Name: "older", Destination: &o.older, Usage: "only entries modified before this time"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("find takes one PATTERN (quote it so the shell leaves it alone)")
			}
			return runFind(c.Context, g, o, c.Args().First())
		},
	}
}

type findMatchJSON struct {
	Path  string    `json:"path"`
	Type  string    `json:"type"`
	Mode  string    `json:"mode"`
	Size  uint64    `json:"size"`
	MTime time.Time `json:"mtime"`
}

type findSnapshotJSON struct {
	Snapshot string          `json:"snapshot"`
	Time     time.Time       `json:"time"`
	Host     string          `json:"host"`
	Matches  []findMatchJSON `json:"matches"`
}

// parseFindTime reads --newer/--older: a date or a date and time, local.
func parseFindTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.DateTime, "2006-01-02 15:04", time.DateOnly, time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("--%s %q: not a time (2006-01-02, 2006-01-02 15:04:05 or RFC 3339)", flag, s)
}

func runFind(ctx context.Context, g *globals, o *findOptions, pattern string) error {
	fp := snapshot.FindPattern{Pattern: pattern, IgnoreCase: o.ignoreCase}
	if err := fp.Valid(); err != nil {
		return usagef("find: %v", err)
	}
	newer, err := parseFindTime("newer", o.newer)
	if err != nil {
		return err
	}
	older, err := parseFindTime("older", o.older)
	if err != nil {
		return err
	}
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true})
	if err != nil {
		return err
	}
	defer done()
	sns, err := o.filter.selectSnapshots(ctx, g, r, o.snapshots.Value(), "not searched")
	if err != nil {
		return err
	}
	finder := snapshot.NewFinder(r, fp)
	out := []findSnapshotJSON{}
	total := 0
	for _, sn := range sns {
		found, err := finder.Find(ctx, sn)
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", sn.ID.Str(), err)
		}
		sj := findSnapshotJSON{Snapshot: sn.ID.String(), Time: sn.Time, Host: sn.Host, Matches: []findMatchJSON{}}
		for _, f := range found {
			n := f.Node
			if (!newer.IsZero() && !n.ModTime.After(newer)) || (!older.IsZero() && !n.ModTime.Before(older)) {
				continue
			}
			sj.Matches = append(sj.Matches, findMatchJSON{Path: f.Path, Type: n.Type, Mode: n.Mode.String(), Size: n.Size, MTime: n.ModTime})
		}
		if len(sj.Matches) == 0 {
			continue
		}
		total += len(sj.Matches)
		out = append(out, sj)
		if g.json {
			continue
		}
		fmt.Fprintf(g.stdout, "snapshot %s of %s at %s:\n", sn.ID.Str(), sn.Host, sn.Time.Local().Format(time.DateTime))
		for _, m := range sj.Matches {
			fmt.Fprintf(g.stdout, "  %s %10d %s %s\n", m.Mode, m.Size, m.MTime.Local().Format(time.DateTime), m.Path)
		}
	}
	if g.json {
		return printJSON(g.stdout, out)
	}
	fmt.Fprintf(g.stdout, "%s in %s\n", countOf(total, "match", "matches"), countOf(len(out), "snapshot", "snapshots"))
	return nil
}

// plural formats a count with the singular or plural noun.
func countOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
