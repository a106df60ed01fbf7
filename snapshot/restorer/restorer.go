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
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
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
	// Progress, when not nil, counts the bytes restored as they are
	// written, for a progress display.
	Progress *atomic.Uint64
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
	// Special counts the fifos and device nodes created.
	Special uint64
	// NotRestored counts special files not recreated: sockets (they belong
	// to a running process) and fifos or devices that could not be made
	// (a device needs root). Each is a warning.
	NotRestored uint64
}

type restorer struct {
	r    *repo.Repository
	o    Options
	root *os.Root

	mu       sync.Mutex
	failures []FileFailure
	dirs     map[string]*os.Root // open directories by relative path; "" is the target
	dirFiles map[string]*os.File // the same directories as files, for *at calls
	dirList  []dirMeta
	files    []*fileJob
	stats    Stats
	root0    bool // running as root: restore owners too

	// What a new file gets without being told, so that files needing
	// nothing more are created with their mode and not chowned (two
	// system calls of the seven a small file took).
	euid, egid int
	umask      fs.FileMode
	umaskKnown bool
	setgidDirs map[string]bool // directories whose files take the directory's group

	// Hard links: the first file of each link group restored, and the
	// other members, linked to it once the files are written.
	linkFirst map[linkKey]*fileJob
	links     []pendingLink
}

// linkKey names a link group: the device and inode a file had.
type linkKey struct{ dev, ino uint64 }

// pendingLink is a member of a link group after the first.
type pendingLink struct {
	dir   string
	node  snapshot.Node
	first *fileJob
}

type dirMeta struct {
	path string
	node snapshot.Node
}

// fileJob is one file being restored. It is created on its first blob and
// finished (metadata set, or removed on failure) when its last blob is done.
type fileJob struct {
	dir, name string // parent directory (relative) and name
	node      snapshot.Node
	remaining atomic.Int64

	mu      sync.Mutex
	f       outFile
	created bool
	modeSet bool // created with its final mode
	setgid  bool // its directory is setgid: the file took the directory's group
	sparse  bool // a blob of zeroes was skipped: the size must be set at the end
	err     error
	settled bool // finished: complete with metadata, or removed
}

func (j *fileJob) rel() string {
	if j.dir == "" {
		return j.name
	}
	return j.dir + "/" + j.name
}

// outFile is a file being written: an *os.File, or on Linux a bare
// descriptor (rawFile) that also sets its times.
type outFile interface {
	WriteAt(b []byte, off int64) (int, error)
	Truncate(size int64) error
	Chown(uid, gid int) error
	Chmod(mode fs.FileMode) error
	Close() error
}

// blobRef is one use of a blob: it goes into file at offset.
type blobRef struct {
	file   *fileJob
	offset int64
	id     id.ID
	loc    repo.Location
}

// Restore writes the snapshot's tree to target, which is created if needed.
// It walks the trees first, creating directories and symlinks and listing
// the files; then it reads each pack once, in parallel, and writes every
// blob to the files that need it (after restic's pack-wise restorer).
func Restore(ctx context.Context, r *repo.Repository, sn *snapshot.Snapshot, target string, o Options) (Stats, error) {
	if o.Workers <= 0 {
		o.Workers = r.Connections()
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
	rs := &restorer{r: r, o: o, root: root, dirs: map[string]*os.Root{"": root}, dirFiles: map[string]*os.File{}, root0: os.Geteuid() == 0,
		linkFirst: map[linkKey]*fileJob{}, euid: os.Geteuid(), egid: os.Getegid(), setgidDirs: map[string]bool{}}
	defer rs.closeDirs()
	rs.umask, rs.umaskKnown = processUmask()
	if hasDefaultACL(target) {
		// New files take their mode from the directory's default ACL,
		// not from the umask: each one gets its mode set at the end.
		rs.umaskKnown = false
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode()&fs.ModeSetgid != 0 {
		rs.setgidDirs[""] = true
	}

	if err := rs.walk(ctx, sn.Tree, "", false); err != nil {
		rs.abort()
		return rs.stats, err
	}
	if err := rs.restoreFiles(ctx); err != nil {
		rs.abort()
		return rs.stats, err
	}
	if err := rs.restoreLinks(ctx); err != nil {
		return rs.stats, err
	}
	// Directories last, deepest first, so their times survive the writes.
	for i := len(rs.dirList) - 1; i >= 0; i-- {
		d := rs.dirList[i]
		rs.setMetaByName(parentOf(d.path), path.Base(d.path), d.node)
	}
	if len(rs.failures) > 0 {
		return rs.stats, &Errors{Failures: rs.failures}
	}
	return rs.stats, nil
}

// dirFile returns directory rel open as a file, for the *at calls of
// openNewAt and chtimesAt, or nil where those are not available.
func (rs *restorer) dirFile(rel string) *os.File {
	if !haveAtCalls {
		return nil
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if f, ok := rs.dirFiles[rel]; ok {
		return f
	}
	d, err := rs.dirLocked(rel)
	if err != nil {
		return nil
	}
	f, err := d.Open(".")
	if err != nil {
		return nil
	}
	rs.dirFiles[rel] = f
	return f
}

func (rs *restorer) closeDirs() {
	for _, f := range rs.dirFiles {
		f.Close()
	}
	for k, d := range rs.dirs {
		if k != "" {
			d.Close()
		}
	}
	rs.root.Close()
}

// abort removes every file that was started and not finished, so that a
// stopped restore leaves no file with missing or wrong bytes.
func (rs *restorer) abort() {
	for _, j := range rs.files {
		j.mu.Lock()
		if j.created && !j.settled {
			if j.f != nil {
				j.f.Close()
				j.f = nil
			}
			if d, err := rs.dir(j.dir); err == nil {
				_ = d.Remove(j.name)
			}
			j.settled = true
		}
		j.mu.Unlock()
	}
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

// dir returns the open directory rel, creating it (and its parents) as needed.
func (rs *restorer) dir(rel string) (*os.Root, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.dirLocked(rel)
}

func (rs *restorer) dirLocked(rel string) (*os.Root, error) {
	if d, ok := rs.dirs[rel]; ok {
		return d, nil
	}
	parent, err := rs.dirLocked(parentOf(rel))
	if err != nil {
		return nil, err
	}
	name := path.Base(rel)
	if err := parent.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	fi, err := parent.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s exists and is not a directory", rel)
	}
	rs.setgidDirs[rel] = fi.Mode()&fs.ModeSetgid != 0
	d, err := parent.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	rs.dirs[rel] = d
	return d, nil
}

func parentOf(rel string) string {
	d := path.Dir(rel)
	if d == "." {
		return ""
	}
	return d
}

func (rs *restorer) walk(ctx context.Context, tid id.ID, rel string, parentIncluded bool) error {
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
				if _, err := rs.dir(childRel); err != nil {
					if e := rs.fail("/"+childRel, err); e != nil {
						return e
					}
					continue
				}
				rs.dirList = append(rs.dirList, dirMeta{path: childRel, node: n})
				rs.stats.Dirs++
			}
			if err := rs.walk(ctx, *n.Subtree, childRel, self); err != nil {
				return err
			}
		case snapshot.TypeFile:
			if !self {
				continue
			}
			if _, err := rs.dir(rel); err != nil {
				if e := rs.fail("/"+childRel, err); e != nil {
					return e
				}
				continue
			}
			if n.Links > 1 && n.Inode != 0 {
				// A hard link: the first file of its group is written,
				// the others are linked to it (docs/FORMAT.md section 8).
				k := linkKey{n.DeviceID, n.Inode}
				if first := rs.linkFirst[k]; first != nil && sameContent(first.node, n) {
					rs.links = append(rs.links, pendingLink{dir: rel, node: n, first: first})
					continue
				}
				j := &fileJob{dir: rel, name: n.Name, node: n, setgid: rs.setgidDirs[rel]}
				rs.linkFirst[k] = j
				rs.files = append(rs.files, j)
				continue
			}
			rs.files = append(rs.files, &fileJob{dir: rel, name: n.Name, node: n, setgid: rs.setgidDirs[rel]})
		case snapshot.TypeSymlink:
			if !self {
				continue
			}
			if err := rs.symlink(rel, n); err != nil {
				if e := rs.fail("/"+childRel, err); e != nil {
					return e
				}
			}
		case snapshot.TypeFifo, snapshot.TypeDev, snapshot.TypeCharDev:
			if !self {
				continue
			}
			if err := rs.special(rel, n); err != nil {
				// As tar does: a device needs root; the restore goes on.
				rs.o.Logger.Warn("cannot create special file", "path", "/"+childRel, "type", n.Type, "error", err)
				rs.notRestored()
			}
		default:
			// Sockets belong to a running process; they are not recreated.
			rs.o.Logger.Warn("not restoring socket (sockets belong to a running process)", "path", "/"+childRel)
			rs.notRestored()
		}
	}
	return nil
}

// removeExisting deletes a non-directory name in d so it can be created
// anew without following whatever was there.
func removeExisting(d *os.Root, name string) error {
	fi, err := d.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s exists and is a directory", name)
	}
	return d.Remove(name)
}

func (rs *restorer) symlink(dir string, n snapshot.Node) error {
	d, err := rs.dir(dir)
	if err != nil {
		return err
	}
	if err := removeExisting(d, n.Name); err != nil {
		return err
	}
	if err := d.Symlink(n.LinkTarget, n.Name); err != nil {
		return err
	}
	if rs.root0 {
		_ = d.Lchown(n.Name, int(n.UID), int(n.GID))
	}
	_ = lutimes(d, n.Name, n.ModTime)
	rs.stats.Symlinks++
	return nil
}

// notRestored counts a special file that was not recreated.
func (rs *restorer) notRestored() {
	rs.mu.Lock()
	rs.stats.NotRestored++
	rs.mu.Unlock()
}

// special creates a fifo or a device node, and sets its metadata.
func (rs *restorer) special(dir string, n snapshot.Node) error {
	d, err := rs.dir(dir)
	if err != nil {
		return err
	}
	if err := removeExisting(d, n.Name); err != nil {
		return err
	}
	if err := mknod(d, n); err != nil {
		return err
	}
	if rs.root0 {
		_ = d.Lchown(n.Name, int(n.UID), int(n.GID))
	}
	_ = lutimes(d, n.Name, n.ModTime)
	rs.mu.Lock()
	rs.stats.Special++
	rs.mu.Unlock()
	return nil
}

// sameContent reports whether two nodes of one link group describe the
// same file: a damaged or hostile tree may claim a group for different
// files, which are then restored separately.
func sameContent(a, b snapshot.Node) bool {
	if a.Size != b.Size || len(a.Content) != len(b.Content) {
		return false
	}
	for i := range a.Content {
		if a.Content[i] != b.Content[i] {
			return false
		}
	}
	return true
}

// restoreLinks links the other members of each link group to the first,
// once that is written. A member whose first file failed fails too.
func (rs *restorer) restoreLinks(ctx context.Context) error {
	for _, l := range rs.links {
		if err := ctx.Err(); err != nil {
			return err
		}
		rel := l.node.Name
		if l.dir != "" {
			rel = l.dir + "/" + l.node.Name
		}
		l.first.mu.Lock()
		ok := l.first.settled && l.first.err == nil
		l.first.mu.Unlock()
		err := fmt.Errorf("its hard-link target /%s was not restored", l.first.rel())
		if ok {
			err = rs.link(l.first.rel(), l.dir, l.node.Name)
		}
		if err != nil {
			if e := rs.fail("/"+rel, err); e != nil {
				return e
			}
			continue
		}
		rs.stats.Files++
	}
	return nil
}

func (rs *restorer) link(oldRel, dir, name string) error {
	d, err := rs.dir(dir)
	if err != nil {
		return err
	}
	if err := removeExisting(d, name); err != nil {
		return err
	}
	newRel := name
	if dir != "" {
		newRel = dir + "/" + name
	}
	return rs.root.Link(oldRel, newRel)
}

// restoreFiles plans which blob goes where, then reads the packs.
func (rs *restorer) restoreFiles(ctx context.Context) error {
	byPack := map[id.ID][]blobRef{}
	var order []id.ID
	for _, j := range rs.files {
		j.remaining.Store(int64(len(j.node.Content)) + 1)
		var off int64
		for _, c := range j.node.Content {
			locs := rs.r.Locations(repo.DataBlob, c) // packs found missing last
			if len(locs) == 0 {
				j.setErr(&repo.BlobError{Type: repo.DataBlob, ID: c, Err: repo.ErrBlobNotFound})
				if err := rs.done(j); err != nil {
					return err
				}
				continue
			}
			loc := locs[0]
			if _, ok := byPack[loc.Pack.ID]; !ok {
				order = append(order, loc.Pack.ID)
			}
			byPack[loc.Pack.ID] = append(byPack[loc.Pack.ID], blobRef{file: j, offset: off, id: c, loc: loc})
			off += int64(loc.RawLength)
		}
		if uint64(off) != j.node.Size {
			j.setErr(fmt.Errorf("%w: content adds up to %d bytes, snapshot says %d", repo.ErrInvalidData, off, j.node.Size))
		}
		// The planning reference: empty files finish here.
		if err := rs.done(j); err != nil {
			return err
		}
	}
	// One read per pack (ranged to the part needed), packs in the order
	// the files first need them; each distinct blob is decoded once and
	// written to every place that holds it while its pack is in memory.
	var reads []repo.BlobRead
	var uses [][]blobRef
	for _, pid := range order {
		refs := byPack[pid]
		delete(byPack, pid)
		sort.SliceStable(refs, func(a, b int) bool { return refs[a].loc.Offset < refs[b].loc.Offset })
		for k := 0; k < len(refs); {
			e := k + 1
			for e < len(refs) && refs[e].loc.Offset == refs[k].loc.Offset {
				e++
			}
			reads = append(reads, repo.BlobRead{ID: refs[k].id, Loc: refs[k].loc})
			uses = append(uses, refs[k:e:e])
			k = e
		}
	}
	err := rs.r.StreamBlobs(ctx, reads, repo.StreamOptions{Loads: rs.o.Workers, Unordered: true}, func(i int, plain []byte, err error) error {
		refs := uses[i]
		uses[i] = nil
		for _, ref := range refs {
			if e := rs.write(ref, plain, err); e != nil {
				return e
			}
		}
		return nil
	})
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (j *fileJob) setErr(err error) {
	j.mu.Lock()
	if j.err == nil {
		j.err = err
	}
	j.mu.Unlock()
}

// write puts one blob into its file (or records why it could not) and
// finishes the file after its last blob.
func (rs *restorer) write(ref blobRef, data []byte, blobErr error) error {
	j := ref.file
	if blobErr != nil {
		j.setErr(blobErr)
		return rs.done(j)
	}
	j.mu.Lock()
	if j.err == nil && !j.created {
		j.err = rs.create(j)
	}
	f, ferr := j.f, j.err
	j.mu.Unlock()
	if rs.o.Progress != nil {
		rs.o.Progress.Add(uint64(len(data)))
	}
	if ferr == nil {
		if allZero(data) {
			// Sparse-friendly: blobs of zeroes are never written.
			j.mu.Lock()
			j.sparse = true
			j.mu.Unlock()
		} else if _, err := f.WriteAt(data, ref.offset); err != nil {
			j.setErr(err)
		}
	}
	return rs.done(j)
}

// create makes the file, empty. j.mu is held.
func (rs *restorer) create(j *fileJob) error {
	d, err := rs.dir(j.dir)
	if err != nil {
		return err
	}
	j.created = true
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL | syscall.O_NOFOLLOW
	open := func() (outFile, error) { return d.OpenFile(j.name, flags, 0o600) }
	if df := rs.dirFile(j.dir); df != nil && snapshot.ValidName(j.name) {
		// Created with its final mode when the umask leaves that whole
		// (no chmod at the end); the file's directory is still private
		// (0700) until the restore ends, as with 0600.
		perm := fs.FileMode(0o600)
		if m := j.node.Mode; m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) == 0 && rs.umaskKnown && m.Perm()&rs.umask == 0 {
			perm, j.modeSet = m.Perm(), true
		}
		open = func() (outFile, error) { return openNewAt(df, j.name, perm) }
	}
	f, err := open()
	if errors.Is(err, fs.ErrExist) {
		// Something is in the way: remove it (never follow it) and retry.
		if err := removeExisting(d, j.name); err != nil {
			return err
		}
		f, err = open()
	}
	if err != nil {
		return err
	}
	j.f = f
	return nil
}

// done counts one reference of j as done; the last one finishes the file:
// metadata when every blob was written, removal otherwise.
func (rs *restorer) done(j *fileJob) error {
	if j.remaining.Add(-1) != 0 {
		return nil
	}
	j.mu.Lock()
	if j.err == nil && !j.created {
		j.err = rs.create(j) // an empty file
	}
	if j.err == nil && j.sparse {
		// Skipped zeroes at the end still count towards the size.
		j.err = j.f.Truncate(int64(j.node.Size))
	}
	timesSet := false
	if j.err == nil {
		if rs.root0 && (int(j.node.UID) != rs.euid || int(j.node.GID) != rs.egid || j.setgid) {
			_ = j.f.Chown(int(j.node.UID), int(j.node.GID))
		}
		if !j.modeSet {
			_ = j.f.Chmod(j.node.Mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))
		}
		if ts, ok := j.f.(interface{ SetTimes(time.Time) error }); ok {
			timesSet = ts.SetTimes(j.node.ModTime) == nil
		}
	}
	if j.f != nil {
		if err := j.f.Close(); err != nil && j.err == nil {
			j.err = err
		}
		j.f = nil
	}
	err := j.err
	if err != nil && j.created {
		if d, derr := rs.dir(j.dir); derr == nil {
			_ = d.Remove(j.name)
		}
	}
	j.settled = true
	j.mu.Unlock()
	if err != nil {
		return rs.fail("/"+j.rel(), err)
	}
	if timesSet {
		// Set through the descriptor before it was closed.
	} else if df := rs.dirFile(j.dir); df != nil && snapshot.ValidName(j.name) {
		_ = chtimesAt(df, j.name, j.node.ModTime)
	} else if d, derr := rs.dir(j.dir); derr == nil {
		_ = d.Chtimes(j.name, j.node.ModTime, j.node.ModTime)
	}
	rs.mu.Lock()
	rs.stats.Files++
	rs.stats.Bytes += j.node.Size
	rs.mu.Unlock()
	return nil
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

// setMetaByName sets owner, mode and times of name in directory dir.
func (rs *restorer) setMetaByName(dir, name string, n snapshot.Node) {
	d, err := rs.dir(dir)
	if err != nil {
		return
	}
	if rs.root0 {
		_ = d.Lchown(name, int(n.UID), int(n.GID))
	}
	_ = d.Chmod(name, n.Mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
	_ = d.Chtimes(name, n.ModTime, n.ModTime)
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

// Dump writes the content of the file node n to w. Its blobs are read
// through repo.StreamBlobs: neighbouring blobs of a pack in one ranged
// read, read ahead and decoded on every core, written in order. workers
// bounds the concurrent reads (0: the backend's connections).
func Dump(ctx context.Context, r *repo.Repository, n *snapshot.Node, w io.Writer, workers int) error {
	if n.Type != snapshot.TypeFile {
		return fmt.Errorf("dump: %s is a %s, not a file", n.Name, n.Type)
	}
	if !r.CanRead() {
		return repo.ErrWriteOnly
	}
	var written uint64
	// Located a window at a time, so that a huge file's locations do not
	// all sit in memory (the pipeline drains once per window).
	const window = 8192
	for start := 0; start < len(n.Content); start += window {
		reads, err := contentReads(r, n.Content[start:min(start+window, len(n.Content))])
		if err != nil {
			return err
		}
		err = r.StreamBlobs(ctx, reads, repo.StreamOptions{Loads: workers}, func(_ int, plain []byte, err error) error {
			if err != nil {
				return err
			}
			written += uint64(len(plain))
			_, err = w.Write(plain)
			return err
		})
		if err != nil {
			return err
		}
	}
	if written != n.Size {
		return fmt.Errorf("dump: %w: %d bytes, snapshot says %d", repo.ErrInvalidData, written, n.Size)
	}
	return nil
}

// contentReads locates each blob of a file's content.
func contentReads(r *repo.Repository, content []id.ID) ([]repo.BlobRead, error) {
	reads := make([]repo.BlobRead, len(content))
	for i, c := range content {
		locs := r.Locations(repo.DataBlob, c) // packs found missing last
		if len(locs) == 0 {
			return nil, &repo.BlobError{Type: repo.DataBlob, ID: c, Err: repo.ErrBlobNotFound}
		}
		reads[i] = repo.BlobRead{ID: c, Loc: locs[0]}
	}
	return reads, nil
}
