package mount

import (
	"container/list"
	"context"
	"fmt"
	iofs "io/fs"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
	"github.com/hoard-backup/hoard/snapshot"
)

type topKind int

const (
	kindRoot topKind = iota
	kindIDs
	kindSnapshots
	kindHosts
	kindHost // arg: the host
	kindTags
	kindTag // arg: the tag
)

// topDir is one of the directories above the snapshots' trees.
type topDir struct {
	fs.Inode
	fsys *fileSystem
	kind topKind
	arg  string
}

var (
	_ fs.NodeReaddirer = (*topDir)(nil)
	_ fs.NodeLookuper  = (*topDir)(nil)
	_ fs.NodeGetattrer = (*topDir)(nil)
)

// entry is a child of a top directory: another top directory, a
// snapshot's root, or the latest link.
type entry struct {
	name string
	top  *topDir
	sn   *snapshot.Snapshot
	link string
}

func (d *topDir) entries(ctx context.Context) ([]entry, syscall.Errno) {
	f := d.fsys
	if err := f.refresh(ctx, false); err != nil {
		return nil, f.errno("read the snapshot list", err)
	}
	var out []entry
	bySn := func(keep func(*snapshot.Snapshot) bool, named func(*snapshot.Snapshot) string) {
		for _, sn := range f.list(keep) {
			out = append(out, entry{name: named(sn), sn: sn})
		}
	}
	switch d.kind {
	case kindRoot:
		for _, n := range []struct {
			name string
			kind topKind
		}{{"hosts", kindHosts}, {"ids", kindIDs}, {"snapshots", kindSnapshots}, {"tags", kindTags}} {
			out = append(out, entry{name: n.name, top: &topDir{fsys: f, kind: n.kind}})
		}
	case kindIDs:
		bySn(nil, func(sn *snapshot.Snapshot) string { return sn.ID.String() })
	case kindSnapshots:
		bySn(nil, f.nameOf)
		if len(out) > 0 {
			out = append(out, entry{name: "latest", link: out[len(out)-1].name})
		}
	case kindHosts, kindTags:
		seen := map[string]bool{}
		for _, sn := range f.list(nil) {
			names := []string{sn.Host}
			kind := kindHost
			if d.kind == kindTags {
				names, kind = sn.Tags, kindTag
			}
			for _, n := range names {
				dn := cleanTag(n)
				if !seen[dn] {
					seen[dn] = true
					out = append(out, entry{name: dn, top: &topDir{fsys: f, kind: kind, arg: n}})
				}
			}
		}
	case kindHost:
		bySn(func(sn *snapshot.Snapshot) bool { return sn.Host == d.arg }, f.nameOf)
	case kindTag:
		bySn(func(sn *snapshot.Snapshot) bool {
			for _, t := range sn.Tags {
				if t == d.arg {
					return true
				}
			}
			return false
		}, f.nameOf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, 0
}

func (d *topDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	es, errno := d.entries(ctx)
	if errno != 0 {
		return nil, errno
	}
	list := make([]fuse.DirEntry, len(es))
	for i, e := range es {
		mode := uint32(syscall.S_IFDIR)
		if e.link != "" {
			mode = syscall.S_IFLNK
		}
		list[i] = fuse.DirEntry{Name: e.name, Mode: mode}
	}
	return fs.NewListDirStream(list), 0
}

func (d *topDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	es, errno := d.entries(ctx)
	if errno != 0 {
		return nil, errno
	}
	for _, e := range es {
		if e.name != name {
			continue
		}
		switch {
		case e.top != nil:
			e.top.fill(&out.Attr)
			return d.NewInode(ctx, e.top, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
		case e.link != "":
			l := &linkNode{target: e.link}
			l.fill(&out.Attr)
			return d.NewInode(ctx, l, fs.StableAttr{Mode: syscall.S_IFLNK}), 0
		default:
			t := &treeDir{fsys: d.fsys, tid: e.sn.Tree, mtime: e.sn.Time}
			t.fill(&out.Attr)
			return d.NewInode(ctx, t, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
		}
	}
	return nil, syscall.ENOENT
}

func (d *topDir) fill(a *fuse.Attr) {
	a.Mode = syscall.S_IFDIR | 0o555
	a.Nlink = 2
}

func (d *topDir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fill(&out.Attr)
	return 0
}

// treeDir is a directory of a snapshot: its tree, loaded on first use.
type treeDir struct {
	fs.Inode
	fsys  *fileSystem
	tid   id.ID
	node  *snapshot.Node // nil for a snapshot's root
	mtime time.Time      // a snapshot root's: the snapshot's time

	once sync.Once
	tree *snapshot.Tree
	err  error
}

var (
	_ fs.NodeReaddirer = (*treeDir)(nil)
	_ fs.NodeLookuper  = (*treeDir)(nil)
	_ fs.NodeGetattrer = (*treeDir)(nil)
)

func (d *treeDir) load(ctx context.Context) (*snapshot.Tree, syscall.Errno) {
	d.once.Do(func() {
		d.fsys.mu.RLock()
		defer d.fsys.mu.RUnlock()
		d.tree, d.err = snapshot.LoadTree(context.WithoutCancel(ctx), d.fsys.r, d.tid)
	})
	if d.err != nil {
		return nil, d.fsys.errno(fmt.Sprintf("load tree %s", d.tid.Str()), d.err)
	}
	return d.tree, 0
}

func (d *treeDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	t, errno := d.load(ctx)
	if errno != 0 {
		return nil, errno
	}
	var list []fuse.DirEntry
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if safeName(n.Name) {
			list = append(list, fuse.DirEntry{Name: n.Name, Mode: typeBits(n)})
		}
	}
	return fs.NewListDirStream(list), 0
}

func (d *treeDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t, errno := d.load(ctx)
	if errno != 0 {
		return nil, errno
	}
	n := t.Find(name)
	if n == nil || !safeName(n.Name) {
		return nil, syscall.ENOENT
	}
	var child fs.InodeEmbedder
	switch {
	case n.Type == snapshot.TypeDir && n.Subtree != nil:
		child = &treeDir{fsys: d.fsys, tid: *n.Subtree, node: n}
	case n.Type == snapshot.TypeFile:
		child = &fileNode{fsys: d.fsys, node: n}
	case n.Type == snapshot.TypeSymlink:
		child = &linkNode{target: n.LinkTarget, node: n}
	default:
		child = &specialNode{node: n}
	}
	fillNode(&out.Attr, n)
	return d.NewInode(ctx, child, fs.StableAttr{Mode: typeBits(n)}), 0
}

func (d *treeDir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fill(&out.Attr)
	return 0
}

func (d *treeDir) fill(a *fuse.Attr) {
	if d.node != nil {
		fillNode(a, d.node)
		return
	}
	a.Mode = syscall.S_IFDIR | 0o555
	a.Nlink = 2
	a.Mtime = uint64(d.mtime.Unix())
}

// typeBits is the S_IF* bits of a node's type.
func typeBits(n *snapshot.Node) uint32 {
	switch n.Type {
	case snapshot.TypeDir:
		return syscall.S_IFDIR
	case snapshot.TypeSymlink:
		return syscall.S_IFLNK
	case snapshot.TypeFile:
		return syscall.S_IFREG
	}
	switch {
	case n.Mode&iofs.ModeNamedPipe != 0:
		return syscall.S_IFIFO
	case n.Mode&iofs.ModeSocket != 0:
		return syscall.S_IFSOCK
	case n.Mode&iofs.ModeCharDevice != 0:
		return syscall.S_IFCHR
	case n.Mode&iofs.ModeDevice != 0:
		return syscall.S_IFBLK
	}
	return syscall.S_IFREG
}

// fillNode sets the attributes a tree records: read-only permissions,
// owner, size and times.
func fillNode(a *fuse.Attr, n *snapshot.Node) {
	a.Mode = typeBits(n) | uint32(n.Mode.Perm())&0o555
	a.Uid, a.Gid = n.UID, n.GID
	a.Size = n.Size
	if n.Type == snapshot.TypeSymlink {
		a.Size = uint64(len(n.LinkTarget))
	}
	a.Blocks = (a.Size + 511) / 512
	a.Nlink = 1
	if n.Type == snapshot.TypeDir {
		a.Nlink = 2
	}
	a.Mtime = uint64(n.ModTime.Unix())
	a.Mtimensec = uint32(n.ModTime.Nanosecond())
	a.Ctime = uint64(n.ChangeTime.Unix())
	a.Ctimensec = uint32(n.ChangeTime.Nanosecond())
	a.Atime, a.Atimensec = a.Mtime, a.Mtimensec
	a.Rdev = uint32(n.Rdev)
}

// linkNode is a symbolic link.
type linkNode struct {
	fs.Inode
	target string
	node   *snapshot.Node // nil for "latest"
}

var (
	_ fs.NodeReadlinker = (*linkNode)(nil)
	_ fs.NodeGetattrer  = (*linkNode)(nil)
)

func (l *linkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) { return []byte(l.target), 0 }

func (l *linkNode) fill(a *fuse.Attr) {
	if l.node != nil {
		fillNode(a, l.node)
		return
	}
	a.Mode = syscall.S_IFLNK | 0o777
	a.Size = uint64(len(l.target))
	a.Nlink = 1
}

func (l *linkNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	l.fill(&out.Attr)
	return 0
}

// specialNode is a FIFO, socket or device: shown, never opened.
type specialNode struct {
	fs.Inode
	node *snapshot.Node
}

func (s *specialNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fillNode(&out.Attr, s.node)
	return 0
}

// fileNode is a regular file: reads load the blobs they cover.
type fileNode struct {
	fs.Inode
	fsys *fileSystem
	node *snapshot.Node

	once    sync.Once
	offsets []uint64 // offsets[i] is where blob i starts; one more: the end
	err     error
}

var (
	_ fs.NodeOpener    = (*fileNode)(nil)
	_ fs.NodeReader    = (*fileNode)(nil)
	_ fs.NodeGetattrer = (*fileNode)(nil)
)

func (f *fileNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fillNode(&out.Attr, f.node)
	return 0
}

func (f *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	f.once.Do(func() {
		f.fsys.mu.RLock()
		defer f.fsys.mu.RUnlock()
		offs := make([]uint64, 0, len(f.node.Content)+1)
		var pos uint64
		for _, b := range f.node.Content {
			locs := f.fsys.r.Index().Lookup(pack.DataBlob, b)
			if len(locs) == 0 {
				f.err = &repo.BlobError{Type: pack.DataBlob, ID: b, Err: repo.ErrBlobNotFound}
				return
			}
			offs = append(offs, pos)
			pos += uint64(locs[0].RawLength)
		}
		f.offsets = append(offs, pos)
	})
	if f.err != nil {
		return nil, 0, f.fsys.errno("open a file", f.err)
	}
	// Snapshots never change: the kernel may keep what it read.
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (f *fileNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if f.offsets == nil {
		return nil, syscall.EIO
	}
	end := f.offsets[len(f.offsets)-1]
	if off < 0 || uint64(off) >= end {
		return fuse.ReadResultData(nil), 0
	}
	n := 0
	pos := uint64(off)
	// The blob holding pos: the last start at or before it.
	i := sort.Search(len(f.offsets)-1, func(i int) bool { return f.offsets[i+1] > pos })
	for n < len(dest) && i < len(f.node.Content) {
		b, err := f.fsys.blob(ctx, f.node.Content[i])
		if err != nil {
			return nil, f.fsys.errno("read a file", err)
		}
		if uint64(len(b)) != f.offsets[i+1]-f.offsets[i] {
			return nil, f.fsys.errno("read a file", fmt.Errorf("%w: blob %s has %d bytes, the index says %d",
				repo.ErrInvalidData, f.node.Content[i].Str(), len(b), f.offsets[i+1]-f.offsets[i]))
		}
		n += copy(dest[n:], b[pos-f.offsets[i]:])
		pos = f.offsets[i+1]
		i++
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// blob returns a data blob's plaintext, from the cache or the repository.
func (f *fileSystem) blob(ctx context.Context, b id.ID) ([]byte, error) {
	if p, ok := f.cache.get(b); ok {
		return p, nil
	}
	f.mu.RLock()
	p, err := f.r.LoadBlob(ctx, pack.DataBlob, b, nil)
	f.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	f.cache.put(b, p)
	return p, nil
}

// blobCache keeps decrypted blobs, least recently used out first, within
// a bound on their bytes.
type blobCache struct {
	mu    sync.Mutex
	max   int
	size  int
	order *list.List // of *cached, most recent at the front
	byID  map[id.ID]*list.Element
}

type cached struct {
	id   id.ID
	data []byte
}

func newBlobCache(max int) *blobCache {
	return &blobCache{max: max, order: list.New(), byID: map[id.ID]*list.Element{}}
}

func (c *blobCache) get(b id.ID) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[b]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*cached).data, true
	}
	return nil, false
}

func (c *blobCache) put(b id.ID, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byID[b]; ok || len(data) > c.max {
		return
	}
	c.byID[b] = c.order.PushFront(&cached{b, data})
	c.size += len(data)
	for c.size > c.max {
		e := c.order.Back()
		v := e.Value.(*cached)
		c.order.Remove(e)
		delete(c.byID, v.id)
		c.size -= len(v.data)
	}
}
