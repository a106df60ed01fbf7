package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/index"
	"github.com/hoard-backup/hoard/repo/pack"
)

// PackProblem is a pack whose header could not be read.
type PackProblem struct {
	ID  id.ID
	Err error
	// Known is how many blobs the old index placed in the pack; Kept how
	// many of them RebuildIndex kept in the new index (each verified, or
	// all of them unverified when Unverified is set: a write-only key
	// cannot read data blobs).
	Known, Kept int
	Unverified  bool
}

// RebuildStats says what RebuildIndex did.
type RebuildStats struct {
	Packs             int           // packs named by the new index
	Blobs             int           // blobs named by the new index
	IndexFile         id.ID         // the new index file (null when there are no packs and no index files)
	IndexFilesRemoved int           // old index files removed
	Problems          []PackProblem // packs left out (and left alone): their header is unreadable
}

// ReadPackHeader reads a pack's header from its tail with two ranged loads
// (the trailer, then the sealed header) and opens it with the metadata key.
// size is the pack file's length. Errors wrap ErrInvalidData when the bytes
// are not a pack of this repository.
func (r *Repository) ReadPackHeader(ctx context.Context, pid id.ID, size int64) (pack.Header, error) {
	h := backends.Handle{Type: backends.PackFile, Name: pid.String()}
	if size < pack.TrailerSize {
		return pack.Header{}, fmt.Errorf("%w: pack of %d bytes", ErrInvalidData, size)
	}
	load := func(length int, off int64) ([]byte, error) {
		buf := make([]byte, length)
		err := r.be.Load(ctx, h, length, off, func(rd io.Reader) error {
			_, err := io.ReadFull(rd, buf)
			return err
		})
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, backends.ErrRange) {
			err = fmt.Errorf("%w: %v", ErrInvalidData, err)
		}
		return buf, err
	}
	tail, err := load(pack.TrailerSize, size-pack.TrailerSize)
	if err != nil {
		return pack.Header{}, err
	}
	n, err := pack.ParseTrailer(tail, size)
	if err != nil {
		return pack.Header{}, fmt.Errorf("%w: %v", ErrInvalidData, err)
	}
	start := size - pack.TrailerSize - int64(n)
	sealed, err := load(n, start)
	if err != nil {
		return pack.Header{}, err
	}
	hd, err := pack.OpenHeader(r.keys.Meta, sealed, start)
	if err != nil {
		return pack.Header{}, fmt.Errorf("%w: %v", ErrInvalidData, err)
	}
	return hd, nil
}

// RebuildIndex replaces the index with one built from the packs' headers
// (hoard repair index): it lists the packs, reads each header, writes one
// index file naming every readable pack that supersedes every index file
// present, and removes those. A pack whose header cannot be read is
// reported and left alone, and what the old index knew of it is kept:
// each blob it placed there is read and verified, and the ones that verify
// stay in the new index (repair never makes readable data unreachable).
// Readable packs' content is not read: check --read-data verifies it. The
// caller holds an exclusive lock.
func (r *Repository) RebuildIndex(ctx context.Context) (RebuildStats, error) {
	var st RebuildStats
	old, err := r.List(ctx, backends.IndexFile)
	if err != nil {
		return st, err
	}
	// The old index, for the packs whose header is damaged. Index files
	// that cannot be read contribute nothing.
	if _, err := r.LoadIndex(ctx); err != nil {
		return st, err
	}
	var infos []backends.FileInfo
	err = r.be.List(ctx, backends.PackFile, func(fi backends.FileInfo) error {
		if _, err := id.Parse(fi.Name); err == nil {
			infos = append(infos, fi)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("repo: list packs: %w", err)
	}
	var (
		mu    sync.Mutex
		packs []index.Pack
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.be.Properties().Connections)
	for _, fi := range infos {
		pid, _ := id.Parse(fi.Name)
		g.Go(func() error {
			h, err := r.ReadPackHeader(gctx, pid, fi.Size)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				st.Problems = append(st.Problems, PackProblem{ID: pid, Err: err})
				return nil
			}
			packs = append(packs, index.Pack{ID: pid, Size: uint64(fi.Size), Kind: h.Kind, WrappedKey: h.WrappedKey, Blobs: h.Entries})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return st, err
	}
	sort.Slice(st.Problems, func(i, j int) bool { return st.Problems[i].ID.Compare(st.Problems[j].ID) < 0 })
	sizes := map[id.ID]int64{}
	for _, fi := range infos {
		pid, _ := id.Parse(fi.Name)
		sizes[pid] = fi.Size
	}
	for i := range st.Problems {
		pr := &st.Problems[i]
		kept, err := r.salvagePack(ctx, pr, sizes[pr.ID])
		if err != nil {
			return st, err
		}
		packs = append(packs, kept...)
	}
	sort.SliceStable(packs, func(i, j int) bool { return packs[i].ID.Compare(packs[j].ID) < 0 })
	st.Packs = len(packs)
	for _, p := range packs {
		st.Blobs += len(p.Blobs)
	}
	if len(packs) == 0 && len(old) == 0 {
		return st, nil
	}
	name, err := r.SaveUnpacked(ctx, backends.IndexFile, index.Encode(&index.File{Supersedes: old, Packs: packs}))
	if err != nil {
		return st, err
	}
	st.IndexFile = name
	r.log.Info("repair index: wrote index", "file", name.Str(), "packs", len(packs), "supersedes", len(old))
	for _, n := range old {
		if n == name {
			continue
		}
		if err := r.remove(ctx, backends.IndexFile, n.String()); err != nil {
			return st, err
		}
		st.IndexFilesRemoved++
	}
	return st, nil
}

// salvagePack returns what the old index knew of a pack whose header is
// damaged, keeping only the blobs that verify (decrypted, and their ID
// recomputed from the plaintext); it fills in pr's counts. Blobs are read
// from one load of the pack. A key that cannot read data blobs keeps the
// data blobs unverified: dropping them could lose data.
func (r *Repository) salvagePack(ctx context.Context, pr *PackProblem, size int64) ([]index.Pack, error) {
	type group struct {
		ref     index.PackRef
		entries []pack.Entry
	}
	var groups []*group
	r.idx.Each(func(p index.PackRef, e pack.Entry) {
		if p.ID != pr.ID {
			return
		}
		for _, g := range groups {
			if g.ref.Size == p.Size && g.ref.Kind == p.Kind && string(g.ref.WrappedKey) == string(p.WrappedKey) {
				g.entries = append(g.entries, e)
				return
			}
		}
		groups = append(groups, &group{ref: p, entries: []pack.Entry{e}})
	})
	if len(groups) == 0 || size <= 0 || size > maxUnpacked {
		for _, g := range groups {
			pr.Known += len(g.entries)
		}
		return nil, nil
	}
	var data []byte
	err := r.be.Load(ctx, backends.Handle{Type: backends.PackFile, Name: pr.ID.String()}, int(size), 0, func(rd io.Reader) error {
		data = make([]byte, size)
		n, err := io.ReadFull(rd, data)
		data = data[:n]
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.log.Warn("repair index: cannot read damaged pack", "pack", pr.ID.Str(), "error", err)
		for _, g := range groups {
			pr.Known += len(g.entries)
		}
		return nil, nil
	}
	var out []index.Pack
	var buf []byte
	for _, g := range groups {
		pr.Known += len(g.entries)
		if g.ref.Size != uint64(size) {
			continue // the old index describes another pack of this name
		}
		a, kerr := r.PackKey(g.ref)
		if errors.Is(kerr, ErrWriteOnly) {
			pr.Unverified = true
			pr.Kept += len(g.entries)
			out = append(out, index.Pack{ID: pr.ID, Size: g.ref.Size, Kind: g.ref.Kind, WrappedKey: g.ref.WrappedKey, Blobs: g.entries})
			continue
		}
		if kerr != nil {
			continue
		}
		var keep []pack.Entry
		for _, e := range g.entries {
			end := uint64(e.Offset) + uint64(e.Length)
			if end > uint64(len(data)) || int64(e.Length) > int64(MaxStoredSize(e.Type)) || int64(e.RawLength) > int64(MaxRawSize(e.Type)) {
				continue
			}
			stored := append([]byte(nil), data[e.Offset:end]...) // OpenBlob decrypts in place
			plain, err := r.OpenBlob(a, e.Type, e.ID, stored, e.RawLength, buf)
			if err != nil {
				continue
			}
			buf = plain
			keep = append(keep, e)
		}
		if len(keep) > 0 {
			slices.SortFunc(keep, func(a, b pack.Entry) int { return int(a.Offset) - int(b.Offset) })
			pr.Kept += len(keep)
			out = append(out, index.Pack{ID: pr.ID, Size: g.ref.Size, Kind: g.ref.Kind, WrappedKey: g.ref.WrappedKey, Blobs: keep})
		}
	}
	if pr.Kept > 0 {
		r.log.Info("repair index: kept verified blobs of a pack with a damaged header", "pack", pr.ID.Str(), "kept", pr.Kept, "known", pr.Known)
	}
	return out, nil
}
