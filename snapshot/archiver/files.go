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

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/snapshot"
)

// ValidatePatterns reports a malformed exclude pattern, an empty one, or
// one that matches "/" and so excludes everything (what
// --exclude "$UNSET_VARIABLE/" becomes).
func ValidatePatterns(patterns []string) error {
	for _, p := range patterns {
		if !snapshot.ValidPattern(p) {
			return fmt.Errorf("archiver: bad exclude pattern %q: %w", p, filepath.ErrBadPattern)
		}
		if strings.TrimSpace(p) == "" {
			return fmt.Errorf("archiver: empty exclude pattern %q (an unset variable?)", p)
		}
		if snapshot.Match(p, "/") {
			return fmt.Errorf("archiver: exclude pattern %q matches / and would exclude everything (an unset variable?)", p)
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
		if !idx.Has(repo.DataBlob, c) {
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
		if a.parentTrusted {
			n.Content = old.Content
			a.sum.filesUnmodified.Add(1)
			return doneFuture(n), nil
		}
		a.untrustedOnce.Do(func() {
			msg := fmt.Sprintf("parent %s was not written by this key; reading all files", a.o.Parent.ID.Str())
			if a.r.Writer() == "" {
				msg += " (this key file has no snapshot key: it predates them; hoard key passwd or key add writes one that has)"
			}
			a.o.Logger.Warn(msg, "writer", a.o.Parent.Writer, "trust", snapshot.Verify(a.r, a.o.Parent))
		})
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
	size, err := a.readFile(path, file, &n, f, old)
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

// readFile chunks the open file into f's jobs and returns the number of
// bytes read. If the file's size, mtime or ctime changed while it was read,
// or the bytes read do not match its size, it is read once more; if it
// changes again, what the second read saw is kept, with a warning, and
// counted as an error, so that the backup exits with "incomplete" rather
// than store a length the file may never have had without a word. n gets
// the metadata of the read that is kept: after a changed read, the times
// from before it, so that the next backup reads the file again.
func (a *Archiver) readFile(path string, file *os.File, n *snapshot.Node, f *future, old *snapshot.Node) (uint64, error) {
	for attempt := 0; ; attempt++ {
		before, err := file.Stat()
		if err != nil {
			return 0, err
		}
		var rd io.Reader = countReader{file, &a.sum.bytesIn}
		if a.wrapFile != nil {
			rd = a.wrapFile(path, rd)
		}
		f.jobs = f.jobs[:0] // jobs of an earlier read still release f
		size, err := a.chunkReader(rd, f, a.previousOf(old))
		if err != nil {
			return size, err
		}
		after, err := file.Stat()
		if err != nil {
			return size, err
		}
		why := changedWhileRead(before, after, size)
		if why == "" {
			if attempt > 0 {
				if fresh, err := a.nodeFromInfo(n.Name, path, before); err == nil {
					*n = fresh
				}
			}
			return size, nil
		}
		if attempt == 1 {
			a.sum.errors.Add(1)
			a.o.Logger.Warn("file changed while being read, twice; stored as the second read saw it", "path", path, "change", why)
			return size, nil
		}
		a.o.Logger.Info("file changed while being read; reading it again", "path", path, "change", why)
		if _, err := file.Seek(0, io.SeekStart); err != nil {
			return size, err
		}
	}
}

// changedWhileRead says how a file changed between the stats before and
// after reading size bytes of it, or "" if it did not.
func changedWhileRead(before, after fs.FileInfo, size uint64) string {
	switch {
	case after.Size() != before.Size():
		return fmt.Sprintf("size %d became %d", before.Size(), after.Size())
	case uint64(before.Size()) != size:
		return fmt.Sprintf("size %d, but %d bytes read", before.Size(), size)
	case !after.ModTime().Equal(before.ModTime()):
		return "modification time changed"
	}
	b, okb := before.Sys().(*syscall.Stat_t)
	c, okc := after.Sys().(*syscall.Stat_t)
	if okb && okc && (b.Ctim != c.Ctim || b.Ino != c.Ino) {
		return "status change time changed"
	}
	return ""
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
