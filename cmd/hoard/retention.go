package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/config"
)

// retentionOptions turns hoard.toml's [retention] into the hoard forget
// options that say the same.
func retentionOptions(rt config.Retention) *forgetOptions {
	o := &forgetOptions{last: rt.KeepLast, hourly: rt.KeepHourly, daily: rt.KeepDaily, weekly: rt.KeepWeekly,
		monthly: rt.KeepMonthly, yearly: rt.KeepYearly, keepTags: *cli.NewStringSlice(rt.KeepTags...),
		groupBy: "host,paths", prune: rt.Prune, maxUnused: "5%"}
	if !rt.KeepWithin.IsZero() {
		o.within = rt.KeepWithin.String()
	}
	if rt.GroupBy != nil {
		o.groupBy = *rt.GroupBy
	}
	return o
}

// applyRetention forgets the snapshots [retention] does not keep, as
// hoard forget --keep-... [--prune] would, under an exclusive lock. Unless
// --json, it prints what it does; it returns the same for run's --json
// output ("forget", and "prune" when it pruned).
func applyRetention(ctx context.Context, g *globals, rt config.Retention) (map[string]any, error) {
	o := retentionOptions(rt)
	p, by, err := o.policy()
	if err != nil {
		return nil, err
	}
	if p.Empty() {
		return nil, nil // config.Parse refuses this; never remove everything
	}
	// A write-only backup host applies retention too (pruneRepo).
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, exclusive: true})
	if err != nil {
		return nil, err
	}
	defer done()
	groups, err := forgetSelect(ctx, g, r, p, by, nil)
	if err != nil {
		return nil, err
	}
	out, removed, err := forgetGroups(ctx, g, r, groups, false)
	res := map[string]any{"forget": out}
	if err != nil {
		return res, err
	}
	if !g.json {
		fmt.Fprintf(g.stdout, "removed %s\n", plural(removed, "snapshot"))
	}
	if !o.prune || removed == 0 {
		return res, nil
	}
	maxUnused, err := parsePercent(o.maxUnused)
	if err != nil {
		return res, err
	}
	pr, err := pruneRepo(ctx, r, maxUnused, false)
	if err != nil {
		return res, err
	}
	res["prune"] = pr
	if !g.json {
		printPrune(g, pr)
	}
	return res, nil
}
