package main

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
)

// snapshotFilter holds the --host, --tag and --path flags of the commands
// that list or count snapshots, as restic's.
type snapshotFilter struct {
	host  string
	tags  cli.StringSlice
	paths cli.StringSlice
}

func (f *snapshotFilter) flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "host", Destination: &f.host, Usage: "only snapshots of this host"},
		&cli.StringSliceFlag{Name: "tag", Destination: &f.tags, Usage: "only snapshots with all of these comma-separated tags (repeatable)"},
		&cli.StringSliceFlag{Name: "path", Destination: &f.paths, Usage: "only snapshots of exactly these paths (repeatable)"},
	}
}

// filter returns the flags as a snapshot.Filter; relative paths are made absolute, as backup does.
func (f *snapshotFilter) filter() (snapshot.Filter, error) {
	sf := snapshot.Filter{Host: f.host}
	for _, t := range f.tags.Value() {
		for _, s := range strings.Split(t, ",") {
			if s = strings.TrimSpace(s); s != "" {
				sf.Tags = append(sf.Tags, s)
			}
		}
	}
	for _, p := range f.paths.Value() {
		abs, err := filepath.Abs(p)
		if err != nil {
			return sf, err
		}
		sf.Paths = append(sf.Paths, abs)
	}
	return sf, nil
}

// apply keeps the snapshots that pass the flags, in their order.
func (f *snapshotFilter) apply(sns []*snapshot.Snapshot) ([]*snapshot.Snapshot, error) {
	sf, err := f.filter()
	if err != nil {
		return nil, err
	}
	var out []*snapshot.Snapshot
	for _, sn := range sns {
		if sf.Match(sn) {
			out = append(out, sn)
		}
	}
	return out, nil
}

// selectSnapshots returns the snapshots refs name (each once, in the order
// given), or without refs every snapshot that passes the flags, by time.
// Unreadable snapshot files are warned about with what the command does
// with them (e.g. "not searched").
func (f *snapshotFilter) selectSnapshots(ctx context.Context, g *globals, r *repo.Repository, refs []string, skipped string) ([]*snapshot.Snapshot, error) {
	if len(refs) > 0 {
		var out []*snapshot.Snapshot
		seen := map[id.ID]bool{}
		for _, ref := range refs {
			sn, err := findSnapshot(ctx, r, ref)
			if err != nil {
				return nil, err
			}
			if !seen[sn.ID] {
				seen[sn.ID] = true
				out = append(out, sn)
			}
		}
		return out, nil
	}
	all, probs, err := snapshot.List(ctx, r)
	if err != nil {
		return nil, err
	}
	for _, p := range probs {
		g.log.Warn("snapshot file unreadable; "+skipped, "file", "snapshots/"+p.ID.String(), "error", p.Err)
	}
	return f.apply(all)
}
