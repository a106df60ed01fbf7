package main

import (
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

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
