package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/snapshot"
)

type forgetOptions struct {
	last, hourly, daily, weekly, monthly, yearly int
	within                                       string
	keepTags                                     cli.StringSlice
	groupBy                                      string
	dryRun                                       bool
	prune                                        bool
	maxUnused                                    string
}

func forgetCommand(g *globals) *cli.Command {
	o := &forgetOptions{}
	n := func(name, alias, what string, dst *int) cli.Flag {
		return &cli.IntFlag{Name: name, Aliases: []string{alias}, Destination: dst,
			Usage: "keep the newest snapshot of each of the last N " + what + " (-1: all)"}
	}
	return &cli.Command{
		Name:      "forget",
		Usage:     "remove snapshots by a retention policy, or by ID (the data stays until prune)",
		ArgsUsage: "[SNAPSHOT...]",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "keep-last", Aliases: []string{"l"}, Destination: &o.last, Usage: "keep the N newest snapshots (-1: all)"},
			n("keep-hourly", "H", "hours", &o.hourly),
			n("keep-daily", "d", "days", &o.daily),
			n("keep-weekly", "w", "weeks", &o.weekly),
			n("keep-monthly", "m", "months", &o.monthly),
			n("keep-yearly", "y", "years", &o.yearly),
			&cli.StringFlag{Name: "keep-within", Destination: &o.within,
				Usage: "keep snapshots newer than this before the group's newest snapshot (e.g. 7d, 2w, 1y2m3d, 36h)"},
			&cli.StringSliceFlag{Name: "keep-tag", Destination: &o.keepTags,
				Usage: "keep snapshots that have all of these comma-separated tags (repeatable)"},
			&cli.StringFlag{Name: "group-by", Value: "host,paths", Destination: &o.groupBy,
				Usage: "apply the policy to each group of snapshots with equal `FIELDS` (host, paths, tags, source; \"\" for one group)"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Destination: &o.dryRun, Usage: "only show what would be removed"},
			&cli.BoolFlag{Name: "prune", Destination: &o.prune, Usage: "run prune afterwards (under the same lock)"},
			&cli.StringFlag{Name: "max-unused", Value: "5%", Destination: &o.maxUnused, Usage: "with --prune: see hoard prune"},
		},
		Action: func(c *cli.Context) error { return runForget(c.Context, g, o, c.Args().Slice()) },
	}
}

func (o *forgetOptions) policy() (snapshot.Policy, snapshot.GroupBy, error) {
	p := snapshot.Policy{Last: o.last, Hourly: o.hourly, Daily: o.daily, Weekly: o.weekly, Monthly: o.monthly, Yearly: o.yearly}
	for _, v := range []int{p.Last, p.Hourly, p.Daily, p.Weekly, p.Monthly, p.Yearly} {
		if v < snapshot.Unlimited {
			return p, snapshot.GroupBy{}, usagef("--keep-* counts must be -1 (all) or more")
		}
	}
	if o.within != "" {
		d, err := snapshot.ParseDuration(o.within)
		if err != nil {
			return p, snapshot.GroupBy{}, usagef("--keep-within: %v", err)
		}
		p.Within = d
	}
	for _, t := range o.keepTags.Value() {
		var tl []string
		for _, s := range strings.Split(t, ",") {
			if s = strings.TrimSpace(s); s != "" {
				tl = append(tl, s)
			}
		}
		if len(tl) > 0 {
			p.Tags = append(p.Tags, tl)
		}
	}
	by, err := snapshot.ParseGroupBy(o.groupBy)
	if err != nil {
		return p, by, usagef("--group-by: %v", err)
	}
	return p, by, nil
}

type forgetGroupJSON struct {
	Group   string              `json:"group"`
	Keep    []string            `json:"keep"`
	Remove  []string            `json:"remove"`
	Reasons map[string][]string `json:"reasons"`
}

func runForget(ctx context.Context, g *globals, o *forgetOptions, args []string) error {
	p, by, err := o.policy()
	if err != nil {
		return err
	}
	if p.Empty() && len(args) == 0 && g.cfg != nil && !g.cfg.Retention.IsZero() {
		// The config file's policy, as hoard run applies it; --dry-run,
		// --prune and --max-unused from the command line still count.
		rt := retentionOptions(g.cfg.Retention)
		if p, by, err = rt.policy(); err != nil {
			return err
		}
		o.prune = o.prune || rt.prune
		if !g.json {
			fmt.Fprintf(g.stdout, "policy: [retention] of %s\n", g.cfg.File)
		}
	}
	if p.Empty() && len(args) == 0 {
		return usagef("no policy and no snapshot given: nothing would be kept, so nothing is removed (give --keep-*, snapshot IDs, or [retention] in the config file)")
	}
	if len(args) > 0 && !p.Empty() {
		return usagef("give either snapshot IDs or a policy, not both")
	}
	maxUnused, err := parsePercent(o.maxUnused)
	if err != nil {
		return err
	}
	// Forgetting needs no content, and prune with a write-only key only
	// deletes unused packs: any key will do.
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: !o.dryRun, exclusive: true})
	if err != nil {
		return err
	}
	defer done()
	groups, err := forgetSelect(ctx, g, r, p, by, args)
	if err != nil {
		return err
	}
	out, removed, err := forgetGroups(ctx, g, r, groups, o.dryRun)
	if err != nil {
		return err
	}
	if !g.json {
		if o.dryRun {
			fmt.Fprintln(g.stdout, "dry run: nothing was removed")
		} else {
			fmt.Fprintf(g.stdout, "removed %s\n", plural(removed, "snapshot"))
		}
	}
	if !o.prune {
		if g.json {
			return printJSON(g.stdout, out)
		}
		return nil
	}
	// With --prune, --json prints {"forget": groups, "prune": result}, as
	// hoard run does; "prune" is absent when nothing was removed.
	res := map[string]any{"forget": out}
	if removed > 0 || o.dryRun {
		pr, err := pruneRepo(ctx, r, maxUnused, o.dryRun)
		if err != nil {
			return err
		}
		res["prune"] = pr
		if !g.json {
			printPrune(g, pr)
		}
	}
	if g.json {
		return printJSON(g.stdout, res)
	}
	return nil
}

// forgetSelect returns the snapshots given by ID as one group to remove, or
// without IDs, every snapshot grouped and sorted by the policy.
func forgetSelect(ctx context.Context, g *globals, r *repo.Repository, p snapshot.Policy, by snapshot.GroupBy, args []string) ([]snapshot.Group, error) {
	if len(args) > 0 {
		gr := snapshot.Group{Key: "given"}
		for _, a := range args {
			sn, err := findSnapshot(ctx, r, a)
			if err != nil {
				return nil, err
			}
			gr.Remove = append(gr.Remove, sn)
		}
		return []snapshot.Group{gr}, nil
	}
	sns, probs, err := snapshot.List(ctx, r)
	if err != nil {
		return nil, err
	}
	for _, pr := range probs {
		g.log.Warn("snapshot file unreadable; left alone", "file", "snapshots/"+pr.ID.String(), "error", pr.Err)
	}
	return snapshot.ApplyPolicy(sns, p, by), nil
}

// forgetGroups prints each group (unless --json) and removes the snapshot
// files of its Remove list (unless dryRun). The caller holds an exclusive
// lock. It returns the groups for --json and how many files it removed.
func forgetGroups(ctx context.Context, g *globals, r *repo.Repository, groups []snapshot.Group, dryRun bool) ([]forgetGroupJSON, int, error) {
	removed := 0
	out := []forgetGroupJSON{}
	for _, gr := range groups {
		gj := forgetGroupJSON{Group: gr.Key, Keep: []string{}, Remove: []string{}, Reasons: map[string][]string{}}
		if !g.json {
			fmt.Fprintf(g.stdout, "group %s: keep %d, remove %d\n", gr.Key, len(gr.Keep), len(gr.Remove))
		}
		for _, sn := range gr.Keep {
			gj.Keep = append(gj.Keep, sn.ID.String())
			gj.Reasons[sn.ID.String()] = gr.Reasons[sn]
			if !g.json {
				fmt.Fprintf(g.stdout, "  keep   %s  %s  %s\n", sn.ID.Str(), sn.Time.Local().Format(time.DateTime), strings.Join(gr.Reasons[sn], ", "))
			}
		}
		for _, sn := range gr.Remove {
			gj.Remove = append(gj.Remove, sn.ID.String())
			if !g.json {
				fmt.Fprintf(g.stdout, "  remove %s  %s\n", sn.ID.Str(), sn.Time.Local().Format(time.DateTime))
			}
			if dryRun {
				continue
			}
			err := r.RemoveSnapshot(ctx, sn.ID)
			if err != nil {
				return out, removed, fmt.Errorf("remove snapshot %s: %w", sn.ID.Str(), err)
			}
			removed++
		}
		out = append(out, gj)
	}
	if g.facts != nil {
		g.facts.removed += removed
	}
	if !g.json {
		for _, w := range supersededGroups(groups) {
			fmt.Fprintln(g.stdout, w)
		}
	}
	return out, removed, nil
}

// supersededGroups warns about groups that get no new snapshots because a
// newer group of the same host and source kind began after their newest:
// what happens when a [media.X] section is added to hoard.toml, since run's
// snapshots are grouped by host and paths. The policy keeps the old
// group's snapshots for ever.
func supersededGroups(groups []snapshot.Group) []string {
	type span struct {
		key            string
		host, kind     string
		oldest, newest *snapshot.Snapshot
		n              int
	}
	var spans []span
	for _, gr := range groups {
		s := span{key: gr.Key}
		for _, sn := range append(append([]*snapshot.Snapshot(nil), gr.Keep...), gr.Remove...) {
			if s.oldest == nil || sn.Time.Before(s.oldest.Time) {
				s.oldest = sn
			}
			if s.newest == nil || sn.Time.After(s.newest.Time) {
				s.newest = sn
			}
			s.n++
		}
		if s.newest == nil {
			continue
		}
		s.host, s.kind = s.newest.Host, s.newest.Source.Kind
		spans = append(spans, s)
	}
	var out []string
	for _, a := range spans {
		for _, b := range spans {
			if a.key == b.key || a.host != b.host || a.kind != b.kind || !b.oldest.Time.After(a.newest.Time) {
				continue
			}
			out = append(out, fmt.Sprintf("note: group %s gets no new snapshots (newest %s) since group %s began: "+
				"the policy keeps its %s for ever; if the paths changed (a [media] section added to hoard.toml), "+
				"forget them by ID or once with --group-by host (docs/config.md, Retention)",
				a.key, a.newest.Time.Local().Format(time.DateTime), b.key, plural(a.n, "snapshot")))
			break
		}
	}
	return out
}
