package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/snapshot"
)

func statsCommand(g *globals) *cli.Command {
	f := &snapshotFilter{}
	return &cli.Command{
		Name:      "stats",
		Usage:     "show sizes of snapshots (all by default, or those --host, --tag and --path select): restore size, unique data, stored size and ratios",
		ArgsUsage: "[SNAPSHOT...]",
		Flags:     f.flags(),
		Action:    func(c *cli.Context) error { return runStats(c.Context, g, f, c.Args().Slice()) },
	}
}

func runStats(ctx context.Context, g *globals, f *snapshotFilter, refs []string) error {
	if sf, err := f.filter(); err != nil {
		return err
	} else if len(refs) > 0 && (sf.Host != "" || len(sf.Tags) > 0 || len(sf.Paths) > 0) {
		return usagef("give snapshot IDs or --host/--tag/--path, not both")
	}
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true})
	if err != nil {
		return err
	}
	defer done()
	var sns []*snapshot.Snapshot
	if len(refs) == 0 {
		if sns, _, err = snapshot.List(ctx, r); err != nil {
			return err
		}
		if sns, err = f.apply(sns); err != nil {
			return err
		}
	}
	for _, ref := range refs {
		sn, err := findSnapshot(ctx, r, ref)
		if err != nil {
			return err
		}
		sns = append(sns, sn)
	}
	st, err := snapshot.ComputeStats(ctx, r, sns)
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(g.stdout, struct {
			Snapshots        int     `json:"snapshots"`
			Files            uint64  `json:"files"`
			RestoreSize      uint64  `json:"restore_size"`
			RawSize          uint64  `json:"raw_data_size"`
			StoredSize       uint64  `json:"stored_size"`
			PackSize         uint64  `json:"pack_size"`
			Blobs            int     `json:"blobs"`
			Packs            int     `json:"packs"`
			DedupRatio       float64 `json:"dedup_ratio"`
			CompressionRatio float64 `json:"compression_ratio"`
		}{st.Snapshots, st.Files, st.RestoreSize, st.RawSize, st.StoredSize, st.PackSize, st.Blobs, st.Packs,
			st.DedupRatio(), st.CompressionRatio()})
	}
	w := g.stdout
	fmt.Fprintf(w, "snapshots:         %d\n", st.Snapshots)
	fmt.Fprintf(w, "files:             %d\n", st.Files)
	fmt.Fprintf(w, "restore size:      %s\n", formatBytes(st.RestoreSize))
	fmt.Fprintf(w, "raw data size:     %s (%d blobs)\n", formatBytes(st.RawSize), st.Blobs)
	fmt.Fprintf(w, "stored size:       %s (in %d packs of %s)\n", formatBytes(st.StoredSize), st.Packs, formatBytes(st.PackSize))
	fmt.Fprintf(w, "dedup ratio:       %.2f\n", st.DedupRatio())
	fmt.Fprintf(w, "compression ratio: %.2f\n", st.CompressionRatio())
	return nil
}
