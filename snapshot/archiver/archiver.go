// Package archiver is the backup pipeline: it reads paths or a stream,
// splits content into chunks, saves new blobs through a pool of workers that
// hash, compress and encrypt in parallel, builds trees bottom-up and finally
// writes the snapshot. Files unchanged since the parent snapshot (same type,
// size, mtime, ctime and inode, and all their blobs still indexed) are not
// read again.
package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hoard-backup/hoard/chunk"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
)

// Options configure a backup.
type Options struct {
	// Excludes are patterns (see Match) of paths not to back up.
	Excludes []string
	// ExcludeIfPresent names marker files: a directory that holds one is
	// kept with the marker alone, its other contents are not backed up.
	// An entry "NAME:HEADER" counts NAME only if it begins with HEADER.
	// CacheDirTag is the marker of cache directories (--exclude-caches).
	ExcludeIfPresent []string
	// Parent is the snapshot whose unchanged files need not be read again,
	// if the key in use wrote it (snapshot.Verify says repo.TrustThisKey):
	// anyone with writer secrets can write a snapshot, and one that points
	// unchanged-looking files at other content must not be taken on trust.
	// A parent of another writer only guides the chunking of files that
	// are read (their content is hashed).
	Parent *snapshot.Snapshot
	// Workers is the number of hashing, compression and encryption workers.
	Workers int
	// Logger receives warnings about files that could not be read.
	Logger *slog.Logger
	// Now returns the current time.
	Now func() time.Time
	// ChunkProfile is the chunk size profile of items that name none.
	ChunkProfile string
	// Bases, when set, keeps the full chunks of streams on this host, for
	// deltas a key that cannot read the repository could not make; New
	// makes it the repository's source of bases.
	Bases *BaseCache
	// Checkpoint, when set, is called at named points of the backup:
	// "data" after the first data blob is stored, "index" before the index
	// is written, "snapshot" before the snapshot is written. Crash tests use
	// it to stop a backup at a known point.
	Checkpoint func(point string)
}

// Meta is what the snapshot records besides the tree.
type Meta struct {
	Host     string
	Username string
	Tags     []string
	Paths    []string
	Source   snapshot.Source
	Program  string

	// Commit, when set, runs after every item is read and all data is
	// stored, before the index and the snapshot are written. It may
	// complete sn with what was learned while reading (the details of a
	// database dump); an error from it leaves no snapshot.
	Commit func(sn *snapshot.Snapshot) error
}

// Archiver runs one backup. Use it once.
type Archiver struct {
	r   *repo.Repository
	o   Options
	sum counters

	jobs chan *chunkJob
	bufs chan []byte
	g    *errgroup.Group
	ctx  context.Context

	owners   ownerCache
	chunkers map[chunk.Params]*chunk.Chunker // used by the one goroutine that reads
	params   chunk.Params                    // of the item being read
	expect   []expected                      // chunkReader's, kept between calls
	profiles map[string]string               // recorded in the snapshot

	// wrapFile, when set, wraps the reader of each file: package tests use
	// it to change a file while it is being read.
	wrapFile func(path string, rd io.Reader) io.Reader

	parentTrusted bool      // the key in use wrote the parent: unchanged files are reused
	untrustedOnce sync.Once // warns that unchanged files are read all the same
}

type counters struct {
	filesNew, filesChanged, filesUnmodified, dirs atomic.Uint64
	dataNew, treeNew, bytesRead, bytesAdded       atomic.Uint64
	bytesMatched                                  atomic.Uint64
	bytesIn                                       atomic.Uint64 // read from sources, for Progress
	bytesStored, total, errors                    atomic.Uint64
}

// Progress is what a running backup has done so far.
type Progress struct {
	Files       uint64 // files and streams saved, changed or not
	BytesRead   uint64 // read from files and streams (some not yet chunked)
	BytesAdded  uint64 // in new blobs, before compression
	BytesStored uint64 // in new blobs, as stored
	Errors      uint64 // files that could not be read
}

// Progress returns the counts so far. Safe to call while a backup runs.
func (a *Archiver) Progress() Progress {
	return Progress{Files: a.sum.filesNew.Load() + a.sum.filesChanged.Load() + a.sum.filesUnmodified.Load(),
		BytesRead: a.sum.bytesIn.Load(), BytesAdded: a.sum.bytesAdded.Load(),
		BytesStored: a.sum.bytesStored.Load(), Errors: a.sum.errors.Load()}
}

// countReader counts the bytes read through it into n.
type countReader struct {
	r io.Reader
	n *atomic.Uint64
}

func (c countReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(uint64(k))
	return k, err
}

// New returns an archiver writing into r.
func New(r *repo.Repository, o Options) *Archiver {
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Bases != nil {
		r.SetBaseSource(o.Bases)
	}
	a := &Archiver{r: r, o: o, owners: ownerCache{users: map[uint32]string{}, groups: map[uint32]string{}}}
	a.parentTrusted = o.Parent != nil && snapshot.Verify(r, o.Parent) == repo.TrustThisKey
	return a
}

// chunkJob is one chunk on its way to the repository.
type chunkJob struct {
	data []byte
	buf  []byte // returned to the pool
	res  id.ID
	// hashed: res was computed by the reader (see previous)
	hashed bool
	// base: the old chunk at this place, to store a delta against
	base id.ID
	f    *future
}

// future is a node whose content or subtree is still being saved.
type future struct {
	done    chan struct{}
	node    snapshot.Node
	jobs    []*chunkJob
	pending atomic.Int64
	skip    bool // could not be read; left out of its tree
	stream  bool // a stream: its full chunks go to Options.Bases
	once    sync.Once
	// A stream is counted as new, changed or unmodified once its content
	// is known (wait): against streamOld, its node in the parent.
	countStream bool
	streamOld   *snapshot.Node
}

func newFuture() *future { return &future{done: make(chan struct{})} }

func doneFuture(n snapshot.Node) *future {
	f := newFuture()
	f.node = n
	close(f.done)
	return f
}

func (f *future) release() {
	if f.pending.Add(-1) == 0 {
		f.once.Do(func() { close(f.done) })
	}
}

// start launches the workers.
func (a *Archiver) start(ctx context.Context) {
	a.g, a.ctx = errgroup.WithContext(ctx)
	a.jobs = make(chan *chunkJob, a.o.Workers)
	n := a.o.Workers + 2
	a.bufs = make(chan []byte, n)
	for i := 0; i < n; i++ {
		a.bufs <- nil
	}
	for i := 0; i < a.o.Workers; i++ {
		a.g.Go(a.worker)
	}
}

func (a *Archiver) worker() error {
	for {
		select {
		case <-a.ctx.Done():
			return a.ctx.Err()
		case j, ok := <-a.jobs:
			if !ok {
				return nil
			}
			n := len(j.data)
			if !j.hashed {
				j.res = a.r.BlobID(j.data)
			}
			res, err := a.r.SaveDataBlob(a.ctx, j.res, j.data, j.base)
			if err == nil && a.o.Bases != nil && j.f.stream && !res.Known && res.Base.IsNull() {
				a.o.Bases.Put(j.res, j.data)
			}
			a.bufs <- j.buf[:0]
			j.buf, j.data = nil, nil
			if err != nil {
				return err
			}
			j.res = res.ID
			if !res.Known {
				if a.sum.dataNew.Load() == 0 {
					a.checkpoint("data")
				}
				a.sum.dataNew.Add(1)
				a.sum.bytesAdded.Add(uint64(n))
				a.sum.bytesStored.Add(uint64(res.Stored))
			}
			j.f.release()
		}
	}
}

func (a *Archiver) checkpoint(point string) {
	if a.o.Checkpoint != nil {
		a.o.Checkpoint(point)
	}
}

// chunkReader splits rd into jobs for f. prev, when not nil, is the old
// content of the same file or stream (see previous). A read error is
// returned as is.
func (a *Archiver) chunkReader(rd io.Reader, f *future, prev *previous) (uint64, error) {
	if a.params == (chunk.Params{}) {
		a.params = a.r.Config().Chunker
	}
	c := a.chunkers[a.params]
	if c == nil {
		c = chunk.New(rd, a.r.Polynomial(), a.params)
		if a.chunkers == nil {
			a.chunkers = map[chunk.Params]*chunk.Chunker{}
		}
		a.chunkers[a.params] = c
	} else {
		c.Reset(rd)
	}
	var size uint64
	run := 1 // chunks to recognise at once: doubles while they match
	for {
		if exp := prev.expectRun(a.expect[:0], run, c.Round()); len(exp) > 0 {
			a.expect = exp
			matched, err := a.recognise(c, exp)
			if err != nil {
				return size, err
			}
			for _, e := range exp[:matched] {
				c.Take(e.n)
				if a.o.Bases != nil && f.stream {
					a.o.Bases.Has(e.id) // still this place's base
				}
				size += uint64(e.n)
				prev.matched(int64(size))
				a.sum.bytesRead.Add(uint64(e.n))
				a.sum.bytesMatched.Add(uint64(e.n))
				f.jobs = append(f.jobs, &chunkJob{res: e.id, f: f})
			}
			if matched == len(exp) {
				run = min(2*run, maxRecognise)
				continue
			}
			run = 1
			prev.missed()
		} else if prev != nil {
			prev.missed()
		}
		var buf []byte
		select {
		case <-a.ctx.Done():
			return size, a.ctx.Err()
		case buf = <-a.bufs:
		}
		var data []byte
		var err error
		if prev.oneByOne() {
			data, err = c.NextOne(buf)
		} else {
			data, err = c.Next(buf)
		}
		if errors.Is(err, io.EOF) {
			a.bufs <- buf
			return size, nil
		}
		if err != nil {
			a.bufs <- buf
			return size, err
		}
		start := size
		size += uint64(len(data))
		a.sum.bytesRead.Add(uint64(len(data)))
		j := &chunkJob{data: data, buf: data, f: f}
		if prev != nil {
			// Out of step: hash here, to find the way back.
			j.res, j.hashed = a.r.BlobID(data), true
			j.base = prev.base(int64(start), len(data))
			prev.cut(j.res, int64(size))
		}
		f.jobs = append(f.jobs, j)
		f.pending.Add(1)
		select {
		case <-a.ctx.Done():
			return size, a.ctx.Err()
		case a.jobs <- j:
		}
	}
}

// maxRecognise bounds the chunks recognise hashes at once, and so the
// hashing wasted when one of them differs (the run starts again at one
// after a difference, and doubles while the chunks match).
const maxRecognise = 32

// recognise hashes the next bytes of c as the chunks exp, in parallel
// where there are several, and returns how many of them, from the first,
// the bytes are.
func (a *Archiver) recognise(c *chunk.Chunker, exp []expected) (int, error) {
	ends := make([]int, len(exp))
	total := 0
	for i, e := range exp {
		total += e.n
		ends[i] = total
	}
	data, err := c.PeekAhead(total)
	if err != nil {
		return 0, err
	}
	if len(exp) == 1 {
		if len(data) == exp[0].n && a.r.BlobID(data) == exp[0].id {
			return 1, nil
		}
		return 0, nil
	}
	ok := make([]bool, len(exp))
	var next atomic.Int32
	var wg sync.WaitGroup
	for range min(len(exp), runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(exp) {
					return
				}
				start, end := ends[i]-exp[i].n, ends[i]
				ok[i] = end <= len(data) && a.r.BlobID(data[start:end]) == exp[i].id
			}
		})
	}
	wg.Wait()
	matched := 0
	for matched < len(ok) && ok[matched] {
		matched++
	}
	return matched, nil
}

// wait blocks until f is done and fills in its content.
func (a *Archiver) wait(f *future) error {
	select {
	case <-a.ctx.Done():
		return a.ctx.Err()
	case <-f.done:
	}
	if len(f.jobs) > 0 {
		f.node.Content = make([]id.ID, len(f.jobs))
		for i, j := range f.jobs {
			f.node.Content[i] = j.res
		}
		f.jobs = nil
	}
	if f.countStream {
		f.countStream = false
		switch old := f.streamOld; {
		case old == nil:
			a.sum.filesNew.Add(1)
		case old.Size == f.node.Size && slices.Equal(old.Content, f.node.Content):
			a.sum.filesUnmodified.Add(1)
		default:
			a.sum.filesChanged.Add(1)
		}
	}
	return nil
}

// finish stops the workers, flushes the repository and returns the
// snapshot, not yet saved. meta.Commit runs after all data is stored and
// before the index is written; an error from it leaves no snapshot.
func (a *Archiver) finish(ctx context.Context, root *future, meta Meta, started time.Time) (*snapshot.Snapshot, error) {
	var rootID id.ID
	a.g.Go(func() error {
		if err := a.wait(root); err != nil {
			return err
		}
		if root.node.Subtree == nil {
			return errors.New("archiver: nothing to back up")
		}
		rootID = *root.node.Subtree
		return nil
	})
	err := a.g.Wait()
	if err != nil {
		return nil, err
	}
	sn := &snapshot.Snapshot{Time: started, Host: meta.Host, Username: meta.Username, Tags: meta.Tags,
		Paths: meta.Paths, Source: meta.Source, Tree: rootID, Program: meta.Program, ChunkProfiles: a.profiles}
	if a.o.Parent != nil {
		p := a.o.Parent.ID
		sn.Parent = &p
	}
	if meta.Commit != nil {
		if err := meta.Commit(sn); err != nil {
			return nil, err
		}
	}
	a.checkpoint("index")
	if err := a.r.Flush(ctx); err != nil {
		return nil, err
	}
	a.checkpoint("snapshot")
	sn.Summary = &snapshot.Summary{
		FilesNew: a.sum.filesNew.Load(), FilesChanged: a.sum.filesChanged.Load(),
		FilesUnmodified: a.sum.filesUnmodified.Load(), Dirs: a.sum.dirs.Load(),
		DataBlobsNew: a.sum.dataNew.Load(), TreeBlobsNew: a.sum.treeNew.Load(),
		BytesRead: a.sum.bytesRead.Load(), BytesMatched: a.sum.bytesMatched.Load(), BytesAdded: a.sum.bytesAdded.Load(),
		BytesStored: a.sum.bytesStored.Load(), TotalBytes: a.sum.total.Load(), Errors: a.sum.errors.Load(),
		DurationNs: a.o.Now().Sub(started).Nanoseconds(),
	}
	return sn, nil
}

// saveTree waits for the children and stores their tree; it resolves f with
// a directory node whose fields come from dir.
func (a *Archiver) saveTree(f *future, dir snapshot.Node, children []*future) {
	a.g.Go(func() error {
		t := &snapshot.Tree{Nodes: make([]snapshot.Node, 0, len(children))}
		for _, c := range children {
			if err := a.wait(c); err != nil {
				return err
			}
			if !c.skip {
				t.Nodes = append(t.Nodes, c.node)
			}
		}
		tid, res, err := snapshot.SaveTree(a.ctx, a.r, t)
		if err != nil {
			return fmt.Errorf("archiver: save tree of %q: %w", dir.Name, err)
		}
		if !res.Known {
			a.sum.treeNew.Add(1)
			a.sum.bytesStored.Add(uint64(res.Stored))
		}
		dir.Subtree = &tid
		f.node = dir
		close(f.done)
		return nil
	})
}

// BackupReader backs up one stream as a file named filename. commit runs
// after the stream ended and all data is stored, before the snapshot is
// written: a stream from a command checks the command's exit status there.
// The snapshot is saved and returned.
func (a *Archiver) BackupReader(ctx context.Context, rd io.Reader, filename string, meta Meta, commit func() error) (*snapshot.Snapshot, error) {
	if !snapshot.ValidName(filename) {
		return nil, fmt.Errorf("archiver: invalid file name %q", filename)
	}
	if commit != nil {
		meta.Commit = func(*snapshot.Snapshot) error { return commit() }
	}
	open := func(context.Context) (io.ReadCloser, error) { return io.NopCloser(rd), nil }
	return a.Backup(ctx, []Item{{Name: filename, Open: open}}, meta)
}
