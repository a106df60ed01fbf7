// Package copier copies snapshots from one repository to another, each with
// its own backend, keys and chunker parameters.
//
// Blob IDs are keyed hashes, so the same content has different IDs in two
// repositories unless they share their ID key. A copy therefore reads each
// blob's plaintext from the source, computes its ID in the target, and
// stores it there unless the target's index knows it; trees are rewritten
// bottom-up with the target's IDs. Blobs keep the source's cut points: a
// target with the same chunker parameters deduplicates the copy against
// what it holds, one with others stores the chunks as they come. When both
// repositories share their ID key (the same key file lineage), IDs are the
// same and blobs the target holds are not even read.
//
// The target needs only a key that can write (a write-only key): a copy
// never reads the target's content. Copied snapshots carry no writer
// fields: no key of the target wrote their trees, so no host backing up
// into the target takes one as a parent whose unchanged files it reuses. A copied snapshot records the source
// snapshot's ID (or the ID it was first made under) as original, which is
// how the next copy recognises it and copies it no more.
package copier

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
)

// Stats counts what a copy did.
type Stats struct {
	Snapshots   int    `json:"snapshots"`    // copied
	Skipped     int    `json:"skipped"`      // already in the target
	BlobsRead   uint64 `json:"blobs_read"`   // loaded from the source
	BlobsNew    uint64 `json:"blobs_new"`    // stored in the target
	BytesNew    uint64 `json:"bytes_new"`    // plaintext bytes of new blobs
	BytesStored uint64 `json:"bytes_stored"` // sealed bytes added to the target
}

// Options tune a Copier.
type Options struct {
	// Workers load and store blobs in parallel (default 4).
	Workers int
	// FlushBytes makes the copy store the target's index after about this
	// many new bytes (default 256 MiB), so that an interrupted copy resumes
	// without sending again what landed.
	FlushBytes uint64
}

// Copier copies snapshots from src to dst. It remembers the target IDs of
// the blobs it has seen, so snapshots that share data are read once. Not
// safe for concurrent use.
type Copier struct {
	src, dst *repo.Repository
	opts     Options
	sameIDs  bool

	mu       sync.Mutex
	ids      map[id.ID]id.ID // source data blob ID -> target ID
	trees    map[id.ID]id.ID // source tree ID -> target tree ID
	stats    Stats
	unsynced uint64 // new bytes since the last flush
}

// New returns a Copier. The target's index must be loaded (LoadIndex).
func New(src, dst *repo.Repository, o Options) *Copier {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.FlushBytes == 0 {
		o.FlushBytes = 256 << 20
	}
	probe := []byte("hoard copy: do both repositories hash blobs alike?")
	return &Copier{
		src: src, dst: dst, opts: o,
		sameIDs: src.BlobID(probe) == dst.BlobID(probe),
		ids:     map[id.ID]id.ID{},
		trees:   map[id.ID]id.ID{},
	}
}

// Stats returns the counts so far.
func (c *Copier) Stats() Stats { return c.stats }

// OriginOf is the ID by which copies recognise a snapshot: the ID it was
// first made under (its original), else its own.
func OriginOf(sn *snapshot.Snapshot) id.ID {
	if sn.Original != nil {
		return *sn.Original
	}
	return sn.ID
}

// Copied returns, of the target's snapshots, those that are copies (or the
// originals) of other snapshots, by OriginOf.
func Copied(dstSnapshots []*snapshot.Snapshot) map[id.ID]*snapshot.Snapshot {
	m := make(map[id.ID]*snapshot.Snapshot, len(dstSnapshots))
	for _, sn := range dstSnapshots {
		m[OriginOf(sn)] = sn
	}
	return m
}

// Copy copies sn and everything it references into the target and stores
// the new snapshot there (after its blobs and index). parent, if not nil,
// is the target's copy of sn's parent. The caller holds locks on both
// repositories.
func (c *Copier) Copy(ctx context.Context, sn *snapshot.Snapshot, parent *id.ID) (*snapshot.Snapshot, error) {
	root, err := c.tree(ctx, sn.Tree, 0)
	if err != nil {
		return nil, err
	}
	if err := c.dst.Flush(ctx); err != nil {
		return nil, fmt.Errorf("copy snapshot %s: store the target's packs and index: %w", sn.ID.Str(), err)
	}
	c.unsynced = 0
	nsn := *sn
	nsn.Tree = root
	nsn.Parent = parent
	origin := OriginOf(sn)
	nsn.Original = &origin
	if err := snapshot.SaveUnauthenticated(ctx, c.dst, &nsn); err != nil {
		return nil, fmt.Errorf("copy snapshot %s: save: %w", sn.ID.Str(), err)
	}
	c.stats.Snapshots++
	return &nsn, nil
}

// maxDepth bounds directory nesting, as the restorer's walk does: tree IDs
// are content hashes, so there are no cycles, but a hostile source could
// chain trees without end.
const maxDepth = 4096

// tree copies the tree tid and what it references, and returns its ID in
// the target. Shared subtrees are copied once.
func (c *Copier) tree(ctx context.Context, tid id.ID, depth int) (id.ID, error) {
	if nid, ok := c.trees[tid]; ok {
		return nid, nil
	}
	if depth > maxDepth {
		return id.ID{}, fmt.Errorf("%w: tree %s: directories nested deeper than %d", repo.ErrInvalidData, tid.Str(), maxDepth)
	}
	if err := ctx.Err(); err != nil {
		return id.ID{}, err
	}
	t, err := snapshot.LoadTree(ctx, c.src, tid)
	if err != nil {
		return id.ID{}, err
	}
	if err := c.data(ctx, t); err != nil {
		return id.ID{}, err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		for j, b := range n.Content {
			n.Content[j] = c.ids[b]
		}
		if n.Subtree != nil {
			sub, err := c.tree(ctx, *n.Subtree, depth+1)
			if err != nil {
				return id.ID{}, err
			}
			n.Subtree = &sub
		}
	}
	nid, res, err := snapshot.SaveTree(ctx, c.dst, t)
	if err != nil {
		return id.ID{}, fmt.Errorf("copy tree %s: %w", tid.Str(), err)
	}
	c.count(res, 0)
	c.trees[tid] = nid
	if c.unsynced >= c.opts.FlushBytes {
		if err := c.dst.Flush(ctx); err != nil {
			return id.ID{}, err
		}
		c.unsynced = 0
	}
	return nid, nil
}

func (c *Copier) count(res repo.SaveResult, plain int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if res.Known {
		return
	}
	c.stats.BlobsNew++
	c.stats.BytesNew += uint64(plain)
	c.stats.BytesStored += uint64(res.Stored)
	c.unsynced += uint64(res.Stored)
}

// data copies the content blobs of t's files that this copy has not seen,
// in parallel, and records their target IDs.
func (c *Copier) data(ctx context.Context, t *snapshot.Tree) error {
	var todo []id.ID
	seen := map[id.ID]bool{}
	for i := range t.Nodes {
		for _, b := range t.Nodes[i].Content {
			if _, ok := c.ids[b]; ok || seen[b] {
				continue
			}
			seen[b] = true
			if c.sameIDs && c.dst.Index().Has(repo.DataBlob, b) {
				c.ids[b] = b
				continue
			}
			todo = append(todo, b)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Workers)
	for _, b := range todo {
		g.Go(func() error {
			plain, err := c.src.LoadBlob(gctx, repo.DataBlob, b, nil)
			if err != nil {
				return fmt.Errorf("copy: load data blob %s: %w", b.Str(), err)
			}
			nid := c.dst.BlobID(plain)
			res, err := c.dst.SaveBlobWithID(gctx, repo.DataBlob, nid, plain)
			if err != nil {
				return fmt.Errorf("copy: store data blob %s: %w", b.Str(), err)
			}
			c.count(res, len(plain))
			c.mu.Lock()
			c.ids[b] = nid
			c.stats.BlobsRead++
			c.mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}
