// Package restorer writes the files of a snapshot to disk, or one file's
// content to a writer. All writes go through an os.Root on the target, so a
// hostile repository (names like "..", symlinks followed by files through
// them) cannot make it write outside the target. A file is written only from
// blobs that verified; a file whose blobs cannot be read is removed, never
// left with wrong bytes.
package restorer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
	"github.com/hoard-backup/hoard/snapshot"
)

// Options configure a restore.
type Options struct {
	// Includes restricts the restore to paths (in the snapshot, starting
	// with "/") matching one of these patterns, and everything below them.
	Includes []string
	// IgnoreErrors restores every file that can be restored and reports the
	// others at the end instead of stopping at the first damaged file.
	IgnoreErrors bool
	// Workers is the number of concurrent blob loads.
	Workers int
	// Logger receives a warning per file that failed.
	Logger *slog.Logger
}

// FileFailure is one file that could not be restored.
type FileFailure struct {
	Path string
	Err  error
}

// Errors lists files that could not be restored.
type Errors struct {
	Failures []FileFailure
}

func (e *Errors) Error() string {
	if len(e.Failures) == 1 {
		return fmt.Sprintf("restore: %s: %v", e.Failures[0].Path, e.Failures[0].Err)
	}
	return fmt.Sprintf("restore: %d files could not be restored (first: %s: %v)", len(e.Failures), e.Failures[0].Path, e.Failures[0].Err)
}

// Unwrap returns the failures' causes.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		out[i] = f.Err
	}
	return out
}

// Stats count what a restore did.
type Stats struct {
	Files, Dirs, Symlinks, Bytes uint64
}

type restorer struct {
	r    *repo.Repository
	o    Options
	root *os.Root

	mu       sync.Mutex
	failures []FileFailure
	dirs     []dirMeta
	made     map[string]bool
	stats    Stats
}

type dirMeta struct {
	path string
	node snapshot.Node
}

type fileJob struct {
	path      string
	node      snapshot.Node
	f         *os.File
	remaining atomic.Int64
	failed    atomic.Bool
	errOnce   sync.Once
	err       error
}

type blobJob struct {
	file   *fileJob
	id     id.ID
	offset int64
}

// Restore writes the snapshot's tree to target, which is created if needed.
func Restore(ctx context.Context, r *repo.Repository, sn *snapshot.Snapshot, target string, o Options) (Stats, error) {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !r.CanRead() {
		return Stats{}, repo.ErrWriteOnly
	}
	if err := os.MkdirAll(target, 0o700); err != nil {
		return Stats{}, fmt.Errorf("restore: %w", err)
	}
	root, err := os.OpenRoot(target)
	if err != nil {
		return Stats{}, fmt.Errorf("restore: %w", err)
	}
	defer root.Close()
	rs := &restorer{r: r, o: o, root: root, made: map[string]bool{".": true}}

	g, gctx := errgroup.WithContext(ctx)
	blobs := make(chan blobJob, o.Workers*2)
	var walkErr error
	g.Go(func() error {
		defer close(blobs)
		walkErr = rs.walk(gctx, sn.Tree, "", false, blobs)
		return walkErr
	})
	for i := 0; i < o.Workers; i++ {
		g.Go(func() error {
			var buf []byte
			for j := range blobs {
				var err error
				buf, err = rs.writeBlob(gctx, j, buf)
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	err = g.Wait()
	if err != nil {
		return rs.stats, err
	}
	// Directories last, deepest first, so their times survive the writes.
	for i := len(rs.dirs) - 1; i >= 0; i-- {
		d := rs.dirs[i]
		rs.setMeta(d.path, d.node)
	}
	if len(rs.failures) > 0 {
		return rs.stats, &Errors{Failures: rs.failures}
	}
	return rs.stats, nil
}

func (rs *restorer) included(p string, isDir bool) (self, below bool) {
	if len(rs.o.Includes) == 0 {
		return true, true
	}
	for _, pat := range rs.o.Includes {
		if snapshot.Match(pat, p) {
			return true, true
		}
	}
	return false, isDir
}

// fail records a failed file, or returns the error when not ignoring errors.
func (rs *restorer) fail(p string, err error) error {
	rs.o.Logger.Warn("cannot restore", "path", p, "error", err)
	if !rs.o.IgnoreErrors {
		return fmt.Errorf("restore %s: %w", p, err)
	}
	rs.mu.Lock()
	rs.failures = append(rs.failures, FileFailure{Path: p, Err: err})
	rs.mu.Unlock()
	return nil
}

// ensureDir creates the directories of rel (a slash path relative to the target).
func (rs *restorer) ensureDir(rel string) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.ensureDirLocked(rel)
}

func (rs *restorer) ensureDirLocked(rel string) error {
	if rel == "" || rs.made[rel] {
		return nil
	}
	if err := rs.ensureDirLocked(parentOf(rel)); err != nil {
		return err
	}
	err := rs.root.Mkdir(rel, 0o700)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := rs.root.Lstat(rel)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", rel)
	}
	rs.made[rel] = true
	return nil
}

func parentOf(rel string) string {
	d := path.Dir(rel)
	if d == "." {
		return ""
	}
	return d
}

func (rs *restorer) walk(ctx context.Context, tid id.ID, rel string, parentIncluded bool, blobs chan<- blobJob) error {
	t, err := snapshot.LoadTree(ctx, rs.r, tid)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return rs.fail("/"+rel, err)
	}
	for _, n := range t.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		childRel := n.Name
		if rel != "" {
			childRel = rel + "/" + n.Name
		}
		self, below := true, true
		if !parentIncluded {
			self, below = rs.included("/"+childRel, n.Type == snapshot.TypeDir)
		}
		if !self && !below {
			continue
		}
		switch n.Type {
		case snapshot.TypeDir:
			if self {
				if err := rs.ensureDir(childRel); err != nil {
					if e := rs.fail("/"+childRel, err); e != nil {
						return e
					}
					continue
				}
				rs.mu.Lock()
				rs.dirs = append(rs.dirs, dirMeta{path: childRel, node: n})
				rs.stats.Dirs++
				rs.mu.Unlock()
			}
			if err := rs.walk(ctx, *n.Subtree, childRel, self, blobs); err != nil {
				return err
			}
		case snapshot.TypeFile:
			if !self {
				continue
			}
			if err := rs.startFile(ctx, childRel, n, blobs); err != nil {
				return err
			}
		case snapshot.TypeSymlink:
			if !self {
				continue
			}
			if err := rs.symlink(childRel, n); err != nil {
				if e := rs.fail("/"+childRel, err); e != nil {
					return e
				}
			}
		default:
			// Devices, fifos and sockets are not recreated.
			rs.o.Logger.Info("not restoring special file", "path", "/"+childRel, "type", n.Type)
		}
	}
	return nil
}

// removeExisting deletes a non-directory at rel so it can be created anew
// without following whatever was there.
func (rs *restorer) removeExisting(rel string) error {
	fi, err := rs.root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s exists and is a directory", rel)
	}
	return rs.root.Remove(rel)
}

func (rs *restorer) symlink(rel string, n snapshot.Node) error {
	if err := rs.ensureDir(parentOf(rel)); err != nil {
		return err
	}
	if err := rs.removeExisting(rel); err != nil {
		return err
	}
	if err := rs.root.Symlink(n.LinkTarget, rel); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		_ = rs.root.Lchown(rel, int(n.UID), int(n.GID))
	}
	rs.mu.Lock()
	rs.stats.Symlinks++
	rs.mu.Unlock()
	return nil
}

func (rs *restorer) startFile(ctx context.Context, rel string, n snapshot.Node, blobs chan<- blobJob) error {
	err := rs.ensureDir(parentOf(rel))
	if err == nil {
		err = rs.removeExisting(rel)
	}
	var f *os.File
	if err == nil {
		f, err = rs.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	}
	if err == nil && n.Size > 0 {
		// Sparse-friendly: blobs of zeroes are never written.
		err = f.Truncate(int64(n.Size))
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		return rs.fail("/"+rel, err)
	}
	j := &fileJob{path: rel, node: n, f: f}
	j.remaining.Store(int64(len(n.Content)) + 1)
	var off int64
	for _, c := range n.Content {
		locs := rs.r.Index().Lookup(pack.DataBlob, c)
		select {
		case <-ctx.Done():
			f.Close()
			return ctx.Err()
		case blobs <- blobJob{file: j, id: c, offset: off}:
		}
		if len(locs) > 0 {
			off += int64(locs[0].RawLength)
		}
	}
	return rs.doneBlob(j, nil)
}

func (rs *restorer) writeBlob(ctx context.Context, j blobJob, buf []byte) ([]byte, error) {
	if j.file.failed.Load() {
		return buf, rs.doneBlob(j.file, nil)
	}
	data, err := rs.r.LoadBlob(ctx, pack.DataBlob, j.id, buf)
	if err == nil {
		buf = data
		if !allZero(data) {
			_, err = j.file.f.WriteAt(data, j.offset)
		}
	}
	if err != nil && ctx.Err() != nil {
		return buf, ctx.Err()
	}
	return buf, rs.doneBlob(j.file, err)
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// doneBlob counts one blob of j as done; the last one closes the file and
// either sets its metadata or removes it.
func (rs *restorer) doneBlob(j *fileJob, err error) error {
	if err != nil {
		j.errOnce.Do(func() { j.err = err })
		j.failed.Store(true)
	}
	if j.remaining.Add(-1) != 0 {
		return nil
	}
	if j.err == nil {
		if fi, serr := j.f.Stat(); serr == nil && uint64(fi.Size()) != j.node.Size {
			j.err = fmt.Errorf("%w: restored %d bytes, snapshot says %d", repo.ErrInvalidData, fi.Size(), j.node.Size)
		}
	}
	cerr := j.f.Close()
	if j.err == nil && cerr != nil {
		j.err = cerr
	}
	if j.err != nil {
		_ = rs.root.Remove(j.path)
		return rs.fail("/"+j.path, j.err)
	}
	rs.setMeta(j.path, j.node)
	rs.mu.Lock()
	rs.stats.Files++
	rs.stats.Bytes += j.node.Size
	rs.mu.Unlock()
	return nil
}

func (rs *restorer) setMeta(rel string, n snapshot.Node) {
	if os.Geteuid() == 0 {
		_ = rs.root.Lchown(rel, int(n.UID), int(n.GID))
	}
	_ = rs.root.Chmod(rel, n.Mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
	_ = rs.root.Chtimes(rel, n.ModTime, n.ModTime)
}

// FindNode returns the node at p (a slash path inside the snapshot).
func FindNode(ctx context.Context, r *repo.Repository, sn *snapshot.Snapshot, p string) (*snapshot.Node, error) {
	tid := sn.Tree
	parts := splitPath(p)
	if len(parts) == 0 {
		return &snapshot.Node{Name: "/", Type: snapshot.TypeDir, Subtree: &tid}, nil
	}
	for i, name := range parts {
		t, err := snapshot.LoadTree(ctx, r, tid)
		if err != nil {
			return nil, err
		}
		n := t.Find(name)
		if n == nil {
			return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		}
		if i == len(parts)-1 {
			return n, nil
		}
		if n.Type != snapshot.TypeDir {
			return nil, fmt.Errorf("%s: %s is not a directory", p, name)
		}
		tid = *n.Subtree
	}
	return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
}

func splitPath(p string) []string {
	var out []string
	for _, s := range splitSlash(p) {
		if s != "" && s != "." {
			out = append(out, s)
		}
	}
	return out
}

func splitSlash(p string) []string {
	var out []string
	start := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}

// Dump writes the content of the file node n to w, loading up to workers
// blobs ahead in parallel while writing in order.
func Dump(ctx context.Context, r *repo.Repository, n *snapshot.Node, w io.Writer, workers int) error {
	if n.Type != snapshot.TypeFile {
		return fmt.Errorf("dump: %s is a %s, not a file", n.Name, n.Type)
	}
	if !r.CanRead() {
		return repo.ErrWriteOnly
	}
	if workers <= 0 {
		workers = 4
	}
	type result struct {
		data []byte
		err  error
	}
	g, gctx := errgroup.WithContext(ctx)
	slots := make(chan chan result, workers)
	g.Go(func() error {
		defer close(slots)
		for _, c := range n.Content {
			ch := make(chan result, 1)
			select {
			case <-gctx.Done():
				return gctx.Err()
			case slots <- ch:
			}
			go func() {
				data, err := r.LoadBlob(gctx, pack.DataBlob, c, nil)
				ch <- result{data, err}
			}()
		}
		return nil
	})
	g.Go(func() error {
		var written uint64
		for ch := range slots {
			var res result
			select {
			case <-gctx.Done():
				return gctx.Err()
			case res = <-ch:
			}
			if res.err != nil {
				return res.err
			}
			if _, err := w.Write(res.data); err != nil {
				return err
			}
			written += uint64(len(res.data))
		}
		if written != n.Size {
			return fmt.Errorf("dump: %w: %d bytes, snapshot says %d", repo.ErrInvalidData, written, n.Size)
		}
		return nil
	})
	return g.Wait()
}
