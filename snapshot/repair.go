package snapshot

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
)

// RepairTag is added to every snapshot RepairSnapshots writes.
const RepairTag = "repaired"

// RepairOptions configure RepairSnapshots.
type RepairOptions struct {
	// ReadData reads every pack first (as check --read-data) so that
	// damaged blobs are found; without it only blobs no index names, blobs
	// of missing packs and trees that cannot be loaded count.
	ReadData bool
	// Forget removes each repaired snapshot's old file.
	Forget bool
	// DryRun reports what would change and writes nothing.
	DryRun bool
}

// RepairedSnapshot is one snapshot RepairSnapshots rewrote.
type RepairedSnapshot struct {
	Old, New id.ID    // New is null on a dry run
	Removed  []string // paths of files dropped and of subtrees emptied ("dir/")
}

// RepairReport says what RepairSnapshots did.
type RepairReport struct {
	Repaired   []RepairedSnapshot
	Unreadable []Problem // snapshot files that cannot be read: left alone
	Checked    int
}

// RepairSnapshots rewrites every snapshot whose trees reference missing or
// damaged blobs: a file with any unreadable data blob is dropped, a subtree
// that cannot be loaded becomes an empty directory, everything else is kept.
// The new snapshot keeps the old one's fields, with tag RepairTag added; the
// old one is removed only with Forget. The caller holds an exclusive lock
// (Forget) or a shared one; a blob is unreadable only when no copy of it
// loads and verifies.
func RepairSnapshots(ctx context.Context, r *repo.Repository, o RepairOptions) (*RepairReport, error) {
	rep, err := Check(ctx, r, CheckOptions{ReadData: o.ReadData})
	if err != nil {
		return nil, err
	}
	sns, probs, err := List(ctx, r)
	if err != nil {
		return nil, err
	}
	out := &RepairReport{Unreadable: probs, Checked: len(sns)}
	fx := &treeFixer{r: r, bad: rep.BadBlobs, dryRun: o.DryRun, readable: map[id.ID]bool{}, memo: map[id.ID]fixedTree{}}
	for _, sn := range sns {
		root, err := fx.fix(ctx, sn.Tree, "")
		if err != nil {
			return out, err
		}
		if !root.changed {
			continue
		}
		rs := RepairedSnapshot{Old: sn.ID, Removed: root.removed}
		if !o.DryRun {
			if err := r.Flush(ctx); err != nil {
				return out, err
			}
			nsn := *sn
			nsn.Tree = root.id
			nsn.Tags = append(slices.Clone(sn.Tags), RepairTag)
			if slices.Contains(sn.Tags, RepairTag) {
				nsn.Tags = sn.Tags
			}
			// Only a snapshot this key wrote stays this key's: another
			// writer's (perhaps forged) is rewritten unauthenticated.
			if err := save(ctx, r, &nsn, Verify(r, sn) == repo.TrustThisKey); err != nil {
				return out, err
			}
			rs.New = nsn.ID
			if o.Forget {
				if err := r.RemoveSnapshot(ctx, sn.ID); err != nil && !errors.Is(err, repo.ErrNotExist) {
					return out, fmt.Errorf("snapshot: remove %s: %w", sn.ID.Str(), err)
				}
			}
		}
		out.Repaired = append(out.Repaired, rs)
	}
	return out, nil
}

type fixedTree struct {
	id      id.ID
	changed bool
	removed []string // relative to the tree
}

type treeFixer struct {
	r        *repo.Repository
	bad      map[id.ID]string
	dryRun   bool
	readable map[id.ID]bool
	memo     map[id.ID]fixedTree
}

// blobOK reports whether some copy of data blob b loads and verifies. Only
// blobs check found bad are loaded.
func (f *treeFixer) blobOK(ctx context.Context, b id.ID) bool {
	if !f.r.Index().Has(repo.DataBlob, b) {
		return false
	}
	if _, bad := f.bad[b]; !bad {
		return true
	}
	ok, seen := f.readable[b]
	if !seen {
		_, err := f.r.LoadBlob(ctx, repo.DataBlob, b, nil)
		ok = err == nil
		f.readable[b] = ok
	}
	return ok
}

// fix returns tree tid with its unreadable parts dropped, storing the new
// tree when something changed. prefix is only for reporting.
func (f *treeFixer) fix(ctx context.Context, tid id.ID, prefix string) (fixedTree, error) {
	if ft, ok := f.memo[tid]; ok {
		return withPrefix(ft, prefix), nil
	}
	if err := ctx.Err(); err != nil {
		return fixedTree{}, err
	}
	ft := fixedTree{id: tid}
	t, err := LoadTree(ctx, f.r, tid)
	if err != nil {
		if !errors.Is(err, repo.ErrInvalidData) && !errors.Is(err, repo.ErrBlobNotFound) && !errors.Is(err, ErrInvalidTree) {
			return ft, err
		}
		t = &Tree{}
		ft.changed = true
		ft.removed = []string{"./"}
	} else {
		var nodes []Node
		for _, n := range t.Nodes {
			switch {
			case n.Type == TypeFile:
				ok := true
				for _, c := range n.Content {
					if ok = f.blobOK(ctx, c); !ok {
						break
					}
				}
				if !ok {
					ft.changed = true
					ft.removed = append(ft.removed, n.Name)
					continue
				}
			case n.Type == TypeDir && n.Subtree != nil:
				sub, err := f.fix(ctx, *n.Subtree, n.Name+"/")
				if err != nil {
					return ft, err
				}
				if sub.changed {
					ft.changed = true
					ft.removed = append(ft.removed, sub.removed...)
					nid := sub.id
					n.Subtree = &nid
				}
			}
			nodes = append(nodes, n)
		}
		t.Nodes = nodes
	}
	if ft.changed && !f.dryRun {
		nid, _, err := SaveTree(ctx, f.r, t)
		if err != nil {
			return ft, err
		}
		ft.id = nid
	}
	f.memo[tid] = ft
	return withPrefix(ft, prefix), nil
}

func withPrefix(ft fixedTree, prefix string) fixedTree {
	out := ft
	out.removed = make([]string, len(ft.removed))
	for i, p := range ft.removed {
		if p == "./" {
			out.removed[i] = prefix
			if prefix == "" {
				out.removed[i] = "/"
			}
			continue
		}
		out.removed[i] = prefix + p
	}
	return out
}
