package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/lock"
	"github.com/hoard-backup/hoard/snapshot"
)

func pruneCommand(g *globals) *cli.Command {
	var dryRun bool
	var maxUnused string
	return &cli.Command{
		Name:  "prune",
		Usage: "remove the data no snapshot needs (docs/FORMAT.md, Prune)",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Destination: &dryRun, Usage: "only show what would be removed"},
			&cli.StringFlag{Name: "max-unused", Value: "5%", Destination: &maxUnused,
				Usage: "repack a pack when more than this `PERCENT` of its bytes is unused"},
		},
		Action: func(c *cli.Context) error {
			mu, err := parsePercent(maxUnused)
			if err != nil {
				return err
			}
			// A write-only key may prune too: it deletes the packs no
			// snapshot uses and repacks nothing (pruneRepo).
			ctx, r, done, err := g.openRepo(c.Context, openOptions{lock: !dryRun, exclusive: true})
			if err != nil {
				return err
			}
			defer done()
			return prune(ctx, g, r, mu, dryRun)
		},
	}
}

func parsePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%")), 64)
	if err != nil || v < 0 || v > 100 {
		return 0, usagef("--max-unused %q: want a percentage from 0 to 100, e.g. 5%%", s)
	}
	return v / 100, nil
}

// pruneResult is what prune did, as --json prints it.
type pruneResult struct {
	DryRun            bool   `json:"dry_run"`
	UsedBlobs         int    `json:"used_blobs"`
	UnusedBlobs       int    `json:"unused_blobs"`
	PacksKept         int    `json:"packs_kept"`
	PacksDeleted      int    `json:"packs_to_delete"`
	PacksRepacked     int    `json:"packs_to_repack"`
	PacksUnindexed    int    `json:"packs_unindexed"`
	UnindexedRemoved  bool   `json:"unindexed_removed"`
	BlobsCopied       int    `json:"blobs_to_copy"`
	BytesCopied       uint64 `json:"bytes_to_copy"`
	BytesFreed        uint64 `json:"bytes_freed"`
	PacksWritten      int    `json:"packs_written"`
	IndexFilesRemoved int    `json:"index_files_removed"`
	WALFilesRemoved   int    `json:"wal_files_removed,omitempty"`
	// WriteOnly: the key cannot read content, so packs that are only
	// partly unused were left for a prune with a full key.
	WriteOnly bool `json:"write_only,omitempty"`

	blocker string // the lock that kept unindexed packs
}

// prune runs snapshot.Prune on an open repository under an exclusive lock
// (or none, for a dry run) and prints what it did.
func prune(ctx context.Context, g *globals, r *repo.Repository, maxUnused float64, dryRun bool) error {
	res, err := pruneRepo(ctx, r, maxUnused, dryRun)
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(g.stdout, res)
	}
	printPrune(g, res)
	return nil
}

// pruneRepo runs snapshot.Prune and returns what it did, printing nothing.
func pruneRepo(ctx context.Context, r *repo.Repository, maxUnused float64, dryRun bool) (*pruneResult, error) {
	host, _ := os.Hostname()
	// Packs no index names are removed only when no other process may
	// still write them: every other lock, stale or not, must name a
	// process of this host that is gone (docs/FORMAT.md, Prune).
	others, err := lock.List(ctx, r)
	if err != nil {
		return nil, err
	}
	removeUnindexed, blocker := true, ""
	for _, l := range others {
		if l.Host == host && l.PID == os.Getpid() {
			continue
		}
		if !l.Dead(host) {
			removeUnindexed = false
			blocker = fmt.Sprintf("pid %d on %s since %s", l.PID, l.Host, l.Time.Format("2006-01-02 15:04:05"))
		}
	}
	walRemoved, err := expireWAL(ctx, r, dryRun) // wal.go
	if err != nil {
		return nil, err
	}
	if !r.CanRead() {
		// Repacking opens data blobs, which needs the data secret key.
		// A write-only key deletes whole packs that no kept snapshot uses
		// and leaves every pack with a used blob as it is.
		maxUnused = 1
	}
	plan, st, err := snapshot.Prune(ctx, r, repo.PruneOptions{MaxUnused: maxUnused}, removeUnindexed, dryRun)
	if err != nil {
		return nil, err
	}
	freed := plan.FreedBytes
	if removeUnindexed {
		freed += plan.UnindexedBytes
	}
	return &pruneResult{dryRun, plan.UsedBlobs, plan.UnusedBlobs, plan.Keep, len(plan.Delete), len(plan.Repack), len(plan.Unindexed),
		removeUnindexed && !dryRun, plan.CopyBlobs, plan.CopyBytes, freed, st.PacksWritten, st.IndexFilesRemoved, walRemoved, !r.CanRead(), blocker}, nil
}

// printPrune prints a pruneResult for people.
func printPrune(g *globals, res *pruneResult) {
	w := g.stdout
	verb := "removed"
	if res.DryRun {
		verb = "would remove"
	}
	fmt.Fprintf(w, "%d used blobs, %d unused blob copies\n", res.UsedBlobs, res.UnusedBlobs)
	fmt.Fprintf(w, "packs: %d kept, %d unused, %d repacked (%d blobs, %s copied), %d not in any index\n",
		res.PacksKept, res.PacksDeleted, res.PacksRepacked, res.BlobsCopied, formatBytes(res.BytesCopied), res.PacksUnindexed)
	if res.PacksUnindexed > 0 && res.blocker != "" {
		fmt.Fprintf(w, "packs not in any index are kept: another process may still index them (lock of %s); if it is gone, run hoard unlock and prune again\n", res.blocker)
	}
	if res.WALFilesRemoved > 0 {
		fmt.Fprintf(w, "%s %d archived WAL files that no kept base backup needs\n", verb, res.WALFilesRemoved)
	}
	fmt.Fprintf(w, "%s %s\n", verb, formatBytes(res.BytesFreed))
	if res.WriteOnly {
		fmt.Fprintln(w, "write-only key: only packs no kept snapshot uses were deleted; repacking packs that are partly unused needs a full key (run hoard prune with one)")
	}
}
