package snapshot

import (
	"context"
	"fmt"
	"math"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
)

// Stats describes what a set of snapshots holds and costs.
type Stats struct {
	Snapshots   int
	Files       uint64 // files in all snapshots, counted once per snapshot
	RestoreSize uint64 // sum of their sizes: what restoring every snapshot writes
	Blobs       int    // distinct blobs (data and tree) the snapshots need
	RawSize     uint64 // their plaintext lengths
	StoredSize  uint64 // their stored (compressed, sealed) lengths
	Packs       int    // packs holding a blob the snapshots need
	PackSize    uint64 // those packs' sizes (with other snapshots' blobs and headers)
}

// DedupRatio is RestoreSize / RawSize (0 when there is no data).
func (s Stats) DedupRatio() float64 { return ratio(s.RestoreSize, s.RawSize) }

// CompressionRatio is RawSize / StoredSize.
func (s Stats) CompressionRatio() float64 { return ratio(s.RawSize, s.StoredSize) }

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// ComputeStats walks the trees of sns (the index must be loaded). A blob
// is counted once however many files and snapshots use it; each
// snapshot's files count towards RestoreSize.
func ComputeStats(ctx context.Context, r *repo.Repository, sns []*Snapshot) (Stats, error) {
	st := Stats{Snapshots: len(sns)}
	idx := r.Index()
	seen := map[repo.BlobHandle]bool{}
	packs := map[id.ID]uint64{}
	addBlob := func(t repo.BlobType, b id.ID) error {
		h := repo.BlobHandle{Type: t, ID: b}
		if seen[h] {
			return nil
		}
		locs := idx.Lookup(t, b)
		if len(locs) == 0 {
			return &repo.BlobError{Type: t, ID: b, Err: repo.ErrBlobNotFound}
		}
		seen[h] = true
		st.Blobs++
		st.RawSize += uint64(locs[0].RawLength)
		st.StoredSize += uint64(locs[0].Length)
		packs[locs[0].Pack.ID] = locs[0].Pack.Size
		return nil
	}
	type sizes struct{ files, bytes uint64 }
	memo := map[id.ID]sizes{}
	var walk func(tid id.ID) (sizes, error)
	walk = func(tid id.ID) (sizes, error) {
		if s, ok := memo[tid]; ok {
			return s, nil
		}
		if err := ctx.Err(); err != nil {
			return sizes{}, err
		}
		if err := addBlob(repo.TreeBlob, tid); err != nil {
			return sizes{}, err
		}
		t, err := LoadTree(ctx, r, tid)
		if err != nil {
			return sizes{}, err
		}
		var s sizes
		for _, n := range t.Nodes {
			switch {
			case n.Type == TypeFile:
				s.files++
				s.bytes += n.Size
				for _, c := range n.Content {
					if err := addBlob(repo.DataBlob, c); err != nil {
						return s, err
					}
				}
			case n.Subtree != nil:
				sub, err := walk(*n.Subtree)
				if err != nil {
					return s, err
				}
				// Saturating: a tree that names one subtree at every
				// level counts 2^64 files and more (see CheckExpansion).
				s.files = addSat(s.files, sub.files)
				s.bytes = addSat(s.bytes, sub.bytes)
			}
		}
		memo[tid] = s
		return s, nil
	}
	for _, sn := range sns {
		s, err := walk(sn.Tree)
		if err != nil {
			return st, fmt.Errorf("snapshot %s: %w", sn.ID.Str(), err)
		}
		st.Files = addSat(st.Files, s.files)
		st.RestoreSize = addSat(st.RestoreSize, s.bytes)
	}
	st.Packs = len(packs)
	for _, size := range packs {
		st.PackSize += size
	}
	return st, nil
}

// addSat returns a+b, or the largest uint64 where that overflows.
func addSat(a, b uint64) uint64 {
	if a+b < a {
		return math.MaxUint64
	}
	return a + b
}
