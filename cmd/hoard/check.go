package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/lock"
	"github.com/hoard-backup/hoard/snapshot"
)

func checkCommand(g *globals) *cli.Command {
	var readData bool
	var subset string
	return &cli.Command{
		Name:  "check",
		Usage: "verify the repository's structure and, with --read-data, every byte",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "read-data", Destination: &readData, Usage: "read and verify every pack and blob"},
			&cli.StringFlag{Name: "read-data-subset", Destination: &subset,
				Usage: "read and verify only a subset of the packs: `N/M` (group N of M; runs 1/M..M/M cover all), P% or a size such as 500M (random packs)"},
		},
		Action: func(c *cli.Context) error {
			o := snapshot.CheckOptions{ReadData: readData}
			if subset != "" {
				s, err := snapshot.ParseSubset(subset)
				if err != nil {
					return usagef("--read-data-subset: %v", err)
				}
				o.ReadSubset = &s
			}
			return runCheck(c.Context, g, o)
		},
	}
}

func runCheck(ctx context.Context, g *globals, o snapshot.CheckOptions) error {
	readData := o.ReadData || o.ReadSubset != nil
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, read: readData})
	if err != nil {
		return err
	}
	defer done()
	rep, err := snapshot.Check(ctx, r, o)
	if err != nil {
		return err
	}
	if err := checkWAL(ctx, r, rep); err != nil { // wal.go
		return err
	}
	damagedLocks, err := lock.Damaged(ctx, r)
	if err != nil {
		return err
	}
	for name, lerr := range damagedLocks {
		rep.Problems = append(rep.Problems, snapshot.CheckProblem{File: "locks/" + name.String(),
			Err: fmt.Errorf("damaged lock file, honoured by no one (hoard unlock --remove-all removes it): %w", lerr)})
	}
	if g.json {
		type problem struct {
			File  string `json:"file"`
			Error string `json:"error"`
		}
		type affected struct {
			ID     string `json:"snapshot"`
			Reason string `json:"reason"`
		}
		out := struct {
			OK           bool       `json:"ok"`
			Snapshots    int        `json:"snapshots"`
			Packs        int        `json:"packs"`
			Blobs        int        `json:"blobs"`
			PacksRead    int        `json:"packs_read"`
			Problems     []problem  `json:"problems"`
			Affected     []affected `json:"affected_snapshots"`
			Unreferenced []id.ID    `json:"unreferenced_packs"`
		}{OK: rep.OK(), Snapshots: rep.Snapshots, Packs: rep.Packs, Blobs: rep.Blobs, PacksRead: rep.PacksRead, Unreferenced: rep.Unreferenced}
		for _, p := range rep.Problems {
			out.Problems = append(out.Problems, problem{p.File, p.Err.Error()})
		}
		for _, a := range rep.Affected {
			out.Affected = append(out.Affected, affected{a.ID.String(), a.Reason})
		}
		if err := printJSON(g.stdout, out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(g.stdout, "checked %d snapshots, %d packs, %d blobs", rep.Snapshots, rep.Packs, rep.Blobs)
		if readData {
			fmt.Fprintf(g.stdout, ", read %d packs", rep.PacksRead)
			if o.ReadSubset != nil {
				fmt.Fprintf(g.stdout, " (subset %s)", o.ReadSubset)
			}
		}
		fmt.Fprintln(g.stdout)
		if len(rep.Unreferenced) > 0 {
			fmt.Fprintf(g.stdout, "%d packs are not in any index (left by an interrupted backup; harmless, prune removes them)\n", len(rep.Unreferenced))
		}
		for _, p := range rep.Problems {
			fmt.Fprintf(g.stdout, "damaged: %s: %v\n", p.File, p.Err)
		}
		for _, a := range rep.Affected {
			fmt.Fprintf(g.stdout, "affected snapshot %s: %s\n", a.ID.Str(), a.Reason)
		}
		if rep.OK() {
			fmt.Fprintln(g.stdout, "no errors were found")
		}
	}
	if !rep.OK() {
		return damagedError{fmt.Sprintf("check found %d problems; %d snapshots affected", len(rep.Problems), len(rep.Affected))}
	}
	return nil
}

func unlockCommand(g *globals) *cli.Command {
	var all bool
	return &cli.Command{
		Name:  "unlock",
		Usage: "remove stale locks",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "remove-all", Destination: &all, Usage: "remove every lock, stale or not"}},
		Action: func(c *cli.Context) error {
			ctx, r, done, err := g.openRepo(c.Context, openOptions{})
			if err != nil {
				return err
			}
			defer done()
			n, err := lock.RemoveStale(ctx, r, all, time.Now)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "removed %d locks\n", n)
			if all {
				if n, err = lock.RemoveDamaged(ctx, r); err != nil {
					return err
				}
				if n > 0 {
					fmt.Fprintf(g.stdout, "removed %d damaged lock files\n", n)
				}
				return nil
			}
			damaged, err := lock.Damaged(ctx, r)
			if err != nil {
				return err
			}
			for name, lerr := range damaged {
				g.log.Warn("damaged lock file kept; hoard unlock --remove-all removes it", "file", "locks/"+name.String(), "error", lerr)
			}
			return nil
		},
	}
}

func catCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:      "cat",
		Usage:     "print a repository object as JSON (config, snapshot ID)",
		ArgsUsage: "config | snapshot ID",
		Action: func(c *cli.Context) error {
			ctx, r, done, err := g.openRepo(c.Context, openOptions{})
			if err != nil {
				return err
			}
			defer done()
			switch c.Args().First() {
			case "config":
				if c.NArg() != 1 {
					return usagef("cat config takes no more arguments")
				}
				return printJSON(g.stdout, r.Config())
			case "snapshot":
				if c.NArg() != 2 {
					return usagef("cat snapshot takes one ID")
				}
				sn, err := findSnapshot(ctx, r, c.Args().Get(1))
				if err != nil {
					return err
				}
				raw, err := r.LoadUnpacked(ctx, backends.SnapshotFile, sn.ID)
				if err != nil {
					return err
				}
				var v any
				if err := json.Unmarshal(raw, &v); err != nil {
					return fmt.Errorf("%w: %v", repo.ErrInvalidData, err)
				}
				return printJSON(g.stdout, v)
			}
			return usagef("cat takes config or snapshot ID")
		},
	}
}
