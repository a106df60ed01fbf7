package snapshot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
)

// CheckOptions configure Check.
type CheckOptions struct {
	// ReadData reads every pack and verifies every blob; it needs a key
	// that can read content.
	ReadData bool
	// ReadSubset, when set, restricts ReadData to the packs it selects
	// (ReadData is implied). Damage in packs not read is not found.
	ReadSubset *Subset
	// Progress, when set, is called after each pack is read.
	Progress func(done, total int)
}

// CheckProblem is one thing found wrong, naming the repository file.
type CheckProblem struct {
	File string
	Err  error
}

// AffectedSnapshot is a snapshot that cannot be restored in full.
type AffectedSnapshot struct {
	ID     id.ID
	Reason string
}

// CheckReport is what Check found.
type CheckReport struct {
	Problems     []CheckProblem
	Affected     []AffectedSnapshot
	Unreferenced []id.ID // packs no index names: harmless leftovers of an interrupted backup
	StaleIndex   []StaleIndexFile
	Snapshots    int
	Packs        int
	Blobs        int
	PacksRead    int
	// BadBlobs are blobs found damaged or in a missing pack (blob -> the
	// pack file); another copy of one may still be readable.
	BadBlobs map[id.ID]string
}

// OK reports whether nothing is wrong.
func (c *CheckReport) OK() bool { return len(c.Problems) == 0 && len(c.Affected) == 0 }

// Check verifies the repository: index files open, every indexed pack
// exists with its size, every snapshot's trees load and every blob they
// name is indexed; with ReadData, every pack's trailer and sealed header
// open, its header matches the index with its blobs end to end, and every
// blob decrypts and verifies: every byte of the pack is authenticated
// (repo.VerifyPacks).
func Check(ctx context.Context, r *repo.Repository, o CheckOptions) (*CheckReport, error) {
	rep := &CheckReport{}
	if o.ReadSubset != nil {
		o.ReadData = true
	}
	if o.ReadData && !r.CanRead() {
		return nil, repo.ErrWriteOnly
	}
	iprobs, err := r.LoadIndex(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range iprobs {
		rep.Problems = append(rep.Problems, CheckProblem{File: repo.FilePath(repo.IndexFile, p.Name), Err: bare(p.Err)})
	}
	idx := r.Index()
	rep.Blobs = idx.Len()
	// The snapshots' trees are walked while the packs are read: alone
	// after the reads, decoding the trees kept one core busy and the
	// other idle (a tenth of check --read-data's time with 15,000 files).
	// The walk assumes no blob is damaged; when the reads find one, the
	// trees are walked again knowing it.
	walkCtx, stopWalk := context.WithCancel(ctx)
	defer stopWalk()
	walked := make(chan walkResult, 1)
	go func() { walked <- walkSnapshots(walkCtx, r, nil) }()
	defer func() {
		if walked != nil { // returning early: the walk ends before the caller closes r
			stopWalk()
			<-walked
		}
	}()
	onDisk, err := r.ListPacks(ctx)
	if err != nil {
		return nil, err
	}
	packs := idx.Packs()
	rep.Packs = len(packs)
	badPacks := map[id.ID]bool{}
	missing := map[id.ID]bool{}
	for _, p := range packs {
		size, ok := onDisk[p.ID]
		switch {
		case !ok:
			badPacks[p.ID] = true
			missing[p.ID] = true
			rep.Problems = append(rep.Problems, CheckProblem{File: packFile(p.ID), Err: fmt.Errorf("%w: pack is missing", repo.ErrInvalidData)})
		case uint64(size) != p.Size:
			badPacks[p.ID] = true
			rep.Problems = append(rep.Problems, CheckProblem{File: packFile(p.ID), Err: fmt.Errorf("%w: %d bytes, index says %d", repo.ErrInvalidData, size, p.Size)})
		}
		delete(onDisk, p.ID)
	}
	rep.StaleIndex = staleIndexFiles(r, missing)
	for _, st := range rep.StaleIndex {
		rep.Problems = append(rep.Problems, CheckProblem{File: repo.FilePath(repo.IndexFile, st.Name),
			Err: fmt.Errorf("%w: stale index file: names %d packs that do not exist (first: %s); hoard repair index rebuilds the index without them",
				repo.ErrInvalidData, len(st.Missing), st.Missing[0].Str())})
	}
	for n := range onDisk {
		rep.Unreferenced = append(rep.Unreferenced, n)
	}
	sort.Slice(rep.Unreferenced, func(i, j int) bool { return rep.Unreferenced[i].Compare(rep.Unreferenced[j]) < 0 })

	badBlobs := map[id.ID]string{}
	if o.ReadData {
		toRead := packs
		if o.ReadSubset != nil {
			ids := make([]id.ID, len(packs))
			sizes := make([]uint64, len(packs))
			for i, p := range packs {
				ids[i], sizes[i] = p.ID, p.Size
			}
			sel := o.ReadSubset.Select(ids, sizes)
			toRead = nil
			for _, p := range packs {
				if sel[p.ID] {
					toRead = append(toRead, p)
				}
			}
		}
		for _, p := range toRead {
			if !badPacks[p.ID] {
				rep.PacksRead++
			}
		}
		probs, bad, err := readPacks(ctx, r, toRead, badPacks, o.Progress)
		if err != nil {
			return nil, err
		}
		rep.Problems = append(rep.Problems, probs...)
		badBlobs = bad
	}
	if len(badPacks) > 0 {
		idx.Each(func(pr repo.PackRef, e repo.PackEntry) {
			if !badPacks[pr.ID] {
				return
			}
			// Lost unless a copy is in a pack that is there (and, when
			// read, verified).
			for _, loc := range idx.Lookup(e.Type, e.ID) {
				if _, readBad := badBlobs[e.ID]; !badPacks[loc.Pack.ID] && !(readBad && o.ReadData) {
					return
				}
			}
			badBlobs[e.ID] = packFile(pr.ID)
		})
	}
	rep.Problems = append(rep.Problems, dependants(idx, badBlobs, badPacks)...)

	wr := <-walked
	walked = nil
	if wr.err == nil && len(badBlobs) > 0 {
		wr = walkSnapshots(ctx, r, badBlobs)
	}
	if wr.err != nil {
		return nil, wr.err
	}
	rep.Problems = append(rep.Problems, wr.problems...)
	rep.Affected = append(rep.Affected, wr.affected...)
	rep.Snapshots = wr.snapshots
	rep.BadBlobs = badBlobs
	return rep, nil
}

// walkResult is what walkSnapshots found.
type walkResult struct {
	snapshots int
	problems  []CheckProblem
	affected  []AffectedSnapshot
	err       error
}

// walkSnapshots loads every snapshot and walks its trees, finding the
// snapshots that cannot be restored in full: a damaged snapshot file, a
// tree that does not load, a file whose data blob no index names or that
// bad (blob -> where) lists.
func walkSnapshots(ctx context.Context, r *repo.Repository, bad map[id.ID]string) walkResult {
	var wr walkResult
	sns, sprobs, err := List(ctx, r)
	if err != nil {
		return walkResult{err: err}
	}
	for _, p := range sprobs {
		wr.problems = append(wr.problems, CheckProblem{File: repo.FilePath(repo.SnapshotFile, p.ID), Err: bare(p.Err)})
		wr.affected = append(wr.affected, AffectedSnapshot{ID: p.ID, Reason: "snapshot file damaged"})
	}
	wr.snapshots = len(sns) + len(sprobs)
	w := &treeChecker{r: r, bad: bad, memo: map[id.ID]string{}}
	for _, sn := range sns {
		if reason := w.tree(ctx, sn.Tree); reason != "" {
			wr.affected = append(wr.affected, AffectedSnapshot{ID: sn.ID, Reason: reason})
		}
		if ctx.Err() != nil {
			return walkResult{err: ctx.Err()}
		}
	}
	wr.problems = append(wr.problems, w.problems...)
	return wr
}

// StaleIndexFile is an index file that names packs that do not exist: put
// back from an old copy of the repository, or left by an interrupted
// prune. Blobs it places in those packs may have copies elsewhere.
type StaleIndexFile struct {
	Name    id.ID
	Missing []id.ID // the packs it names that do not exist, sorted
}

// staleIndexFiles returns, sorted by name, the loaded index files that name
// a pack in missing.
func staleIndexFiles(r *repo.Repository, missing map[id.ID]bool) []StaleIndexFile {
	if len(missing) == 0 {
		return nil
	}
	var out []StaleIndexFile
	for name, pids := range r.IndexFilePacks() {
		var gone []id.ID
		for _, p := range pids {
			if missing[p] {
				gone = append(gone, p)
			}
		}
		if len(gone) > 0 {
			sort.Slice(gone, func(i, j int) bool { return gone[i].Compare(gone[j]) < 0 })
			gone = slices.Compact(gone)
			out = append(out, StaleIndexFile{Name: name, Missing: gone})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name.Compare(out[j].Name) < 0 })
	return out
}

// bare drops the file name a repo.FileError adds, since a CheckProblem
// names the file itself.
func bare(err error) error {
	var fe *repo.FileError
	if errors.As(err, &fe) {
		return fe.Err
	}
	return err
}

func packFile(p id.ID) string { return repo.FilePath(repo.PackFile, p) }

type treeChecker struct {
	r        *repo.Repository
	bad      map[id.ID]string
	memo     map[id.ID]string // tree -> "" when whole, else the first reason
	problems []CheckProblem
}

// tree returns why the tree (or anything below it) cannot be restored, or "".
func (w *treeChecker) tree(ctx context.Context, tid id.ID) string {
	if reason, ok := w.memo[tid]; ok {
		return reason
	}
	reason := ""
	t, err := LoadTree(ctx, w.r, tid)
	if err != nil {
		reason = fmt.Sprintf("tree %s: %v", tid.Str(), err)
		w.problems = append(w.problems, CheckProblem{File: "tree " + tid.String(), Err: err})
		w.memo[tid] = reason
		return reason
	}
	idx := w.r.Index()
	for _, n := range t.Nodes {
		switch n.Type {
		case TypeDir:
			if sub := w.tree(ctx, *n.Subtree); sub != "" && reason == "" {
				reason = sub
			}
		case TypeFile:
			for _, c := range n.Content {
				if where, bad := w.bad[c]; bad && reason == "" {
					reason = fmt.Sprintf("file %q: data blob %s damaged in %s", n.Name, c.Str(), where)
				} else if !idx.Has(repo.DataBlob, c) && reason == "" {
					reason = fmt.Sprintf("file %q: data blob %s missing", n.Name, c.Str())
				}
			}
		}
	}
	w.memo[tid] = reason
	return reason
}

// readPacks reads every pack not already known bad and verifies it: one
// read per pack, its blobs decoded on every core (repo.VerifyPacks). It
// returns the problems and the blobs that failed (blob -> pack file).
func readPacks(ctx context.Context, r *repo.Repository, packs []repo.PackRef, skip map[id.ID]bool, progress func(int, int)) ([]CheckProblem, map[id.ID]string, error) {
	var (
		probs []CheckProblem
		bad   = map[id.ID]string{}
		good  = map[id.ID]bool{}
	)
	byPack := map[id.ID][]repo.PackEntry{}
	r.Index().Each(func(p repo.PackRef, e repo.PackEntry) {
		byPack[p.ID] = append(byPack[p.ID], e)
	})
	var reads []repo.PackRead
	for _, p := range packs {
		if !skip[p.ID] {
			reads = append(reads, repo.PackRead{Pack: p, Blobs: byPack[p.ID]})
		}
	}
	err := r.VerifyPacks(ctx, reads, repo.StreamOptions{}, func(i int, packErr error, failures []repo.BlobFailure) error {
		p := reads[i]
		file := packFile(p.Pack.ID)
		if packErr != nil {
			probs = append(probs, CheckProblem{File: file, Err: packErr})
		}
		// A delta blob that failed because its base did (a *BlobError
		// naming another blob) is damage of the base, not of this pack:
		// it is reported with the base, and this pack is not blamed.
		var own []repo.BlobFailure
		isBad := map[id.ID]bool{}
		for _, f := range failures {
			isBad[f.ID] = true
			if base, ok := otherBlob(f.Err, f.ID); ok {
				probs = append(probs, CheckProblem{File: "data blob " + f.ID.String(),
					Err: fmt.Errorf("delta blob in %s: %w", file, f.Err)})
				if !good[f.ID] {
					bad[f.ID] = "base " + base.Str()
				}
				continue
			}
			own = append(own, f)
			if !good[f.ID] {
				bad[f.ID] = file
			}
		}
		if len(own) > 0 && (packErr == nil || len(own) < len(p.Blobs)) {
			probs = append(probs, CheckProblem{File: file, Err: fmt.Errorf("%w: %d of %d blobs damaged", repo.ErrInvalidData, len(own), len(p.Blobs))})
		}
		// A blob with a copy that verified is not lost.
		for _, e := range p.Blobs {
			if !isBad[e.ID] {
				good[e.ID] = true
				delete(bad, e.ID)
			}
		}
		if progress != nil {
			progress(i+1, len(reads))
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return probs, bad, nil
}

// dependants marks as bad every delta blob whose base is bad or in no
// index (when no other copy of it is whole), and returns a problem for
// each base no index names (docs/FORMAT.md, 14.7). Bases are full blobs,
// so one pass finds them all.
func dependants(idx *repo.Index, bad map[id.ID]string, badPacks map[id.ID]bool) []CheckProblem {
	var probs []CheckProblem
	type dep struct{ blob, base id.ID }
	var deps []dep
	idx.Each(func(_ repo.PackRef, e repo.PackEntry) {
		if e.IsDelta() {
			deps = append(deps, dep{e.ID, e.Base})
		}
	})
	missing := map[id.ID]bool{}
	for _, d := range deps {
		if _, done := bad[d.blob]; done {
			continue
		}
		where, isBad := bad[d.base]
		if !isBad && !idx.Has(repo.DataBlob, d.base) {
			isBad, where = true, "no pack"
			if !missing[d.base] {
				missing[d.base] = true
				probs = append(probs, CheckProblem{File: "data blob " + d.base.String(),
					Err: fmt.Errorf("%w: the base of delta blob %s is missing", repo.ErrInvalidData, d.blob.Str())})
			}
		}
		if !isBad {
			continue
		}
		whole := false
		for _, loc := range idx.Lookup(repo.DataBlob, d.blob) {
			whole = whole || (loc.Base != d.base && !badPacks[loc.Pack.ID]) // another copy, in a pack that is there
		}
		if !whole {
			bad[d.blob] = "base " + d.base.Str() + " in " + where
		}
	}
	return probs
}

// otherBlob finds, in err's chain, a *repo.BlobError about a blob other
// than self: the base of a delta blob that failed because its base did.
func otherBlob(err error, self id.ID) (id.ID, bool) {
	if err == nil {
		return id.ID{}, false
	}
	if be, ok := err.(*repo.BlobError); ok && be.ID != self {
		return be.ID, true
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if b, ok := otherBlob(e, self); ok {
				return b, true
			}
		}
	case interface{ Unwrap() error }:
		return otherBlob(u.Unwrap(), self)
	}
	return id.ID{}, false
}
