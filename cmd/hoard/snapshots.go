package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/snapshot"
)

// writerColumn shows who wrote a snapshot: the first 8 digits of its
// writer ID and what this key can tell of it.
func writerColumn(r *repo.Repository, sn *snapshot.Snapshot) string {
	t := snapshot.Verify(r, sn)
	switch t {
	case crypto.TrustNone:
		return "-"
	case crypto.TrustInvalid:
		return "INVALID " + shortName(sn.Writer)
	}
	return shortName(sn.Writer) + " (" + string(t) + ")"
}

func snapshotsCommand(g *globals) *cli.Command {
	f := &snapshotFilter{}
	return &cli.Command{
		Name:   "snapshots",
		Usage:  "list snapshots",
		Flags:  f.flags(),
		Action: func(c *cli.Context) error { return runSnapshots(c.Context, g, f) },
	}
}

type snapshotJSON struct {
	ID string `json:"id"`
	*snapshot.Snapshot
	// WriterTrust says whether the writer is checked (crypto.Trust):
	// this-key, verified (by a full key), unverified, invalid, none.
	WriterTrust crypto.Trust `json:"writer_trust"`
}

func runSnapshots(ctx context.Context, g *globals, f *snapshotFilter) error {
	ctx, r, done, err := g.openRepo(ctx, openOptions{})
	if err != nil {
		return err
	}
	defer done()
	sns, probs, err := snapshot.List(ctx, r)
	if err != nil {
		return err
	}
	for _, p := range probs {
		g.log.Warn("snapshot file unreadable", "file", "snapshots/"+p.ID.String(), "error", p.Err)
	}
	if sns, err = f.apply(sns); err != nil {
		return err
	}
	if g.json {
		out := make([]snapshotJSON, len(sns))
		for i, sn := range sns {
			out[i] = snapshotJSON{ID: sn.ID.String(), Snapshot: sn, WriterTrust: snapshot.Verify(r, sn)}
		}
		return printJSON(g.stdout, out)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTime\tHost\tTags\tSource\tSize\tWriter")
	for _, sn := range sns {
		src := strings.Join(sn.Paths, ",")
		switch sn.Source.Kind {
		case snapshot.KindStdin:
			src = "stdin:" + sn.Source.Filename
		case snapshot.KindCommand:
			src = "command:" + strings.Join(sn.Source.Command, " ")
		case snapshot.KindDatabase, snapshot.KindRun:
			var names []string
			for _, d := range sn.Source.Databases {
				names = append(names, d.Name)
			}
			if len(names) > 0 {
				src = strings.TrimSuffix("db:"+strings.Join(names, ",")+" "+src, " ")
			}
		}
		size := ""
		if sn.Summary != nil {
			size = formatBytes(sn.Summary.TotalBytes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sn.ID.Str(), sn.Time.Local().Format(time.DateTime), sn.Host,
			strings.Join(sn.Tags, ","), src, size, writerColumn(r, sn))
	}
	fmt.Fprintln(tw, plural(len(sns), "snapshot"))
	return tw.Flush()
}
