package snapshot

import (
	"context"
	"fmt"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/wal"
)

// UsedBlobs walks the trees of every snapshot in sns and returns every
// blob they need: the trees themselves and the data blobs of their files.
// Any tree that cannot be loaded is an error: prune must not guess.
func UsedBlobs(ctx context.Context, r *repo.Repository, sns []*Snapshot) (repo.BlobSet, error) {
	used := repo.BlobSet{}
	var walk func(tid id.ID) error
	walk = func(tid id.ID) error {
		h := repo.BlobHandle{Type: repo.TreeBlob, ID: tid}
		if _, ok := used[h]; ok {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := LoadTree(ctx, r, tid)
		if err != nil {
			return err
		}
		used[h] = struct{}{}
		for _, n := range t.Nodes {
			for _, c := range n.Content {
				used[repo.BlobHandle{Type: repo.DataBlob, ID: c}] = struct{}{}
			}
			if n.Subtree != nil {
				if err := walk(*n.Subtree); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, sn := range sns {
		if err := walk(sn.Tree); err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", sn.ID.Str(), err)
		}
	}
	return used, nil
}

// Prune removes the data no snapshot needs (docs/FORMAT.md, section
// "Prune"). The caller holds an exclusive lock and has loaded nothing yet.
// It refuses when an index file or a snapshot file cannot be read, since
// what they name would otherwise look unused. With dryRun it only plans.
func Prune(ctx context.Context, r *repo.Repository, o repo.PruneOptions, removeUnindexed, dryRun bool) (*repo.PrunePlan, repo.PruneStats, error) {
	var st repo.PruneStats
	probs, err := r.LoadIndex(ctx)
	if err != nil {
		return nil, st, err
	}
	if len(probs) > 0 {
		return nil, st, fmt.Errorf("%w: index file %s cannot be read: %v (run hoard check, then hoard repair index)",
			repo.ErrPruneRefused, probs[0].Name.Str(), probs[0].Err)
	}
	sns, sprobs, err := List(ctx, r)
	if err != nil {
		return nil, st, err
	}
	if len(sprobs) > 0 {
		return nil, st, fmt.Errorf("%w: snapshot file %s cannot be read: %v (run hoard check; forget it to go on)",
			repo.ErrPruneRefused, sprobs[0].ID.Str(), sprobs[0].Err)
	}
	used, err := UsedBlobs(ctx, r, sns)
	if err != nil {
		return nil, st, fmt.Errorf("%w: %v", repo.ErrPruneRefused, err)
	}
	// Archived WAL (docs/FORMAT.md 12a) is used as long as its entry is.
	if err := wal.AddUsed(ctx, r, used); err != nil {
		return nil, st, fmt.Errorf("%w: %v (run hoard check)", repo.ErrPruneRefused, err)
	}
	plan, err := r.PlanPrune(ctx, used, o)
	if err != nil || dryRun {
		return plan, st, err
	}
	st, err = r.Prune(ctx, plan, removeUnindexed)
	return plan, st, err
}
