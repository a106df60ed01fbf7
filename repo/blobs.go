package repo

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/chunk"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/index"
	"github.com/hoard-backup/hoard/repo/pack"
)

// packerPool holds open pack writers of one blob type. A writer is used by
// one goroutine at a time: a saver takes one, adds its blob, and returns it,
// so concurrent savers seal into different packs (after restic's packer
// manager).
//
// At most max writers (0: any number) are open at once; a saver that finds
// none free waits for one. Data packs have one: sealing a blob into a pack
// is a copy and an AES-GCM pass, a tenth of compressing it, so savers
// compressing in parallel hardly wait, and a second open pack would add
// its 17 MiB buffer to peak memory.
type packerPool struct {
	mu   sync.Mutex
	cond *sync.Cond // signalled when a writer is put back or finished
	free []*pack.Writer
	open int // writers in free or held by a saver
	max  int
}

func newPackerPool(max int) *packerPool {
	p := &packerPool{max: max}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// put returns a writer for other savers.
func (p *packerPool) put(w *pack.Writer) {
	p.mu.Lock()
	p.free = append(p.free, w)
	p.cond.Signal()
	p.mu.Unlock()
}

// closed counts a writer as finished (or dropped).
func (p *packerPool) closed() {
	p.mu.Lock()
	p.open--
	p.cond.Signal()
	p.mu.Unlock()
}

// MaxTreeSize bounds the plaintext of a tree blob (a directory of a few
// hundred thousand entries); data blobs are bounded by chunk.MaxSize.
const MaxTreeSize = 64 << 20

// MaxRawSize is the largest plaintext a blob of type t may have.
func MaxRawSize(t pack.BlobType) int {
	if t == pack.TreeBlob {
		return MaxTreeSize
	}
	return chunk.MaxSize
}

// MaxStoredSize is the largest stored form a blob of type t may have: its
// plaintext stored uncompressed (writers never store a larger zstd frame),
// the compression byte and the seal.
func MaxStoredSize(t pack.BlobType) int {
	return MaxRawSize(t) + 1 + crypto.Overhead
}

// SaveResult tells what SaveBlob did.
type SaveResult struct {
	ID     id.ID
	Known  bool  // already stored (or being stored); nothing was added
	Stored int   // bytes added to packs (sealed length)
	Base   id.ID // the base, when stored as a delta blob
}

// BlobID returns the keyed ID of a plaintext.
func (r *Repository) BlobID(plaintext []byte) id.ID { return r.keys.IDs.Sum(plaintext) }

// SaveBlob stores plaintext as a blob of type t unless a blob with its ID is
// stored already. Safe for concurrent use; callers run it from several
// goroutines to compress and encrypt in parallel. A pack that fills up is
// uploaded by the caller whose blob filled it.
func (r *Repository) SaveBlob(ctx context.Context, t pack.BlobType, plaintext []byte) (SaveResult, error) {
	return r.SaveBlobWithID(ctx, t, r.BlobID(plaintext), plaintext)
}

// SaveBlobWithID is SaveBlob for a caller that computed the ID already.
func (r *Repository) SaveBlobWithID(ctx context.Context, t pack.BlobType, bid id.ID, plaintext []byte) (SaveResult, error) {
	return r.saveBlob(ctx, t, bid, plaintext, false)
}

// saveBlob is SaveBlobWithID; force stores the blob even when the index
// knows it already (Repack moves blobs out of packs that will be deleted).
// A blob being saved is still stored once.
func (r *Repository) saveBlob(ctx context.Context, t pack.BlobType, bid id.ID, plaintext []byte, force bool) (SaveResult, error) {
	res := SaveResult{ID: bid}
	if err := r.uploadError(); err != nil {
		return res, err
	}
	if len(plaintext) > MaxRawSize(t) {
		return res, fmt.Errorf("repo: %s blob of %d bytes exceeds the limit of %d", t, len(plaintext), MaxRawSize(t))
	}
	if !force && r.idx.Has(t, bid) {
		res.Known = true
		return res, nil
	}
	key := blobKey{t, bid}
	r.mu.Lock()
	if _, ok := r.saving[key]; ok {
		r.mu.Unlock()
		res.Known = true
		return res, nil
	}
	r.saving[key] = struct{}{}
	r.mu.Unlock()
	return r.savePayload(ctx, t, bid, r.compress(plaintext), len(plaintext), id.ID{}, true)
}

// savePayload adds a blob's payload (which it puts back into r.payloads)
// to a pack. base is the base of a delta blob. claimed says that the
// caller has marked the blob as being saved; otherwise savePayload does,
// and returns Known if another saver was first.
func (r *Repository) savePayload(ctx context.Context, t pack.BlobType, bid id.ID, payload *[]byte, rawLength int, base id.ID, claimed bool) (SaveResult, error) {
	res := SaveResult{ID: bid}
	if !claimed {
		key := blobKey{t, bid}
		r.mu.Lock()
		if _, ok := r.saving[key]; ok {
			r.mu.Unlock()
			r.payloads.put(payload)
			res.Known = true
			return res, nil
		}
		r.saving[key] = struct{}{}
		r.mu.Unlock()
	}
	pool := r.packers[t]
	w, err := r.takePacker(t)
	if err != nil {
		return res, err
	}
	if w.Count() > 0 && !w.FitsWithBase(len(*payload), !base.IsNull()) {
		// Store the pack as it is rather than grow its buffer: the copy
		// would hold two packs' worth of memory for a moment. Only a large
		// blob arriving late in a pack does this.
		if err := r.uploadPack(ctx, w); err != nil {
			return res, err
		}
		if w, err = r.takePacker(t); err != nil {
			return res, err
		}
	}
	before := w.Size()
	w.AddWithBase(bid, *payload, rawLength, base)
	r.payloads.put(payload)
	res.Stored = w.Size() - before
	limit := r.cfg.PackSize
	if t == pack.TreeBlob {
		limit /= 4
	}
	if w.Size() < limit {
		pool.put(w)
		return res, nil
	}
	return res, r.uploadPack(ctx, w)
}

// compressWindow is the window of the encoder of full blobs.
const compressWindow = 1 << 20

// compress returns the payload of a blob, a compression byte and the body,
// in a buffer from r.payloads that the caller puts back.
func (r *Repository) compress(plaintext []byte) *[]byte {
	bp := r.payloads.get()
	if bp == nil {
		bp = new([]byte)
	}
	out := (*bp)[:0]
	if r.cfg.Compression == "zstd" && len(plaintext) > 64 && !incompressible(r.zenc, plaintext, out) {
		out = append(out, pack.CompressionZstd)
		out = r.zenc.EncodeAll(plaintext, out)
		if len(out) < len(plaintext)+1 {
			*bp = out
			return bp
		}
	}
	out = append(out[:0], pack.CompressionNone)
	out = append(out, plaintext...)
	*bp = out
	return bp
}

// Sampling for incompressible chunks: a chunk of at least sampleMin bytes
// is first tried on samplePieces pieces of a 256th of its length each (at
// least samplePiece bytes), spread from its start to its end. JPEG, video
// and already compressed archives spend a whole zstd pass to come out no
// smaller (the encoder's fast path for incompressible data still looks for
// matches every few bytes: about as long as the blob ID's HMAC-SHA256,
// BenchmarkSaveBlob); the sample costs a 32nd of it. A chunk whose sample
// shrinks by less than a 32nd is stored uncompressed (compression 0,
// FORMAT.md 6.2); one that has saved a 16th before its end is compressed
// without more pieces being tried. btrfs decides from a sample of each extent too, by byte
// statistics; compressing the sample with the same encoder also counts
// repeated strings. The pieces are not a power of two apart, so that data
// made of blocks of such a size (small files in an archive) is not sampled
// in only one kind of block.
const (
	sampleMin    = 16 << 10
	samplePieces = 8
	samplePiece  = 512
)

// incompressible tells whether p looks incompressible from a sample, by
// compressing pieces of it with enc into scratch's space (its contents are
// overwritten; it grows if it must).
func incompressible(enc *zstd.Encoder, p []byte, scratch []byte) bool {
	if len(p) < sampleMin {
		return false
	}
	piece := max(len(p)/256, samplePiece)
	sample := piece * samplePieces
	saved := 0
	for k := range samplePieces {
		at := (len(p) - piece) * k / (samplePieces - 1)
		scratch = enc.EncodeAll(p[at:at+piece], scratch[:0])
		saved += piece - len(scratch)
		if saved*16 >= sample {
			// Compressible for sure: no need to look further, which
			// makes the sample of text cost one piece, a 256th.
			return false
		}
	}
	return saved*32 < sample
}

func (r *Repository) takePacker(t pack.BlobType) (*pack.Writer, error) {
	pool := r.packers[t]
	pool.mu.Lock()
	for len(pool.free) == 0 && pool.max > 0 && pool.open >= pool.max {
		pool.cond.Wait()
	}
	if n := len(pool.free); n > 0 {
		w := pool.free[n-1]
		pool.free = pool.free[:n-1]
		pool.mu.Unlock()
		return w, nil
	}
	pool.open++
	pool.mu.Unlock()
	pk := crypto.NewPackKey()
	wrapped := pk
	if t == pack.DataBlob {
		var err error
		if wrapped, err = r.keys.WrapPackKey(pk); err != nil {
			pool.closed()
			return nil, err
		}
	}
	var buf []byte
	if t == pack.TreeBlob {
		// Tree packs close at a quarter of the pack size. They are few,
		// and the last one is open while the last data pack is, at the
		// end of a backup: a data pack's buffer would add 13 MiB to the
		// peak there.
		buf = make([]byte, 0, r.cfg.PackSize/4+1<<20)
	} else if bp := r.packBufs.get(); bp != nil {
		buf = *bp
	} else {
		// A pack closes once past its target size; the blob that takes it
		// past is usually small next to the slack, and a large one makes
		// append grow the buffer once. Memory touched is what counts.
		buf = make([]byte, 0, r.cfg.PackSize+1<<20)
	}
	return pack.NewWriter(t, pk, wrapped, buf)
}

// uploadPack finishes w and stores it in the background: at most
// Options.Uploads packs are in flight, and the caller waits for a slot. An
// upload's error is returned by a later SaveBlob or by Flush.
func (r *Repository) uploadPack(ctx context.Context, w *pack.Writer) error {
	data, h := w.Finish(r.keys.Meta)
	// The pack counts as open until its upload has a slot: a saver that
	// opened the next data pack meanwhile would hold a fourth pack buffer
	// (one open, one waiting, two being stored: 68 MiB, the peak of a
	// backup of 1 GB of media before this).
	select {
	case <-ctx.Done():
		r.packers[w.Kind].closed()
		return ctx.Err()
	case r.uploadSem <- struct{}{}:
	}
	r.packers[w.Kind].closed()
	r.uploads.Add(1)
	// An upload once started finishes (Flush waits for it), so it does not
	// end with the context of whichever worker happened to fill the pack.
	uctx := context.WithoutCancel(ctx)
	go func() {
		defer r.uploads.Done()
		defer func() { <-r.uploadSem }()
		if err := r.storePack(uctx, data, h); err != nil {
			r.mu.Lock()
			if r.uploadErr == nil {
				r.uploadErr = err
			}
			r.mu.Unlock()
		}
	}()
	return r.uploadError()
}

func (r *Repository) uploadError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.uploadErr
}

// storePack saves a finished pack and adds it to the in-memory index.
func (r *Repository) storePack(ctx context.Context, data []byte, h pack.Header) error {
	name := id.Hash(data)
	handle := backends.Handle{Type: backends.PackFile, Name: name.String()}
	if m, ok := r.be.(treePackMarker); ok && h.Kind == pack.TreeBlob {
		m.MarkTreePacks([]string{handle.Name})
	}
	if err := r.be.Save(ctx, handle, backends.NewByteReader(data)); err != nil {
		return fmt.Errorf("repo: save pack %s: %w", name.Str(), err)
	}
	p := index.Pack{ID: name, Size: uint64(len(data)), Kind: h.Kind, WrappedKey: h.WrappedKey, Blobs: h.Entries}
	r.idx.AddPack(p)
	r.mu.Lock()
	r.unindexed = append(r.unindexed, p)
	n := len(r.unindexed)
	r.mu.Unlock()
	r.log.Debug("pack saved", "pack", name.Str(), "blobs", len(h.Entries), "bytes", len(data))
	if h.Kind == pack.DataBlob {
		data = data[:0]
		r.packBufs.put(&data)
	}
	if n >= 256 {
		return r.writeIndex(ctx)
	}
	return nil
}

// Flush uploads every open pack, waits for all uploads, and writes an index
// file naming every pack saved since the last one. Call it before saving a
// snapshot that refers to the blobs.
func (r *Repository) Flush(ctx context.Context) error {
	for _, t := range []pack.BlobType{pack.DataBlob, pack.TreeBlob} {
		pool := r.packers[t]
		pool.mu.Lock()
		ws := pool.free
		pool.free = nil
		pool.mu.Unlock()
		for _, w := range ws {
			if w.Count() == 0 {
				pool.closed()
				continue
			}
			if err := r.uploadPack(ctx, w); err != nil {
				r.uploads.Wait()
				return err
			}
		}
	}
	r.uploads.Wait()
	if err := r.uploadError(); err != nil {
		return err
	}
	return r.writeIndex(ctx)
}

func (r *Repository) writeIndex(ctx context.Context) error {
	r.mu.Lock()
	packs := r.unindexed
	r.unindexed = nil
	r.mu.Unlock()
	if len(packs) == 0 {
		return nil
	}
	name, err := r.SaveUnpacked(ctx, backends.IndexFile, index.Encode(&index.File{Packs: packs}))
	if err != nil {
		r.mu.Lock()
		r.unindexed = append(packs, r.unindexed...)
		r.mu.Unlock()
		return err
	}
	r.mu.Lock()
	r.indexed[name] = struct{}{}
	for _, p := range packs {
		for _, b := range p.Blobs {
			delete(r.saving, blobKey{b.Type, b.ID})
		}
	}
	r.mu.Unlock()
	return nil
}

// treePackMarker is implemented by a metadata cache (backends/cache) that
// keeps tree packs too once told which packs hold trees.
type treePackMarker interface {
	MarkTreePacks(names []string)
}

// IndexProblem names an index file that could not be loaded.
type IndexProblem struct {
	Name id.ID
	Err  error
}

// LoadIndex reads every index file into memory. Damaged index files do not
// stop it: they are returned as problems (their packs are simply unknown).
func (r *Repository) LoadIndex(ctx context.Context) ([]IndexProblem, error) {
	names, err := r.List(ctx, backends.IndexFile)
	if err != nil {
		return nil, err
	}
	var (
		mu       sync.Mutex
		problems []IndexProblem
		files    = map[id.ID]*index.File{}
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.be.Properties().Connections)
	for _, name := range names {
		r.mu.Lock()
		_, done := r.indexed[name]
		r.mu.Unlock()
		if done {
			continue
		}
		g.Go(func() error {
			plain, err := r.LoadUnpacked(gctx, backends.IndexFile, name)
			var f *index.File
			if err == nil {
				f, err = index.Decode(plain)
				if err != nil {
					err = &FileError{File: "index/" + name.String(), Err: fmt.Errorf("%w: %v", ErrInvalidData, err)}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				problems = append(problems, IndexProblem{Name: name, Err: err})
				return nil
			}
			files[name] = f
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	superseded := map[id.ID]bool{}
	for _, f := range files {
		for _, s := range f.Supersedes {
			superseded[s] = true
		}
	}
	m, mark := r.be.(treePackMarker)
	// In name order, so that the index (and which description of a pack
	// that two files describe differently comes first) never depends on
	// the order the files were listed or loaded in.
	order := make([]id.ID, 0, len(files))
	for name := range files {
		order = append(order, name)
	}
	slices.SortFunc(order, func(a, b id.ID) int { return a.Compare(b) })
	for _, name := range order {
		f := files[name]
		if superseded[name] {
			continue
		}
		if mark {
			var trees []string
			for _, p := range f.Packs {
				if p.Kind == pack.TreeBlob {
					trees = append(trees, p.ID.String())
				}
			}
			m.MarkTreePacks(trees)
		}
		r.idx.AddFile(f)
		pids := make([]id.ID, len(f.Packs))
		for i, p := range f.Packs {
			pids[i] = p.ID
		}
		r.mu.Lock()
		r.indexed[name] = struct{}{}
		r.indexFiles[name] = pids
		r.mu.Unlock()
	}
	return problems, nil
}

// LoadBlob returns the plaintext of a blob, appended to buf[:0]. Every copy
// the index knows is tried; if none can be read and verified the error is a
// *BlobError wrapping ErrInvalidData (or ErrWriteOnly, or the backend's error).
//
// The copies are tried in the order of Locations, so a blob whose first
// copy is in a pack that is gone (an old index file put back after a prune)
// or damaged is read from another copy.
func (r *Repository) LoadBlob(ctx context.Context, t pack.BlobType, bid id.ID, buf []byte) ([]byte, error) {
	locs := r.Locations(t, bid)
	if len(locs) == 0 {
		return nil, &BlobError{Type: t, ID: bid, Err: ErrBlobNotFound}
	}
	var firstErr error
	for _, loc := range locs {
		out, err := r.loadFromDepth(ctx, bid, loc, buf, 0)
		if err == nil {
			return out, nil
		}
		if errors.Is(err, ErrWriteOnly) || ctx.Err() != nil {
			return nil, err
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// Locations returns every copy of a blob the index knows, in the index's
// fixed order (index.Index.Lookup) except that copies in packs found
// missing (MarkMissing) come last.
func (r *Repository) Locations(t pack.BlobType, bid id.ID) []index.Location {
	locs := r.idx.Lookup(t, bid)
	if len(locs) < 2 {
		return locs
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.missing) == 0 {
		return locs
	}
	slices.SortStableFunc(locs, func(a, b index.Location) int {
		ma, mb := r.missing[a.Pack.ID], r.missing[b.Pack.ID]
		switch {
		case ma == mb:
			return 0
		case mb:
			return -1
		}
		return 1
	})
	return locs
}

// MarkMissing records that pack pid does not exist: Locations puts its
// copies last from then on.
func (r *Repository) MarkMissing(pid id.ID) {
	r.mu.Lock()
	r.missing[pid] = true
	r.mu.Unlock()
}

// IndexFilePacks returns, for every index file LoadIndex has added to the
// index, the packs it names.
func (r *Repository) IndexFilePacks() map[id.ID][]id.ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[id.ID][]id.ID, len(r.indexFiles))
	for n, ps := range r.indexFiles {
		out[n] = slices.Clone(ps)
	}
	return out
}

// PackKey returns the AEAD for blobs of a pack.
func (r *Repository) PackKey(p index.PackRef) (*crypto.AEAD, error) {
	key := p.WrappedKey
	if p.Kind == pack.DataBlob {
		var err error
		if key, err = r.keys.UnwrapPackKey(p.WrappedKey); err != nil {
			return nil, err
		}
	}
	return crypto.NewAEAD(key)
}

// loadFromDepth loads one copy of a blob. depth 1 means the blob is read
// as a delta's base, which must be a full blob.
func (r *Repository) loadFromDepth(ctx context.Context, bid id.ID, loc index.Location, buf []byte, depth int) ([]byte, error) {
	berr := func(err error) error { return &BlobError{Type: loc.Type, ID: bid, Pack: loc.Pack.ID, Err: err} }
	a, err := r.PackKey(loc.Pack)
	if err != nil {
		if errors.Is(err, ErrWriteOnly) {
			return nil, ErrWriteOnly
		}
		return nil, berr(fmt.Errorf("%w: pack key: %v", ErrInvalidData, err))
	}
	if int64(loc.Length) > int64(MaxStoredSize(loc.Type)) || int64(loc.RawLength) > int64(MaxRawSize(loc.Type)) {
		return nil, berr(fmt.Errorf("%w: index claims a blob of %d bytes", ErrInvalidData, loc.Length))
	}
	sp, _ := r.storedBufs.Get().(*[]byte)
	if sp == nil {
		sp = new([]byte)
	}
	defer r.storedBufs.Put(sp)
	if cap(*sp) < int(loc.Length) {
		*sp = make([]byte, loc.Length)
	}
	stored := (*sp)[:loc.Length]
	err = r.be.Load(ctx, backends.Handle{Type: backends.PackFile, Name: loc.Pack.ID.String()}, int(loc.Length), int64(loc.Offset),
		func(rd io.Reader) error {
			n, err := io.ReadFull(rd, stored)
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				stored = stored[:n]
				return nil
			}
			return err
		})
	if err != nil {
		if errors.Is(err, backends.ErrNotExist) {
			r.MarkMissing(loc.Pack.ID)
		}
		if !errors.Is(err, backends.ErrUnavailable) && (errors.Is(err, backends.ErrNotExist) ||
			errors.Is(err, backends.ErrRange) || errors.Is(err, io.ErrUnexpectedEOF)) {
			return nil, berr(fmt.Errorf("%w: %v", ErrInvalidData, err))
		}
		return nil, berr(err)
	}
	if len(stored) != int(loc.Length) {
		return nil, berr(fmt.Errorf("%w: read %d of %d bytes", ErrInvalidData, len(stored), loc.Length))
	}
	out, err := r.openBlob(ctx, a, pack.Entry{Type: loc.Type, ID: bid, RawLength: loc.RawLength, Base: loc.Base}, stored, buf, depth, true)
	var be *BlobError
	if errors.As(err, &be) && be.Pack.IsNull() {
		be.Pack = loc.Pack.ID
	}
	return out, err
}

// OpenBlob decrypts, decompresses and verifies one stored blob. It
// decrypts in place: stored is overwritten. The result is appended to
// buf[:0]. A delta blob's base is loaded through the index (and kept for
// the next deltas that need it); OpenBlob does that without a deadline,
// OpenEntry with the caller's context.
func (r *Repository) OpenBlob(a *crypto.AEAD, t pack.BlobType, bid id.ID, stored []byte, rawLength uint32, buf []byte) ([]byte, error) {
	return r.openBlob(context.Background(), a, pack.Entry{Type: t, ID: bid, RawLength: rawLength}, stored, buf, 0, false)
}

// OpenEntry is OpenBlob for the blob a pack header or the index describes
// as e: a delta blob must name the base that e names.
func (r *Repository) OpenEntry(ctx context.Context, a *crypto.AEAD, e pack.Entry, stored []byte, buf []byte) ([]byte, error) {
	return r.openBlob(ctx, a, e, stored, buf, 0, true)
}

// OpenPayload opens a stored blob and returns its payload (compression
// byte and body) without decoding it: prune moves delta blobs as they are.
func (r *Repository) OpenPayload(a *crypto.AEAD, e pack.Entry, stored []byte) ([]byte, error) {
	payload, err := pack.OpenBlob(nil, a, e.ID, stored)
	if err != nil {
		return nil, &BlobError{Type: e.Type, ID: e.ID, Err: fmt.Errorf("%w: %v", ErrInvalidData, err)}
	}
	return payload, nil
}

// openBlob is OpenBlob through decodeBlob, decrypting in place.
func (r *Repository) openBlob(ctx context.Context, a *crypto.AEAD, e pack.Entry, stored []byte, buf []byte, depth int, checkBase bool) ([]byte, error) {
	var scratch []byte
	if len(stored) >= crypto.Overhead {
		scratch = stored[crypto.NonceSize:crypto.NonceSize]
	}
	out, inScratch, err := r.decodeBlob(ctx, a, e, stored, &scratch, &buf, depth, checkBase, nil)
	if err != nil || !inScratch {
		return out, err
	}
	return append(buf[:0], out...), nil
}

// decodeBlob is the one decoder of a stored blob: it decrypts stored into
// *scratch (stored is left intact unless *scratch aliases it), decompresses
// into *plain, and verifies the plaintext against its keyed ID. Both
// buffers are grown as needed and kept by the caller for the next blob.
// An uncompressed body is not copied: out then lies in *scratch
// (inScratch). A delta blob is decoded against its base, loaded through
// the index; depth 1 refuses a delta (a base must be full); checkBase says
// that e.Base is what the index names, which a delta's payload must match.
// Errors are *BlobError wrapping ErrInvalidData (or ErrWriteOnly).
func (r *Repository) decodeBlob(ctx context.Context, a *crypto.AEAD, e pack.Entry, stored []byte, scratch, plain *[]byte, depth int, checkBase bool, bases *baseWindow) (out []byte, inScratch bool, err error) {
	t, bid, rawLength := e.Type, e.ID, e.RawLength
	berr := func(err error) error { return &BlobError{Type: t, ID: bid, Err: err} }
	payload, err := pack.OpenBlob((*scratch)[:0], a, bid, stored)
	if err != nil {
		return nil, false, berr(fmt.Errorf("%w: %v", ErrInvalidData, err))
	}
	if cap(payload) > cap(*scratch) {
		*scratch = payload[:0]
	}
	switch payload[0] {
	case pack.CompressionNone:
		out, inScratch = payload[1:], true
	case pack.CompressionZstd:
		if int64(rawLength) > int64(MaxRawSize(t)) {
			return nil, false, berr(fmt.Errorf("%w: raw length %d", ErrInvalidData, rawLength))
		}
		if cap(*plain) < int(rawLength) {
			*plain = make([]byte, 0, int(rawLength)+zstdSlack)
		}
		out, err = r.zdec.DecodeAll(payload[1:], (*plain)[:0])
		if err != nil {
			return nil, false, berr(fmt.Errorf("%w: decompress: %v", ErrInvalidData, err))
		}
		if cap(out) > cap(*plain) {
			*plain = out[:0]
		}
	case pack.CompressionDelta:
		if t != pack.DataBlob || depth > 0 || r.cfg.Version < 2 || len(payload) < deltaPrefix {
			return nil, false, berr(fmt.Errorf("%w: a delta blob where none may be", ErrInvalidData))
		}
		if int64(rawLength) > int64(MaxRawSize(t)) {
			return nil, false, berr(fmt.Errorf("%w: raw length %d", ErrInvalidData, rawLength))
		}
		var base id.ID
		copy(base[:], payload[1:deltaPrefix])
		if base == bid || checkBase && base != e.Base {
			return nil, false, berr(fmt.Errorf("%w: delta names base %s, index %s", ErrInvalidData, base.Str(), e.Base.Str()))
		}
		// The payload lives in *scratch, which a base's load (through
		// other buffers) leaves alone.
		basePlain, ok := bases.base(ctx, base)
		if !ok {
			basePlain, err = r.loadBase(ctx, base)
		}
		if err != nil {
			if errors.Is(err, ErrWriteOnly) {
				return nil, false, err
			}
			// A damaged or missing base is damage of this blob; a base that
			// could not be read (the network) is not.
			if errors.Is(err, ErrInvalidData) || errors.Is(err, ErrBaseMissing) || errors.Is(err, ErrBlobNotFound) {
				return nil, false, berr(fmt.Errorf("%w: base %s: %w", ErrInvalidData, base.Str(), err))
			}
			return nil, false, berr(fmt.Errorf("base %s: %w", base.Str(), err))
		}
		out, err = r.decodeDelta(payload[deltaPrefix:], basePlain, rawLength, (*plain)[:0])
		if err != nil {
			return nil, false, berr(fmt.Errorf("%w: decompress delta: %v", ErrInvalidData, err))
		}
		if cap(out) > cap(*plain) {
			*plain = out[:0]
		}
	default:
		return nil, false, berr(fmt.Errorf("%w: compression %d", ErrInvalidData, payload[0]))
	}
	if len(out) != int(rawLength) {
		return nil, false, berr(fmt.Errorf("%w: %d bytes, index says %d", ErrInvalidData, len(out), rawLength))
	}
	if depth > 0 && bases != nil && bases.dictOnly {
		// A prefetched base, used only as the dictionary of deltas whose
		// own plaintexts are verified: a wrong base gives wrong deltas,
		// which fail their IDs. Its own ID is checked when it is read as
		// a blob (a restore of its day, check --read-data).
		return out, inScratch, nil
	}
	got := r.keys.IDs.Sum(out)
	if !hmac.Equal(got[:], bid[:]) {
		return nil, false, berr(fmt.Errorf("%w: content does not match its ID", ErrInvalidData))
	}
	return out, inScratch, nil
}

// zstdSlack is room left past a decompressed blob in its buffer: with 16
// bytes beyond the output, klauspost/compress decodes with its wide copies
// instead of the exact ("safe") ones, which took half of the decoding time
// of buffers sized exactly.
const zstdSlack = 64

// bufList keeps up to a fixed number of buffers for reuse. Unlike a
// sync.Pool it is not emptied by each garbage collection, which at GOGC 25
// runs often enough that pooled 17 MiB pack buffers were allocated again
// and again, and the garbage raised the peak.
type bufList struct{ ch chan *[]byte }

func newBufList(n int) bufList { return bufList{ch: make(chan *[]byte, n)} }

// get returns a kept buffer, or nil.
func (l bufList) get() *[]byte {
	select {
	case b := <-l.ch:
		return b
	default:
		return nil
	}
}

// put keeps b unless the list is full.
func (l bufList) put(b *[]byte) {
	select {
	case l.ch <- b:
	default:
	}
}
