// Package mount serves a repository's snapshots as a read-only FUSE file
// system, so that ordinary tools (ls, cp, diff, a file manager) can browse
// and pick files:
//
//	ids/<snapshot ID>/...          every snapshot by its full ID
//	snapshots/<time>/...           by time (UTC, 2006-01-02T15:04:05Z); latest -> the newest
//	hosts/<host>/<time>/...        by host, then time
//	tags/<tag>/<time>/...          by tag, then time
//
// Two snapshots of one second are told apart by a suffix of their short
// ID. The snapshot list is read again when a top directory is listed or
// looked up more than a few seconds after the last reading, so a snapshot
// taken while the repository is mounted appears within seconds (with the
// index files that name its data).
//
// A read decrypts only the blobs it needs; decrypted blobs are kept in a
// cache bounded by bytes. Trees are loaded on first use and kept while the
// kernel holds their directory's inode.
package mount

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
)

// Options tune a mount.
type Options struct {
	// CacheBytes bounds the decrypted blobs kept for reads (default 64 MiB).
	CacheBytes int
	// Refresh is how old the snapshot list may get before a top directory
	// reads it again (default 5 s).
	Refresh time.Duration
	// AllowOther lets other users than the one who mounted read the files
	// (FUSE's allow_other; needs user_allow_other in /etc/fuse.conf).
	AllowOther bool
	Logger     *slog.Logger
	// Now returns the time; nil means time.Now.
	Now func() time.Time
}

// Mount serves r at dir until ctx ends, then unmounts. The caller holds a
// (shared) lock on r and has loaded its index.
func Mount(ctx context.Context, r *repo.Repository, dir string, o Options) error {
	if o.CacheBytes <= 0 {
		o.CacheBytes = 64 << 20
	}
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	fsys := &fileSystem{r: r, opts: o, cache: newBlobCache(o.CacheBytes), byID: map[id.ID]*snapshot.Snapshot{}}
	if err := fsys.refresh(ctx, true); err != nil {
		return err
	}
	ttl := time.Second
	server, err := fs.Mount(dir, &topDir{fsys: fsys, kind: kindRoot}, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:     "hoard",
			Name:       "hoard",
			AllowOther: o.AllowOther,
			Options:    []string{"ro", "default_permissions"},
		},
		EntryTimeout: &ttl,
		AttrTimeout:  &ttl,
	})
	if err != nil {
		return fmt.Errorf("mount %s: %w", dir, err)
	}
	done := make(chan struct{})
	go func() {
		server.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil // unmounted from outside (fusermount3 -u)
	case <-ctx.Done():
	}
	// Unmount; a busy mount point (a shell inside it) is retried for a
	// while, then left to a lazy unmount.
	for try := 0; ; try++ {
		err := server.Unmount()
		if err == nil {
			break
		}
		if try == 20 {
			o.Logger.Warn("mount point busy; unmounting lazily", "dir", dir, "error", err)
			exec.Command("fusermount3", "-u", "-z", dir).Run()
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	<-done
	return nil
}

// fileSystem is the state every node shares.
type fileSystem struct {
	r     *repo.Repository
	opts  Options
	cache *blobCache

	// mu guards the snapshot list and the repository's index: a refresh
	// loads new index files while reads look blobs up.
	mu       sync.RWMutex
	byID     map[id.ID]*snapshot.Snapshot
	sorted   []*snapshot.Snapshot // by time
	names    map[id.ID]string     // time-based directory name
	loadedAt time.Time
}

// refresh reads the snapshot list again if it is older than the refresh
// interval (or force), and the index files of new snapshots.
func (f *fileSystem) refresh(ctx context.Context, force bool) error {
	f.mu.RLock()
	fresh := !force && f.opts.Now().Sub(f.loadedAt) < f.opts.Refresh
	f.mu.RUnlock()
	if fresh {
		return nil
	}
	names, err := f.r.List(ctx, backends.SnapshotFile)
	if err != nil {
		return err
	}
	var added []*snapshot.Snapshot
	seen := map[id.ID]bool{}
	for _, n := range names {
		seen[n] = true
		f.mu.RLock()
		_, ok := f.byID[n]
		f.mu.RUnlock()
		if ok {
			continue
		}
		sn, err := snapshot.Load(ctx, f.r, n)
		if err != nil {
			f.opts.Logger.Warn("snapshot file unreadable; not shown", "file", "snapshots/"+n.String(), "error", err)
			continue
		}
		added = append(added, sn)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(added) > 0 {
		probs, err := f.r.LoadIndex(ctx)
		if err != nil {
			return err
		}
		for _, p := range probs {
			f.opts.Logger.Warn("index file unreadable", "file", "index/"+p.Name.String(), "error", p.Err)
		}
	}
	for _, sn := range added {
		f.byID[sn.ID] = sn
	}
	for n := range f.byID {
		if !seen[n] {
			delete(f.byID, n) // forgotten meanwhile
		}
	}
	f.sorted = f.sorted[:0]
	for _, sn := range f.byID {
		f.sorted = append(f.sorted, sn)
	}
	sort.Slice(f.sorted, func(i, j int) bool {
		if !f.sorted[i].Time.Equal(f.sorted[j].Time) {
			return f.sorted[i].Time.Before(f.sorted[j].Time)
		}
		return f.sorted[i].ID.Compare(f.sorted[j].ID) < 0
	})
	f.names = map[id.ID]string{}
	count := map[string]int{}
	for _, sn := range f.sorted {
		count[timeName(sn)]++
	}
	for _, sn := range f.sorted {
		name := timeName(sn)
		if count[name] > 1 {
			name += "-" + sn.ID.Str()
		}
		f.names[sn.ID] = name
	}
	f.loadedAt = f.opts.Now()
	return nil
}

func timeName(sn *snapshot.Snapshot) string {
	return sn.Time.UTC().Format("2006-01-02T15:04:05Z")
}

// list returns the snapshots that pass keep, in time order.
func (f *fileSystem) list(keep func(*snapshot.Snapshot) bool) []*snapshot.Snapshot {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []*snapshot.Snapshot
	for _, sn := range f.sorted {
		if keep == nil || keep(sn) {
			out = append(out, sn)
		}
	}
	return out
}

func (f *fileSystem) nameOf(sn *snapshot.Snapshot) string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.names[sn.ID]
}

// errno turns an error into what a file system call returns: EIO for
// damage (after logging it), EINTR for a cancelled call.
func (f *fileSystem) errno(what string, err error) syscall.Errno {
	if errors.Is(err, context.Canceled) {
		return syscall.EINTR
	}
	f.opts.Logger.Warn("mount: "+what, "error", err)
	return syscall.EIO
}

// safeName reports whether a tree entry's name can stand in a directory:
// a hostile tree may name entries "..", "a/b" or "".
func safeName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// cleanTag makes a tag usable as a directory name.
func cleanTag(t string) string {
	t = strings.ReplaceAll(t, "/", "_")
	if t == "" || t == "." || t == ".." {
		return "_" + t
	}
	return path.Clean(t)
}
