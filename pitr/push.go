// Package pitr is PostgreSQL point-in-time recovery on a hoard repository:
// WAL push and fetch for archive_command and restore_command, the archived
// WAL's timelines and gaps, which WAL the kept base backups need, and the
// restore of a base backup into a data directory with the recovery
// settings that replay WAL to a target (docs/pitr.md, docs/FORMAT.md
// section 12a).
package pitr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/pack"
	"github.com/hoard-backup/hoard/repo/wal"
)

// PieceSize is where WAL files are cut into blobs: content-defined
// chunking finds almost nothing to share in WAL, so fixed cuts cost
// nothing and still store identical pieces (zero-filled tails) once.
const PieceSize = 1 << 20

// ErrConflict means the WAL file is archived already with other content.
var ErrConflict = errors.New("pitr: archived already with different content")

// PushResult says what Push did.
type PushResult struct {
	Entry   *wal.Entry
	Already bool  // archived before with the same content: nothing written
	Stored  int64 // bytes written to packs (compressed, sealed)
}

// Push archives the WAL file at path for cluster. It succeeds only once
// the file's blobs, their index and the catalog entry are stored; a file
// archived before with the same content succeeds at once, with other
// content it fails with ErrConflict. The caller holds a shared lock. The
// repository's index need not be loaded.
func Push(ctx context.Context, r *repo.Repository, cluster, path, host string, now func() time.Time) (PushResult, error) {
	file := filepath.Base(path)
	if _, err := wal.HandleName(cluster, file); err != nil {
		return PushResult{}, err
	}
	if v := r.Config().Version; v < 2 {
		// A version 1 hoard does not know wal/: its prune would delete the
		// archived WAL's blobs. The version check keeps it out of a
		// version 2 repository (FORMAT.md 12a).
		return PushResult{}, fmt.Errorf("%w: the repository is at format version %d; WAL is archived only in version 2 repositories (run hoard migrate first)", repo.ErrVersion, v)
	}
	f, err := os.Open(path)
	if err != nil {
		return PushResult{}, fmt.Errorf("pitr: push: %w", err)
	}
	defer f.Close()
	// First pass: the IDs, to compare with an entry pushed before.
	e := &wal.Entry{Cluster: cluster, File: file, Host: host}
	buf := make([]byte, PieceSize)
	if err := pieces(f, buf, func(p []byte) error {
		e.Content = append(e.Content, r.BlobID(p))
		e.Size += int64(len(p))
		return nil
	}); err != nil {
		return PushResult{}, fmt.Errorf("pitr: push %s: %w", path, err)
	}
	if e.Size > wal.MaxFileSize {
		return PushResult{}, fmt.Errorf("pitr: push %s: %d bytes is larger than any WAL file", path, e.Size)
	}
	old, err := wal.Load(ctx, r, cluster, file)
	switch {
	case err == nil && old.Same(e):
		return PushResult{Entry: old, Already: true}, nil
	case err == nil:
		return PushResult{}, fmt.Errorf("%w: %s of cluster %s (archived %s by %s, %d bytes; this one %d bytes): "+
			"another cluster pushes under this name, or a restored cluster reused a timeline",
			ErrConflict, file, cluster, old.Time.Format(time.RFC3339), old.Host, old.Size, e.Size)
	case !errors.Is(err, wal.ErrNotArchived):
		return PushResult{}, err
	}
	// Second pass: store the pieces, checking they are the bytes hashed.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return PushResult{}, fmt.Errorf("pitr: push %s: %w", path, err)
	}
	var res PushResult
	i := 0
	err = pieces(f, buf, func(p []byte) error {
		if i >= len(e.Content) || r.BlobID(p) != e.Content[i] {
			return fmt.Errorf("pitr: push %s: the file changed while it was read", path)
		}
		sr, err := r.SaveBlobWithID(ctx, pack.DataBlob, e.Content[i], p)
		res.Stored += int64(sr.Stored)
		i++
		return err
	})
	if err == nil && i != len(e.Content) {
		err = fmt.Errorf("pitr: push %s: the file changed while it was read", path)
	}
	if err != nil {
		return PushResult{}, err
	}
	if err := r.Flush(ctx); err != nil {
		return PushResult{}, err
	}
	e.Time = now().UTC()
	if err := wal.Save(ctx, r, e); err != nil {
		return PushResult{}, err
	}
	res.Entry = e
	return res, nil
}

// pieces calls fn with each PieceSize piece of r (the last one shorter).
func pieces(r io.Reader, buf []byte, fn func([]byte) error) error {
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if ferr := fn(buf[:n]); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Fetch writes the archived WAL file of cluster to dst. A file that is not
// archived is wal.ErrNotArchived (wrapped), found without loading the
// index. dst appears whole or not at all (a temporary file is renamed).
func Fetch(ctx context.Context, r *repo.Repository, cluster, file, dst string) error {
	e, err := wal.Load(ctx, r, cluster, file)
	if err != nil {
		return err
	}
	if !r.CanRead() {
		return repo.ErrWriteOnly
	}
	if r.Index().Len() == 0 {
		probs, err := r.LoadIndex(ctx)
		if err != nil {
			return err
		}
		_ = probs // a blob in an unreadable index file is reported as missing below
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".hoard-fetch-*")
	if err != nil {
		return fmt.Errorf("pitr: fetch: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var buf []byte
	var n int64
	for _, bid := range e.Content {
		buf, err = r.LoadBlob(ctx, pack.DataBlob, bid, buf)
		if err != nil {
			return fmt.Errorf("pitr: fetch %s: piece %s: %w", file, bid.Str(), err)
		}
		if _, err := tmp.Write(buf); err != nil {
			return fmt.Errorf("pitr: fetch: %w", err)
		}
		n += int64(len(buf))
	}
	if n != e.Size {
		return fmt.Errorf("pitr: fetch %s: %w: %d bytes, the catalog says %d", file, repo.ErrInvalidData, n, e.Size)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pitr: fetch: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("pitr: fetch: %w", err)
	}
	ok = true
	return nil
}
