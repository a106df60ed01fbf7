package archiver

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hoard-backup/hoard/snapshot"
)

// Item is one thing a backup puts into the snapshot: a file or directory
// read from disk (Path), or a stream (Open).
type Item struct {
	// Name is where the item goes in the snapshot: a slash-separated path
	// relative to the root ("srv", "db/main.pgdump", "media/uploads/media").
	// Directories on the way are made for it.
	Name string
	// Path is a file or directory to read, with Excludes as its own
	// exclude patterns besides Options.Excludes.
	Path     string
	Excludes []string
	// Open starts a stream when the backup reaches the item, so that a
	// database dump runs only while it is read. The stream is read to its
	// end and closed; an error from Open, Read or Close (a dump tool that
	// failed) fails the backup and leaves no snapshot.
	Open func(ctx context.Context) (io.ReadCloser, error)
	// ChunkProfile names the chunk size profile ("dump" or "large"); empty
	// means Options.ChunkProfile, else the one the parent snapshot
	// recorded for the item, else the default (see chunkProfile).
	ChunkProfile string
	// DefaultChunkProfile is the profile of the item when it is new (the
	// parent snapshot does not have it) and nothing names one: "large" for
	// media trees. Empty means the repository's.
	DefaultChunkProfile string
}

// vdir is a directory of the snapshot made for items' names.
type vdir struct {
	names []string // sorted
	dirs  map[string]*vdir
	items map[string]*Item
}

func newVdir() *vdir { return &vdir{dirs: map[string]*vdir{}, items: map[string]*Item{}} }

// buildTree arranges items by their names.
func buildTree(items []Item) (*vdir, error) {
	root := newVdir()
	for i := range items {
		it := &items[i]
		if (it.Path == "") == (it.Open == nil) {
			return nil, fmt.Errorf("archiver: item %q needs exactly one of a path and a stream", it.Name)
		}
		parts := strings.Split(it.Name, "/")
		d := root
		for k, part := range parts {
			if !snapshot.ValidName(part) {
				return nil, fmt.Errorf("archiver: invalid name %q in the snapshot", it.Name)
			}
			if k == len(parts)-1 {
				if d.items[part] != nil || d.dirs[part] != nil {
					return nil, fmt.Errorf("archiver: two items would have the name %q in the snapshot", it.Name)
				}
				d.items[part] = it
				d.names = append(d.names, part)
				break
			}
			if d.items[part] != nil {
				return nil, fmt.Errorf("archiver: %q is an item and a directory of another", strings.Join(parts[:k+1], "/"))
			}
			sub := d.dirs[part]
			if sub == nil {
				sub = newVdir()
				d.dirs[part] = sub
				d.names = append(d.names, part)
			}
			d = sub
		}
	}
	return root, nil
}

// Backup backs up items into one snapshot, whose root tree holds each item
// under its Name. Items are read one after another, in the order of their
// names. Files that cannot be read are reported through the logger,
// counted in Summary.Errors and left out; a stream that fails fails the
// backup. The snapshot is saved and returned.
func (a *Archiver) Backup(ctx context.Context, items []Item, meta Meta) (*snapshot.Snapshot, error) {
	if len(items) == 0 {
		return nil, fmt.Errorf("archiver: nothing to back up")
	}
	if err := ValidatePatterns(a.o.Excludes); err != nil {
		return nil, err
	}
	for _, it := range items {
		if err := ValidatePatterns(it.Excludes); err != nil {
			return nil, err
		}
		if it.Path != "" {
			if !filepath.IsAbs(it.Path) {
				return nil, fmt.Errorf("archiver: path %q is not absolute", it.Path)
			}
			if _, err := os.Lstat(it.Path); err != nil {
				return nil, fmt.Errorf("archiver: %w", err)
			}
		}
	}
	tree, err := buildTree(items)
	if err != nil {
		return nil, err
	}
	started := a.o.Now()
	a.start(ctx)

	var parentRoot *snapshot.Tree
	if a.o.Parent != nil {
		t, err := snapshot.LoadTree(ctx, a.r, a.o.Parent.Tree)
		if err != nil {
			a.o.Logger.Warn("parent snapshot unreadable; reading every file", "error", err)
		} else {
			parentRoot = t
		}
	}
	root := newFuture()
	a.g.Go(func() error {
		defer close(a.jobs)
		children, err := a.saveVdir(tree, "", parentRoot, started)
		if err != nil {
			return err
		}
		a.saveTree(root, snapshot.Node{Name: "/", Type: snapshot.TypeDir}, children)
		return nil
	})
	sn, err := a.finish(ctx, root, meta, started)
	if err != nil {
		return nil, err
	}
	if err := snapshot.Save(ctx, a.r, sn); err != nil {
		return nil, err
	}
	return sn, nil
}

// saveVdir starts saving the items of d (at prefix in the snapshot) and
// returns their futures, in name order. parent is the same directory in the
// parent snapshot, or nil.
func (a *Archiver) saveVdir(d *vdir, prefix string, parent *snapshot.Tree, started time.Time) ([]*future, error) {
	sort.Strings(d.names)
	out := make([]*future, 0, len(d.names))
	for _, name := range d.names {
		var old *snapshot.Node
		if parent != nil {
			old = parent.Find(name)
		}
		if sub := d.dirs[name]; sub != nil {
			var oldTree *snapshot.Tree
			if old != nil && old.Type == snapshot.TypeDir && old.Subtree != nil {
				if t, err := snapshot.LoadTree(a.ctx, a.r, *old.Subtree); err == nil {
					oldTree = t
				}
			}
			children, err := a.saveVdir(sub, prefix+name+"/", oldTree, started)
			if err != nil {
				return nil, err
			}
			a.sum.dirs.Add(1)
			f := newFuture()
			a.saveTree(f, snapshot.Node{Name: name, Type: snapshot.TypeDir, Mode: fs.ModeDir | 0o700,
				ModTime: started, ChangeTime: started}, children)
			out = append(out, f)
			continue
		}
		it := d.items[name]
		if err := a.useProfile(it, prefix+name, old != nil); err != nil {
			return nil, err
		}
		var (
			f   *future
			err error
		)
		if it.Open != nil {
			f, err = a.saveStream(it, name, old)
		} else {
			f, err = a.saveNode(it.Path, name, old, it.Excludes)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// saveStream opens, reads and closes a stream item; old is its node in
// the parent snapshot, if any.
func (a *Archiver) saveStream(it *Item, name string, old *snapshot.Node) (*future, error) {
	if err := a.ctx.Err(); err != nil {
		return nil, err
	}
	rc, err := it.Open(a.ctx)
	if err != nil {
		return nil, fmt.Errorf("archiver: %s: %w", it.Name, err)
	}
	f := newFuture()
	f.pending.Store(1)
	f.stream = true
	ra := newReadAhead(countReader{rc, &a.sum.bytesIn}, 2<<20, 3)
	size, err := a.chunkReader(ra, f, a.previousOf(old))
	if err != nil {
		rc.Close() // unblocks the read-ahead if it waits on the stream
		ra.stopAndWait()
		return nil, fmt.Errorf("archiver: read %s: %w", it.Name, err)
	}
	ra.stopAndWait()
	if err := rc.Close(); err != nil {
		return nil, fmt.Errorf("archiver: %s: %w", it.Name, err)
	}
	now := a.o.Now()
	f.node = snapshot.Node{Name: name, Type: snapshot.TypeFile, Mode: 0o600, ModTime: now, ChangeTime: now, Size: size}
	a.sum.total.Add(size)
	// Counted in wait, when the content is known: a dump equal to the
	// parent's is unmodified, not new.
	f.countStream, f.streamOld = true, old
	f.release()
	return f, nil
}
