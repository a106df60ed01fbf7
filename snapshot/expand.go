package snapshot

import (
	"context"
	"fmt"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
)

// Bounds of a tree walk that visits every entry (ls, restore, diff). Trees
// are content-addressed, so one subtree may appear under many names: a
// hostile writer can make a snapshot of a few hundred bytes whose tree
// names the same subtree twice at each of 64 levels, 2^64 entries. Walks
// that can remember what they saw (check, stats, prune, repair) load each
// subtree once; walks that must visit every path are refused up front
// (CheckExpansion) when the tree expands beyond these bounds.
const (
	// MaxEntries is the most entries (files, folders, links...) a tree
	// may expand to: far more than any real backup holds.
	MaxEntries = 100_000_000
	// MaxDepth is the deepest nesting of folders: no file system holds a
	// path that deep (Linux paths end at 4096 bytes).
	MaxDepth = 4096
)

// ErrTooLarge marks a tree that expands beyond MaxEntries or MaxDepth. It
// also matches ErrInvalidTree.
var ErrTooLarge = fmt.Errorf("%w: tree expands beyond the bounds of a walk", ErrInvalidTree)

// CheckExpansion returns how many entries a walk of tree tid visits (its
// entries and those of every subtree, counted once per path) and its depth,
// loading each distinct subtree only once. A tree that expands to more
// than maxEntries entries or nests deeper than MaxDepth is an error
// wrapping ErrTooLarge; so are trees that cannot be loaded (their own
// errors). maxEntries 0 means MaxEntries.
func CheckExpansion(ctx context.Context, r *repo.Repository, tid id.ID, maxEntries uint64) (uint64, error) {
	if maxEntries == 0 {
		maxEntries = MaxEntries
	}
	type size struct{ entries, depth uint64 }
	memo := map[id.ID]size{}
	var count func(tid id.ID, depth int) (size, error)
	count = func(tid id.ID, depth int) (size, error) {
		if s, ok := memo[tid]; ok {
			return s, nil
		}
		if depth > MaxDepth {
			return size{}, fmt.Errorf("%w: folders nest deeper than %d levels", ErrTooLarge, MaxDepth)
		}
		if err := ctx.Err(); err != nil {
			return size{}, err
		}
		t, err := LoadTree(ctx, r, tid)
		if err != nil {
			return size{}, err
		}
		s := size{entries: uint64(len(t.Nodes))}
		for _, n := range t.Nodes {
			if n.Subtree == nil {
				continue
			}
			sub, err := count(*n.Subtree, depth+1)
			if err != nil {
				return size{}, err
			}
			// Saturate instead of overflowing: 2^64 entries is "too many".
			s.entries = min(s.entries+sub.entries, maxEntries+1)
			s.depth = max(s.depth, sub.depth+1)
		}
		memo[tid] = s
		return s, nil
	}
	s, err := count(tid, 0)
	if err != nil {
		return 0, err
	}
	if s.entries > maxEntries {
		return s.entries, fmt.Errorf("%w: tree %s expands to more than %d entries (its subtrees repeat; %d distinct trees)",
			ErrTooLarge, tid.Str(), maxEntries, len(memo))
	}
	if s.depth > MaxDepth {
		return s.entries, fmt.Errorf("%w: folders nest deeper than %d levels", ErrTooLarge, MaxDepth)
	}
	return s.entries, nil
}
