package snapshot

import (
	"context"
	"fmt"
	"slices"

	"github.com/hoard-backup/hoard/repo"
)

// TagChange says how to change a snapshot's tags: Set replaces them all
// (when SetTags is true, even with nothing), then Add adds and Remove
// removes. Tags keep their first order; duplicates are dropped.
type TagChange struct {
	Set     []string
	SetTags bool
	Add     []string
	Remove  []string
}

// Apply returns the tags tags become.
func (c TagChange) Apply(tags []string) []string {
	var out []string
	if c.SetTags {
		tags = c.Set
	}
	for _, t := range append(slices.Clone(tags), c.Add...) {
		if t != "" && !slices.Contains(out, t) && !slices.Contains(c.Remove, t) {
			out = append(out, t)
		}
	}
	return out
}

// Retag writes sn again with its tags changed by c and removes the old
// snapshot file, as restic's tag does: snapshot files are content-addressed,
// so new tags mean a new ID. The new snapshot records the ID of the first
// version in Original, so a chain of retaggings still names where it began.
// The new file is stored before the old one is removed: a crash between
// the two leaves both, never neither. It returns the new snapshot, or sn
// itself and false when the tags would not change.
func Retag(ctx context.Context, r *repo.Repository, sn *Snapshot, c TagChange) (*Snapshot, bool, error) {
	tags := c.Apply(sn.Tags)
	if slices.Equal(tags, sn.Tags) {
		return sn, false, nil
	}
	nsn := *sn
	nsn.Tags = tags
	if nsn.Original == nil {
		old := sn.ID
		nsn.Original = &old
	}
	// The retagged snapshot is authenticated by this key only if this key
	// wrote the original: retagging must not make another writer's tree
	// one this host trusts as a parent.
	if err := save(ctx, r, &nsn, Verify(r, sn) == repo.TrustThisKey); err != nil {
		return nil, false, fmt.Errorf("save retagged snapshot of %s: %w", sn.ID.Str(), err)
	}
	if nsn.ID == sn.ID {
		return &nsn, true, nil
	}
	if err := r.RemoveSnapshot(ctx, sn.ID); err != nil {
		return nil, false, fmt.Errorf("remove snapshot %s after retagging it as %s: %w", sn.ID.Str(), nsn.ID.Str(), err)
	}
	return &nsn, true, nil
}
