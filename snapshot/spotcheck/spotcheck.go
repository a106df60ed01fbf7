// Package spotcheck compares a random sample of a snapshot's files with the
// live tree they were backed up from: each sampled file is read from the
// repository and compared, byte for byte and as a stream, with the file at
// the same place on disk, and its size, mtime and mode with the live
// file's. It proves, for a sample, that the backup restores what is on
// disk, and finds files whose content changed behind an unchanged size and
// mtime (silent corruption or tampering).
//
// The idea of a spot check of a sample against the live tree is
// borgmatic's ("spot" check); this is hoard's own take on it: per-file
// results instead of tolerance percentages. It never writes to the live
// tree: files are opened read-only (without updating their access time
// where the system allows it).
package spotcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

// Sample says how many files to check: Count files, or else Percent of
// them (rounded up, at least one).
type Sample struct {
	Count   int
	Percent float64
}

// ParseSample reads "N" (files) or "P%" (0 < P <= 100).
func ParseSample(s string) (Sample, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(v > 0 && v <= 100) {
			return Sample{}, fmt.Errorf("spotcheck: sample %q: want a percentage above 0 and at most 100", s)
		}
		return Sample{Percent: v}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return Sample{}, fmt.Errorf("spotcheck: sample %q: want a number of files (1 or more) or P%%", s)
	}
	return Sample{Count: n}, nil
}

func (s Sample) String() string {
	if s.Percent > 0 {
		return strconv.FormatFloat(s.Percent, 'f', -1, 64) + "%"
	}
	return strconv.Itoa(s.Count)
}

// of returns how many of total files the sample takes.
func (s Sample) of(total int) int {
	if s.Percent > 0 {
		return min(total, int(float64(total)*s.Percent/100+0.999999))
	}
	return min(total, s.Count)
}

// Root pairs a folder of the snapshot with the live folder it was backed
// up from.
type Root struct {
	Snap string // slash path in the snapshot, e.g. "media/uploads/uploads"
	Live string // the folder on disk, e.g. "/srv/app/uploads"
}

// Options configure Run.
type Options struct {
	Sample Sample
	// Seed chooses the sample: the same seed, snapshot and roots sample
	// the same files.
	Seed uint64
	// Workers bounds the concurrent blob reads of one file (0: the
	// backend's connections).
	Workers int
}

// Status is what a spot check found for one file.
type Status string

// The statuses of a file.
const (
	// Same: content, size, mtime and mode are as in the snapshot.
	Same Status = "same"
	// Differs: something differs and the live file's mtime is not newer
	// than the snapshot. A failure.
	Differs Status = "differs"
	// Missing: no file at the path. A failure unless AfterBackup.
	Missing Status = "missing"
	// Changed: something differs, and the live file was modified after
	// the snapshot was taken (its mtime is newer; or only its metadata
	// differs and its ctime is newer). Reported, not a failure.
	Changed Status = "changed"
	// Error: the file could not be compared (Err says why). A failure.
	Error Status = "error"
)

// What may differ between a snapshot's file and the live one.
const (
	DiffContent = "content"
	DiffSize    = "size"
	DiffMtime   = "mtime"
	DiffMode    = "mode"
	DiffType    = "type" // the live path is not a regular file
)

// Result is the finding for one sampled file.
type Result struct {
	Path   string // slash path in the snapshot
	Live   string // path on disk
	Status Status
	// Diffs lists what differs (Diff* constants), for Differs and Changed.
	Diffs []string
	// Corrupt: the content differs while size and mtime are as in the
	// snapshot: the bytes changed without the file being written to as
	// usual (silent corruption, or tampering that put the mtime back).
	Corrupt bool
	// AfterBackup: for Missing, the nearest live folder above the file
	// was modified after the snapshot, so the file was most likely
	// removed after the backup; not a failure.
	AfterBackup bool
	// Snapshot and live metadata, for the report.
	Size, LiveSize   uint64
	Mtime, LiveMtime time.Time
	Mode, LiveMode   fs.FileMode
	// Err is why an Error result could not be compared.
	Err error
	// RepoErr: Err came from reading the repository (a damaged or
	// missing blob), not from the live file.
	RepoErr bool
}

// Failed reports whether the result counts as a failure of the check.
func (r *Result) Failed() bool {
	switch r.Status {
	case Differs, Error:
		return true
	case Missing:
		return !r.AfterBackup
	}
	return false
}

// Report is what Run found.
type Report struct {
	Files   int // regular files under the roots in the snapshot
	Seed    uint64
	Results []Result // in path order
}

// Count returns how many results have status s.
func (rep *Report) Count(s Status) int {
	n := 0
	for i := range rep.Results {
		if rep.Results[i].Status == s {
			n++
		}
	}
	return n
}

// Failed returns how many results are failures.
func (rep *Report) Failed() int {
	n := 0
	for i := range rep.Results {
		if rep.Results[i].Failed() {
			n++
		}
	}
	return n
}

// Corrupt returns how many results are Corrupt.
func (rep *Report) Corrupt() int {
	n := 0
	for i := range rep.Results {
		if rep.Results[i].Corrupt {
			n++
		}
	}
	return n
}

// RepoErrors returns how many files could not be read from the repository.
func (rep *Report) RepoErrors() int {
	n := 0
	for i := range rep.Results {
		if rep.Results[i].RepoErr {
			n++
		}
	}
	return n
}

type entry struct {
	root int
	rel  string // slash path below the root
	node *snapshot.Node
}

// Run samples the regular files under roots in snapshot sn and compares
// each with the live file. The repository's index must be loaded and its
// key must read content. Errors of single files are results; Run fails
// only when the snapshot's trees cannot be read or ctx ends.
func Run(ctx context.Context, r *repo.Repository, sn *snapshot.Snapshot, roots []Root, o Options) (*Report, error) {
	if !r.CanRead() {
		return nil, repo.ErrWriteOnly
	}
	// Every regular file's node is kept until the sample is drawn: about
	// 200 bytes a file plus its chunk IDs.
	var files []entry
	for i, rt := range roots {
		n, err := restorer.FindNode(ctx, r, sn, rt.Snap)
		if err != nil {
			return nil, fmt.Errorf("spotcheck: snapshot %s: %w", sn.ID.Str(), err)
		}
		if n.Type != snapshot.TypeDir {
			return nil, fmt.Errorf("spotcheck: snapshot %s: %s is a %s, not a folder", sn.ID.Str(), rt.Snap, n.Type)
		}
		if files, err = walk(ctx, r, *n.Subtree, i, "", files); err != nil {
			return nil, err
		}
	}
	rep := &Report{Files: len(files), Seed: o.Seed}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	picked := rng.Perm(len(files))[:o.Sample.of(len(files))]
	slices.Sort(picked) // walk order: roots in order, paths sorted

	liveRoots := make([]*os.Root, len(roots))
	rootErrs := make([]error, len(roots))
	defer func() {
		for _, lr := range liveRoots {
			if lr != nil {
				lr.Close()
			}
		}
	}()
	for _, i := range picked {
		e := files[i]
		rt := roots[e.root]
		if liveRoots[e.root] == nil && rootErrs[e.root] == nil {
			liveRoots[e.root], rootErrs[e.root] = os.OpenRoot(rt.Live)
		}
		res := Result{Path: path.Join(rt.Snap, e.rel), Live: liveJoin(rt.Live, e.rel),
			Size: e.node.Size, Mtime: e.node.ModTime, Mode: e.node.Mode}
		if rootErrs[e.root] != nil {
			res.Status, res.Err = Error, rootErrs[e.root]
			if errors.Is(rootErrs[e.root], fs.ErrNotExist) {
				res.Status, res.Err = Missing, nil
			}
		} else {
			compare(ctx, r, sn.Time, liveRoots[e.root], e, &res, o.Workers)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// liveJoin joins a live folder and a slash path below it (names may hold
// any byte but the slash, so no cleaning).
func liveJoin(dir, rel string) string {
	if strings.HasSuffix(dir, "/") {
		return dir + rel
	}
	return dir + "/" + rel
}

// walk appends the regular files below tree tid, in name order.
func walk(ctx context.Context, r *repo.Repository, tid id.ID, root int, rel string, out []entry) ([]entry, error) {
	t, err := snapshot.LoadTree(ctx, r, tid)
	if err != nil {
		return nil, err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := n.Name
		if rel != "" {
			p = rel + "/" + n.Name
		}
		switch n.Type {
		case snapshot.TypeFile:
			out = append(out, entry{root: root, rel: p, node: n})
		case snapshot.TypeDir:
			if n.Subtree != nil {
				if out, err = walk(ctx, r, *n.Subtree, root, p, out); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// modeBits are the mode bits compared: permissions and the special bits.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// compare fills res for the live file at e.rel below lr.
func compare(ctx context.Context, r *repo.Repository, taken time.Time, lr *os.Root, e entry, res *Result, workers int) {
	fi, err := lr.Lstat(e.rel)
	// ENOTDIR: a folder on the way is now something else, so the file is gone.
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		res.Status = Missing
		res.AfterBackup = parentChanged(lr, e.rel, taken)
		return
	}
	if err != nil {
		res.Status, res.Err = Error, err
		return
	}
	var f *os.File
	if fi.Mode().IsRegular() {
		if f, err = openReadOnly(lr, e.rel); err != nil {
			res.Status, res.Err = Error, err
			return
		}
		defer f.Close()
		// The open file's own metadata: the path may have been replaced
		// between Lstat and the open.
		if fi, err = f.Stat(); err != nil {
			res.Status, res.Err = Error, err
			return
		}
	}
	res.LiveMtime, res.LiveMode = fi.ModTime(), fi.Mode()
	if fi.Mode().IsRegular() {
		res.LiveSize = uint64(fi.Size())
	}
	switch {
	case !fi.Mode().IsRegular():
		res.Diffs = append(res.Diffs, DiffType)
	case res.LiveSize != res.Size:
		// The content differs too; it is not read.
		res.Diffs = append(res.Diffs, DiffSize, DiffContent)
	default:
		same, err := sameContent(ctx, r, e.node, f, workers)
		if err != nil {
			res.Status, res.Err = Error, err
			res.RepoErr = !errors.Is(err, errLive)
			return
		}
		if !same {
			res.Diffs = append(res.Diffs, DiffContent)
		}
	}
	mtimeSame := res.LiveMtime.Equal(res.Mtime)
	if !mtimeSame {
		res.Diffs = append(res.Diffs, DiffMtime)
	}
	if fi.Mode().IsRegular() && res.LiveMode&modeBits != res.Mode&modeBits {
		res.Diffs = append(res.Diffs, DiffMode)
	}
	switch {
	case len(res.Diffs) == 0:
		res.Status = Same
	case res.LiveMtime.After(taken):
		res.Status = Changed
	case !slices.Contains(res.Diffs, DiffContent) && !slices.Contains(res.Diffs, DiffType) && changeTime(fi).After(taken):
		// chmod, or touch to an older time, after the backup.
		res.Status = Changed
	default:
		res.Status = Differs
		res.Corrupt = slices.Contains(res.Diffs, DiffContent) && !slices.Contains(res.Diffs, DiffSize) && mtimeSame
	}
}

// parentChanged reports whether the nearest existing folder above rel was
// modified after taken.
func parentChanged(lr *os.Root, rel string, taken time.Time) bool {
	for dir := path.Dir(rel); ; dir = path.Dir(dir) {
		fi, err := lr.Lstat(dir)
		if err == nil {
			return fi.IsDir() && fi.ModTime().After(taken)
		}
		if dir == "." {
			return false
		}
	}
}

// errLive marks a failure to read the live file.
var errLive = errors.New("reading the live file")

// errDiffers stops the repository's stream at the first difference.
var errDiffers = errors.New("spotcheck: content differs")

// sameContent streams n's content from the repository and compares it
// with f's, without holding either whole.
func sameContent(ctx context.Context, r *repo.Repository, n *snapshot.Node, f *os.File, workers int) (bool, error) {
	c := &comparer{live: f}
	err := restorer.Dump(ctx, r, n, c, workers)
	switch {
	case errors.Is(err, errDiffers):
		return false, nil
	case c.liveErr != nil:
		return false, fmt.Errorf("%w: %w", errLive, c.liveErr)
	case err != nil:
		return false, err
	}
	// The live file must end where the snapshot's does.
	var one [1]byte
	k, err := f.Read(one[:])
	if k > 0 {
		return false, nil
	}
	if err != nil && err != io.EOF {
		return false, fmt.Errorf("%w: %w", errLive, err)
	}
	return true, nil
}

// comparer is an io.Writer that compares what is written with the next
// bytes of live.
type comparer struct {
	live    io.Reader
	buf     []byte
	liveErr error
}

func (c *comparer) Write(p []byte) (int, error) {
	if cap(c.buf) < len(p) {
		c.buf = make([]byte, len(p))
	}
	b := c.buf[:len(p)]
	k, err := io.ReadFull(c.live, b)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		c.liveErr = err
		return 0, err
	}
	if k < len(p) || !bytes.Equal(b, p) {
		return 0, errDiffers
	}
	return len(p), nil
}
