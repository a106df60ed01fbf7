package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/index"
	"github.com/hoard-backup/hoard/repo/pack"
)

// BlobHandle names a blob by type and ID.
type BlobHandle struct {
	Type pack.BlobType
	ID   id.ID
}

// BlobSet is a set of blobs.
type BlobSet map[BlobHandle]struct{}

// PruneOptions configure PlanPrune.
type PruneOptions struct {
	// MaxUnused is the share (0 to 1) of a pack's blob bytes that may be
	// unused before the pack is repacked.
	MaxUnused float64
}

// PrunePlan says what Prune will do. Build it with PlanPrune, under an
// exclusive lock, after LoadIndex.
type PrunePlan struct {
	Delete    []index.PackRef        // indexed packs without a used blob
	Repack    []index.PackRef        // packs with too much unused data: used blobs are copied, then the pack is deleted
	Unindexed []backends.FileInfo    // packs no index names (an interrupted backup's, or a crashed prune's)
	Keep      int                    // packs kept as they are
	copy      map[id.ID][]pack.Entry // per repacked pack, the blobs to copy out of it

	CopyBlobs int    // blobs copied into new packs
	CopyBytes uint64 // their stored bytes
	// FreedBytes is what deleting packs frees (before the copies are added).
	FreedBytes uint64
	// UnindexedBytes is the size of the unindexed packs.
	UnindexedBytes uint64
	UsedBlobs      int
	UnusedBlobs    int
}

// ErrPruneRefused means prune found the repository in a state where
// removing anything could lose data.
var ErrPruneRefused = errors.New("repo: prune refused")

// PlanPrune decides, from the loaded index and the set of used blobs,
// which packs to delete and which to repack. It refuses (ErrPruneRefused)
// when a used blob is in no index or a pack holding used blobs is missing.
func (r *Repository) PlanPrune(ctx context.Context, used BlobSet, o PruneOptions) (*PrunePlan, error) {
	onDisk := map[id.ID]backends.FileInfo{}
	err := r.be.List(ctx, backends.PackFile, func(fi backends.FileInfo) error {
		if n, err := id.Parse(fi.Name); err == nil {
			onDisk[n] = fi
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("repo: list packs: %w", err)
	}
	entries := map[id.ID][]pack.Entry{}
	refs := map[id.ID]index.PackRef{}
	var bases []BlobHandle
	r.idx.Each(func(p index.PackRef, e pack.Entry) {
		entries[p.ID] = append(entries[p.ID], e)
		refs[p.ID] = p
		if _, ok := used[BlobHandle{e.Type, e.ID}]; ok && e.IsDelta() {
			bases = append(bases, BlobHandle{pack.DataBlob, e.Base})
		}
	})
	// The base of a used delta blob (of any of its copies) is used too;
	// bases are full blobs, so one step is all (docs/FORMAT.md, 14.7).
	if len(bases) > 0 {
		used = maps.Clone(used)
		for _, h := range bases {
			used[h] = struct{}{}
		}
	}
	for _, p := range r.idx.Packs() {
		refs[p.ID] = p // packs without blobs too
	}
	ids := make([]id.ID, 0, len(refs))
	for pid := range refs {
		ids = append(ids, pid)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Compare(ids[j]) < 0 })

	// One copy of each used blob counts as used; further copies are unused.
	// Only a copy in a pack that is there (with the size the index says)
	// is chosen: an index file put back from an old state of the
	// repository may name packs a prune removed.
	chosen := map[BlobHandle]id.ID{}
	usedBytes := map[id.ID]uint64{}
	totalBytes := map[id.ID]uint64{}
	plan := &PrunePlan{copy: map[id.ID][]pack.Entry{}}
	for _, pid := range ids {
		es := entries[pid]
		slices.SortFunc(es, func(a, b pack.Entry) int { return int(a.Offset) - int(b.Offset) })
		fi, present := onDisk[pid]
		present = present && uint64(fi.Size) == refs[pid].Size
		for _, e := range es {
			h := BlobHandle{e.Type, e.ID}
			totalBytes[pid] += uint64(e.Length)
			if _, ok := used[h]; !ok {
				plan.UnusedBlobs++
				continue
			}
			if _, ok := chosen[h]; ok || !present {
				continue
			}
			chosen[h] = pid
			usedBytes[pid] += uint64(e.Length)
		}
	}
	var missing []string
	for h := range used {
		if _, ok := chosen[h]; !ok {
			missing = append(missing, fmt.Sprintf("%s blob %s", h.Type, h.ID.Str()))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("%w: %d used blobs are in no index or only in packs that are missing (first: %s); run hoard check", ErrPruneRefused, len(missing), missing[0])
	}
	plan.UsedBlobs = len(chosen)
	state := map[id.ID]int{} // 0 keep, 1 delete, 2 repack
	for _, pid := range ids {
		p := refs[pid]
		fi, ok := onDisk[pid]
		if usedBytes[pid] > 0 && (!ok || uint64(fi.Size) != p.Size) {
			return nil, fmt.Errorf("%w: pack %s holds used blobs but is missing or has the wrong size; run hoard check", ErrPruneRefused, pid.Str())
		}
		switch {
		case usedBytes[pid] == 0:
			state[pid] = 1
			plan.Delete = append(plan.Delete, p)
			if ok {
				plan.FreedBytes += uint64(fi.Size)
			}
		case float64(totalBytes[pid]-usedBytes[pid]) > o.MaxUnused*float64(totalBytes[pid]):
			state[pid] = 2
			plan.Repack = append(plan.Repack, p)
			plan.FreedBytes += uint64(fi.Size)
		default:
			plan.Keep++
		}
	}
	// A used blob whose chosen copy is in a repacked pack is copied,
	// unless another copy lives in a pack that is kept.
	for h, pid := range chosen {
		if state[pid] != 2 {
			continue
		}
		kept := false
		for _, loc := range r.idx.Lookup(h.Type, h.ID) {
			if state[loc.Pack.ID] == 0 {
				kept = true
				break
			}
		}
		if kept {
			continue
		}
		for _, e := range entries[pid] {
			if e.Type == h.Type && e.ID == h.ID {
				plan.copy[pid] = append(plan.copy[pid], e)
				plan.CopyBlobs++
				plan.CopyBytes += uint64(e.Length)
				break
			}
		}
	}
	for pid, fi := range onDisk {
		if _, ok := refs[pid]; !ok {
			plan.Unindexed = append(plan.Unindexed, fi)
			plan.UnindexedBytes += uint64(fi.Size)
		}
	}
	sort.Slice(plan.Unindexed, func(i, j int) bool { return plan.Unindexed[i].Name < plan.Unindexed[j].Name })
	return plan, nil
}

// PruneStats says what Prune did.
type PruneStats struct {
	PacksDeleted      int
	PacksWritten      int
	IndexFilesRemoved int
}

// Prune carries out a plan (docs/FORMAT.md, section "Prune"), in an order
// that leaves a consistent repository wherever it stops: copy the used
// blobs of repacked packs into new packs and index them; write one index
// file that names every remaining pack and supersedes every index file
// there is; remove those index files; and only then remove the packs no
// index names any more. Unindexed packs are removed only when
// removeUnindexed is set. The caller holds an exclusive lock. The
// repository should not be used to write after Prune.
func (r *Repository) Prune(ctx context.Context, plan *PrunePlan, removeUnindexed bool) (PruneStats, error) {
	var st PruneStats
	before := len(r.idx.Packs())
	if err := r.repack(ctx, plan); err != nil {
		return st, err
	}
	st.PacksWritten = len(r.idx.Packs()) - before

	gone := map[id.ID]bool{}
	for _, p := range plan.Delete {
		gone[p.ID] = true
	}
	for _, p := range plan.Repack {
		gone[p.ID] = true
	}
	byPack := map[id.ID]*index.Pack{}
	for _, p := range r.idx.Packs() {
		if !gone[p.ID] {
			byPack[p.ID] = &index.Pack{ID: p.ID, Size: p.Size, Kind: p.Kind, WrappedKey: p.WrappedKey}
		}
	}
	r.idx.Each(func(p index.PackRef, e pack.Entry) {
		if ip := byPack[p.ID]; ip != nil {
			ip.Blobs = append(ip.Blobs, e)
		}
	})
	f := &index.File{}
	for _, ip := range byPack {
		slices.SortFunc(ip.Blobs, func(a, b pack.Entry) int { return int(a.Offset) - int(b.Offset) })
		f.Packs = append(f.Packs, *ip)
	}
	sort.Slice(f.Packs, func(i, j int) bool { return f.Packs[i].ID.Compare(f.Packs[j].ID) < 0 })
	old, err := r.List(ctx, backends.IndexFile)
	if err != nil {
		return st, err
	}
	if len(gone) > 0 || len(old) > 1 {
		f.Supersedes = old
		name, err := r.SaveUnpacked(ctx, backends.IndexFile, index.Encode(f))
		if err != nil {
			return st, err
		}
		r.log.Info("prune: wrote index", "file", name.Str(), "packs", len(f.Packs), "supersedes", len(old))
		for _, n := range old {
			if n == name {
				continue
			}
			if err := r.remove(ctx, backends.IndexFile, n.String()); err != nil {
				return st, err
			}
			st.IndexFilesRemoved++
		}
	}
	for pid := range gone {
		if err := r.remove(ctx, backends.PackFile, pid.String()); err != nil {
			return st, err
		}
		st.PacksDeleted++
	}
	if removeUnindexed {
		for _, fi := range plan.Unindexed {
			if err := r.remove(ctx, backends.PackFile, fi.Name); err != nil {
				return st, err
			}
			st.PacksDeleted++
		}
	}
	return st, nil
}

func (r *Repository) remove(ctx context.Context, t backends.FileType, name string) error {
	err := r.be.Remove(ctx, backends.Handle{Type: t, Name: name})
	if err != nil && !errors.Is(err, backends.ErrNotExist) {
		return fmt.Errorf("repo: remove %s/%s: %w", t, name, err)
	}
	return nil
}

// repack copies the blobs the plan names out of their packs into new
// packs, even though the index knows them, and writes an index file for
// the new packs.
func (r *Repository) repack(ctx context.Context, plan *PrunePlan) error {
	var buf []byte
	for _, p := range plan.Repack {
		es := plan.copy[p.ID]
		if len(es) == 0 {
			continue
		}
		a, err := r.PackKey(p)
		if err != nil {
			return fmt.Errorf("repo: repack %s: %w", p.ID.Str(), err)
		}
		end := uint64(0)
		for _, e := range es {
			end = max(end, uint64(e.Offset)+uint64(e.Length))
		}
		if end > p.Size {
			return fmt.Errorf("repo: repack %s: %w: index names bytes beyond the pack", p.ID.Str(), ErrInvalidData)
		}
		data := make([]byte, end)
		err = r.be.Load(ctx, backends.Handle{Type: backends.PackFile, Name: p.ID.String()}, int(end), 0, func(rd io.Reader) error {
			_, err := io.ReadFull(rd, data)
			return err
		})
		if err != nil {
			return fmt.Errorf("repo: repack: load pack %s: %w", p.ID.Str(), err)
		}
		for _, e := range es {
			stored := data[e.Offset : e.Offset+e.Length]
			var payload []byte
			if e.IsDelta() {
				// A delta moves as it is, naming the same base; it is
				// checked by resolving it first.
				if payload, err = r.OpenPayload(a, e, bytes.Clone(stored)); err != nil {
					return fmt.Errorf("repo: repack: %w", withPack(err, p.ID))
				}
			}
			plain, err := r.OpenEntry(ctx, a, e, stored, buf)
			if err != nil {
				return fmt.Errorf("repo: repack: %w", withPack(err, p.ID))
			}
			buf = plain
			if e.IsDelta() {
				_, err = r.savePayload(ctx, e.Type, e.ID, &payload, int(e.RawLength), e.Base, false)
			} else {
				_, err = r.saveBlob(ctx, e.Type, e.ID, plain, true)
			}
			if err != nil {
				return err
			}
		}
	}
	return r.Flush(ctx)
}

// withPack names pack pid in a *BlobError that does not name one.
func withPack(err error, pid id.ID) error {
	var be *BlobError
	if errors.As(err, &be) && be.Pack.IsNull() {
		be.Pack = pid
	}
	return err
}
