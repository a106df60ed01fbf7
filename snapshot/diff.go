package snapshot

import (
	"context"
	"slices"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
)

// Change kinds reported by Diff.
const (
	Added    = "+"
	Removed  = "-"
	Modified = "M" // content or type changed
	Metadata = "U" // only mode, owner, times or link target changed
)

// Change is one path that differs between two snapshots. Directories end in "/".
type Change struct {
	Kind string
	Path string
}

// DiffSummary counts a diff's changes.
type DiffSummary struct {
	Added, Removed, Modified, Metadata int
}

// Diff compares the trees a and b, in path order. Subtrees with equal IDs
// are skipped without loading them; an added or removed directory is
// listed with everything below it.
func Diff(ctx context.Context, r *repo.Repository, a, b id.ID) ([]Change, DiffSummary, error) {
	d := &differ{r: r}
	err := d.trees(ctx, "/", &a, &b)
	return d.out, d.sum, err
}

type differ struct {
	r   *repo.Repository
	out []Change
	sum DiffSummary
}

func (d *differ) add(kind, p string) {
	d.out = append(d.out, Change{Kind: kind, Path: p})
	switch kind {
	case Added:
		d.sum.Added++
	case Removed:
		d.sum.Removed++
	case Modified:
		d.sum.Modified++
	case Metadata:
		d.sum.Metadata++
	}
}

func (d *differ) load(ctx context.Context, tid *id.ID) (*Tree, error) {
	if tid == nil {
		return &Tree{}, nil
	}
	return LoadTree(ctx, d.r, *tid)
}

// trees diffs two directories (nil: absent) at prefix.
func (d *differ) trees(ctx context.Context, prefix string, a, b *id.ID) error {
	if a != nil && b != nil && *a == *b {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ta, err := d.load(ctx, a)
	if err != nil {
		return err
	}
	tb, err := d.load(ctx, b)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(ta.Nodes) || j < len(tb.Nodes) {
		switch {
		case j == len(tb.Nodes) || (i < len(ta.Nodes) && ta.Nodes[i].Name < tb.Nodes[j].Name):
			if err := d.one(ctx, prefix, Removed, &ta.Nodes[i]); err != nil {
				return err
			}
			i++
		case i == len(ta.Nodes) || tb.Nodes[j].Name < ta.Nodes[i].Name:
			if err := d.one(ctx, prefix, Added, &tb.Nodes[j]); err != nil {
				return err
			}
			j++
		default:
			if err := d.both(ctx, prefix, &ta.Nodes[i], &tb.Nodes[j]); err != nil {
				return err
			}
			i++
			j++
		}
	}
	return nil
}

// one reports a node present on one side only, and everything below it.
func (d *differ) one(ctx context.Context, prefix, kind string, n *Node) error {
	if n.Type != TypeDir {
		d.add(kind, prefix+n.Name)
		return nil
	}
	d.add(kind, prefix+n.Name+"/")
	if kind == Added {
		return d.trees(ctx, prefix+n.Name+"/", nil, n.Subtree)
	}
	return d.trees(ctx, prefix+n.Name+"/", n.Subtree, nil)
}

func (d *differ) both(ctx context.Context, prefix string, a, b *Node) error {
	if a.Type != b.Type {
		if err := d.one(ctx, prefix, Removed, a); err != nil {
			return err
		}
		return d.one(ctx, prefix, Added, b)
	}
	if a.Type == TypeDir { // a directory's own times change with its content: not reported
		return d.trees(ctx, prefix+a.Name+"/", a.Subtree, b.Subtree)
	}
	switch {
	case a.Size != b.Size || !slices.Equal(a.Content, b.Content) || a.LinkTarget != b.LinkTarget || a.Rdev != b.Rdev:
		d.add(Modified, prefix+a.Name)
	case metaDiffers(a, b):
		d.add(Metadata, prefix+a.Name)
	}
	return nil
}

func metaDiffers(a, b *Node) bool {
	return a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID || a.User != b.User || a.Group != b.Group ||
		!a.ModTime.Equal(b.ModTime)
}
