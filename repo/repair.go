package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/index"
	"github.com/hoard-backup/hoard/repo/pack"
)

// PackProblem is a pack whose header could not be read.
type PackProblem struct {
	ID  id.ID
	Err error
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
// present, and removes those. Packs whose header cannot be read are
// reported and left alone. The packs' content is not read: check
// --read-data verifies it. The caller holds an exclusive lock.
func (r *Repository) RebuildIndex(ctx context.Context) (RebuildStats, error) {
	var st RebuildStats
	old, err := r.List(ctx, backends.IndexFile)
	if err != nil {
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
	sort.Slice(packs, func(i, j int) bool { return packs[i].ID.Compare(packs[j].ID) < 0 })
	sort.Slice(st.Problems, func(i, j int) bool { return st.Problems[i].ID.Compare(st.Problems[j].ID) < 0 })
	st.Packs = len(packs)
	for _, p := range packs {
		st.Blobs += len(p.Blobs)
	}
	if len(packs) == 0 && len(old) == 0 {
		return st, nil
	}
	name, err := r.SaveUnpacked(ctx, backends.IndexFile, crypto.LabelIndex, index.Encode(&index.File{Supersedes: old, Packs: packs}))
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
