package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/snapshot"
)

func repairCommand(g *globals) *cli.Command {
	var o snapshot.RepairOptions
	return &cli.Command{
		Name:  "repair",
		Usage: "rebuild the index from the packs, or rewrite snapshots without their unreadable files",
		Subcommands: []*cli.Command{
			{
				Name:  "index",
				Usage: "rebuild the index from the pack headers; replaces every index file (exclusive lock)",
				Action: func(c *cli.Context) error {
					if c.NArg() != 0 {
						return usagef("repair index takes no arguments")
					}
					return runRepairIndex(c.Context, g)
				},
			},
			{
				Name: "snapshots",
				Usage: "write a new snapshot (tagged repaired) for each snapshot that references missing or damaged data, " +
					"without the files that cannot be read",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "read-data", Destination: &o.ReadData, Usage: "read every pack first, so that damaged (not only missing) data is found"},
					&cli.BoolFlag{Name: "forget", Destination: &o.Forget, Usage: "remove each repaired snapshot's original"},
					&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Destination: &o.DryRun, Usage: "only show what would be removed"},
				},
				Action: func(c *cli.Context) error {
					if c.NArg() != 0 {
						return usagef("repair snapshots takes no arguments")
					}
					return runRepairSnapshots(c.Context, g, o)
				},
			},
		},
	}
}

func runRepairIndex(ctx context.Context, g *globals) error {
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, exclusive: true})
	if err != nil {
		return err
	}
	defer done()
	st, err := r.RebuildIndex(ctx)
	if err != nil {
		return err
	}
	if g.json {
		type problem struct {
			Pack       string `json:"pack"`
			Error      string `json:"error"`
			Known      int    `json:"blobs_known"`
			Kept       int    `json:"blobs_kept"`
			Unverified bool   `json:"unverified,omitempty"`
		}
		out := struct {
			Packs             int       `json:"packs"`
			Blobs             int       `json:"blobs"`
			IndexFile         string    `json:"index_file,omitempty"`
			IndexFilesRemoved int       `json:"index_files_removed"`
			Unreadable        []problem `json:"unreadable_packs"`
		}{Packs: st.Packs, Blobs: st.Blobs, IndexFilesRemoved: st.IndexFilesRemoved}
		if !st.IndexFile.IsNull() {
			out.IndexFile = st.IndexFile.String()
		}
		for _, p := range st.Problems {
			out.Unreadable = append(out.Unreadable, problem{p.ID.String(), p.Err.Error(), p.Known, p.Kept, p.Unverified})
		}
		if err := printJSON(g.stdout, out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(g.stdout, "indexed %d packs, %d blobs; removed %d old index files\n", st.Packs, st.Blobs, st.IndexFilesRemoved)
		for _, p := range st.Problems {
			switch {
			case p.Known == 0:
				fmt.Fprintf(g.stdout, "pack with an unreadable header (left alone, not indexed): %s: %v\n", p.ID, p.Err)
			case p.Unverified:
				fmt.Fprintf(g.stdout, "pack with an unreadable header (left alone): %s: %v; kept the %d blobs the old index placed in it, unverified (a write-only key cannot read them)\n",
					p.ID, p.Err, p.Kept)
			default:
				fmt.Fprintf(g.stdout, "pack with an unreadable header (left alone): %s: %v; kept %d of the %d blobs the old index placed in it (each verified)\n",
					p.ID, p.Err, p.Kept, p.Known)
			}
		}
	}
	if len(st.Problems) > 0 {
		return damagedError{fmt.Sprintf("repair index: %d packs have an unreadable header", len(st.Problems))}
	}
	return nil
}

func runRepairSnapshots(ctx context.Context, g *globals, o snapshot.RepairOptions) error {
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: !o.DryRun, exclusive: true, read: true})
	if err != nil {
		return err
	}
	defer done()
	rep, err := snapshot.RepairSnapshots(ctx, r, o)
	if err != nil {
		return err
	}
	if g.json {
		type repaired struct {
			Old     string   `json:"old"`
			New     string   `json:"new,omitempty"`
			Removed []string `json:"removed"`
		}
		out := struct {
			DryRun     bool       `json:"dry_run"`
			Checked    int        `json:"checked"`
			Repaired   []repaired `json:"repaired"`
			Unreadable []string   `json:"unreadable_snapshots"`
		}{DryRun: o.DryRun, Checked: rep.Checked, Repaired: []repaired{}}
		for _, s := range rep.Repaired {
			rr := repaired{Old: s.Old.String(), Removed: s.Removed}
			if !s.New.IsNull() {
				rr.New = s.New.String()
			}
			out.Repaired = append(out.Repaired, rr)
		}
		for _, p := range rep.Unreadable {
			out.Unreadable = append(out.Unreadable, p.ID.String())
		}
		return printJSON(g.stdout, out)
	}
	for _, s := range rep.Repaired {
		if o.DryRun {
			fmt.Fprintf(g.stdout, "snapshot %s would be rewritten without:\n", s.Old.Str())
		} else {
			fmt.Fprintf(g.stdout, "snapshot %s -> %s, without:\n", s.Old.Str(), s.New.Str())
		}
		for _, p := range s.Removed {
			fmt.Fprintf(g.stdout, "  %s\n", p)
		}
	}
	for _, p := range rep.Unreadable {
		fmt.Fprintf(g.stdout, "unreadable snapshot file (left alone; forget it): %s: %v\n", p.ID.Str(), p.Err)
	}
	fmt.Fprintf(g.stdout, "%d of %d snapshots repaired\n", len(rep.Repaired), rep.Checked)
	return nil
}
