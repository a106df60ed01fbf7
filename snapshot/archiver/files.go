package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hoard-backup/hoard/repo/pack"
	"github.com/hoard-backup/hoard/snapshot"
)

// ValidatePatterns reports a malformed exclude pattern.
func ValidatePatterns(patterns []string) error {
	for _, p := range patterns {
		if !snapshot.ValidPattern(p) {
			return fmt.Errorf("archiver: bad exclude pattern %q: %w", p, filepath.ErrBadPattern)
		}
	}
	return nil
}

// excluded reports whether path matches the global excludes or the
// item's own.
func (a *Archiver) excluded(path string, own []string) bool {
	for _, p := range a.o.Excludes {
		if snapshot.Match(p, path) {
			return true
		}
	}
	for _, p := range own {
		if snapshot.Match(p, path) {
			return true
		}
	}
	return false
}

type ownerCache struct {
	mu     sync.Mutex
	users  map[uint32]string
	groups map[uint32]string
}

func (c *ownerCache) names(uid, gid uint32) (string, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.users[uid]
	if !ok {
		if usr, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
			u = usr.Username
		}
		c.users[uid] = u
	}
	g, ok := c.groups[gid]
	if !ok {
		if grp, err := user.LookupGroupId(strconv.Itoa(int(gid))); err == nil {
			g = grp.Name
		}
		c.groups[gid] = g
	}
	return u, g
}

// nodeFromInfo fills the metadata of a node from lstat.
func (a *Archiver) nodeFromInfo(name, path string, fi fs.FileInfo) (snapshot.Node, error) {
	n := snapshot.Node{Name: name, Mode: fi.Mode(), ModTime: fi.ModTime().UTC()}
	switch m := fi.Mode(); {
	case m.IsRegular():
		n.Type = snapshot.TypeFile
		n.Size = uint64(fi.Size())
	case m.IsDir():
		n.Type = snapshot.TypeDir
	case m&fs.ModeSymlink != 0:
		n.Type = snapshot.TypeSymlink
		t, err := os.Readlink(path)
		if err != nil {
			return n, err
		}
		n.LinkTarget = t
	case m&fs.ModeNamedPipe != 0:
		n.Type = snapshot.TypeFifo
	case m&fs.ModeSocket != 0:
		n.Type = snapshot.TypeSocket
	case m&fs.ModeCharDevice != 0:
		n.Type = snapshot.TypeCharDev
	case m&fs.ModeDevice != 0:
		n.Type = snapshot.TypeDev
	default:
		return n, fmt.Errorf("unsupported file type %v", m)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		n.UID, n.GID = st.Uid, st.Gid
		n.User, n.Group = a.owners.names(st.Uid, st.Gid)
		n.ChangeTime = time.Unix(st.Ctim.Sec, st.Ctim.Nsec).UTC()
		n.Inode = st.Ino
		n.DeviceID = uint64(st.Dev)
		if n.Type == snapshot.TypeDev || n.Type == snapshot.TypeCharDev {
			n.Rdev = uint64(st.Rdev)
		}
		if n.Type != snapshot.TypeDir && st.Nlink > 1 {
			n.Links = uint64(st.Nlink)
		}
	}
	return n, nil
}

// unchanged reports whether the parent's node describes the same file and
// all its content is still stored.
func (a *Archiver) unchanged(n, old *snapshot.Node) bool {
	if old == nil || old.Type != snapshot.TypeFile || n.Size != old.Size || !n.ModTime.Equal(old.ModTime) ||
		!n.ChangeTime.Equal(old.ChangeTime) || n.Inode != old.Inode {
		return false
	}
	idx := a.r.Index()
	for _, c := range old.Content {
		if !idx.Has(pack.DataBlob, c) {
			return false
		}
	}
	return true
}

func (a *Archiver) warn(path string, err error) {
	a.sum.errors.Add(1)
	a.o.Logger.Warn("cannot back up", "path", path, "error", err)
}

// BackupPaths backs up files and directories. The root tree holds one node
// per path, named by the path's last element; two paths with the same last
// element are an error. Files that cannot be read are reported through the
// logger, counted in Summary.Errors and left out.
func (a *Archiver) BackupPaths(ctx context.Context, paths []string, meta Meta) (*snapshot.Snapshot, error) {
	if err := ValidatePatterns(a.o.Excludes); err != nil {
		return nil, err
	}
	abs := make([]string, len(paths))
	seen := map[string]string{}
	for i, p := range paths {
		ap, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		if _, err := os.Lstat(ap); err != nil {
			return nil, fmt.Errorf("archiver: %w", err)
		}
		name := rootName(ap)
		if other, ok := seen[name]; ok {
			return nil, fmt.Errorf("archiver: %s and %s would have the same name %q in the snapshot", other, ap, name)
		}
		seen[name] = ap
		abs[i] = ap
	}
	sort.Strings(abs)
	meta.Paths = abs
	items := make([]Item, len(abs))
	for i, ap := range abs {
		items[i] = Item{Name: rootName(ap), Path: ap}
	}
	return a.Backup(ctx, items, meta)
}

// rootName is the name of an absolute path in the snapshot's root tree.
func rootName(abs string) string {
	if abs == "/" {
		return "root"
	}
	return filepath.Base(abs)
}

// saveNode starts saving path and returns its future. Only errors that
// must stop the backup are returned; unreadable files are skipped.
func (a *Archiver) saveNode(path, name string, old *snapshot.Node, excl []string) (*future, error) {
	if err := a.ctx.Err(); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		a.warn(path, err)
		return &future{done: closedChan(), skip: true}, nil
	}
	n, err := a.nodeFromInfo(name, path, fi)
	if err != nil {
		a.warn(path, err)
		return &future{done: closedChan(), skip: true}, nil
	}
	switch n.Type {
	case snapshot.TypeDir:
		return a.saveDir(path, n, old, excl)
	case snapshot.TypeFile:
		return a.saveFile(path, n, old)
	default:
		return doneFuture(n), nil
	}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func (a *Archiver) saveFile(path string, n snapshot.Node, old *snapshot.Node) (*future, error) {
	a.sum.total.Add(n.Size)
	if a.unchanged(&n, old) {
		n.Content = old.Content
		a.sum.filesUnmodified.Add(1)
		return doneFuture(n), nil
	}
	f := newFuture()
	f.pending.Store(1)
	file, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NOATIME, 0)
	if errors.Is(err, syscall.EPERM) {
		// O_NOATIME is allowed only to the file's owner.
		file, err = os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	}
	if err != nil {
		a.warn(path, err)
		f.skip = true
		f.release()
		return f, nil
	}
	size, err := a.chunkReader(countReader{file, &a.sum.bytesIn}, f, a.previousOf(old))
	file.Close()
	if err != nil {
		if a.ctx.Err() != nil {
			return nil, a.ctx.Err()
		}
		a.warn(path, err)
		f.skip = true
		f.release()
		return f, nil
	}
	// The size read is the truth; the file may have changed while it was read.
	n.Size = size
	f.node = n
	if old != nil {
		a.sum.filesChanged.Add(1)
	} else {
		a.sum.filesNew.Add(1)
	}
	f.release()
	return f, nil
}

func (a *Archiver) saveDir(path string, n snapshot.Node, old *snapshot.Node, excl []string) (*future, error) {
	a.sum.dirs.Add(1)
	var oldTree *snapshot.Tree
	if old != nil && old.Type == snapshot.TypeDir && old.Subtree != nil {
		t, err := snapshot.LoadTree(a.ctx, a.r, *old.Subtree)
		if err == nil {
			oldTree = t
		}
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		a.warn(path, err)
		// Keep the directory itself, empty, so its metadata survives.
	}
	children := make([]*future, 0, len(entries))
	marker := a.marker(path)
	for _, e := range entries {
		name := e.Name()
		if marker != "" && name != marker {
			continue
		}
		child := filepath.Join(path, name)
		if a.excluded(child, excl) {
			continue
		}
		var oldChild *snapshot.Node
		if oldTree != nil {
			oldChild = oldTree.Find(name)
		}
		f, err := a.saveNode(child, name, oldChild, excl)
		if err != nil {
			return nil, err
		}
		children = append(children, f)
	}
	f := newFuture()
	a.saveTree(f, n, children)
	return f, nil
}

// CacheDirTag is the ExcludeIfPresent entry of --exclude-caches: the
// Cache Directory Tagging Specification's file and the header it starts
// with (https://bford.info/cachedir/).
const CacheDirTag = "CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55"

// marker returns the name of the ExcludeIfPresent marker dir holds, or "".
func (a *Archiver) marker(dir string) string {
	for _, m := range a.o.ExcludeIfPresent {
		name, header, _ := strings.Cut(m, ":")
		if name == "" {
			continue
		}
		if header == "" {
			if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
				return name
			}
			continue
		}
		if fi, err := os.Lstat(filepath.Join(dir, name)); err != nil || !fi.Mode().IsRegular() {
			continue // never open a fifo or follow a link to read a header
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		buf := make([]byte, len(header))
		n, _ := io.ReadFull(f, buf)
		f.Close()
		if string(buf[:n]) == header {
			return name
		}
	}
	return ""
}
