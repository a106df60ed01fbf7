package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/index"
	"github.com/hoard-backup/hoard/repo/pack"
)

// BlobRead is one blob for StreamBlobs to read: its ID and where it is.
type BlobRead struct {
	ID  id.ID
	Loc index.Location
}

// PackRead is one pack for VerifyPacks: every byte of it is read, and the
// listed blobs (from the index) are decoded and verified.
type PackRead struct {
	Pack  index.PackRef
	Blobs []pack.Entry
}

// StreamOptions tune the read pipeline; the zero value is sensible.
type StreamOptions struct {
	// ReadAhead bounds the stored bytes loaded and not yet handed on;
	// 0 means 16 MiB. A single read larger than it still proceeds alone.
	ReadAhead int
	// MaxGap is the largest run of unwanted bytes between two blobs of
	// one pack that is read through rather than skipped with a second
	// request; 0 means 256 KiB.
	MaxGap int
	// MaxRead bounds one ranged read; 0 means 4 MiB, the most it may be.
	MaxRead int
	// Loads bounds concurrent backend reads; 0 means the backend's
	// Connections.
	Loads int
	// Workers bounds concurrent blob decoding; 0 means GOMAXPROCS.
	Workers int
	// Unordered lets StreamBlobs call fn from the decoding goroutines,
	// concurrently and in any order, as soon as each blob is ready: for a
	// restore, which writes every blob at its own place. fn must then be
	// safe for concurrent use.
	Unordered bool
}

func (o StreamOptions) withDefaults(be backends.Backend) StreamOptions {
	if o.ReadAhead <= 0 {
		o.ReadAhead = 16 << 20
	}
	if o.MaxGap <= 0 {
		o.MaxGap = 256 << 10
	}
	if o.MaxRead <= 0 || o.MaxRead > maxReadSize {
		o.MaxRead = maxReadSize
	}
	if o.Loads <= 0 {
		o.Loads = max(be.Properties().Connections, 1)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return o
}

// maxReadSize bounds a ranged read that StreamBlobs makes, and is the size
// of its read buffers.
const maxReadSize = 4 << 20

// segment is one ranged read of a pack covering reads[first:first+n].
type segment struct {
	pack       index.PackRef
	start, end int64 // byte range; end < 0 means the whole pack
	first, n   int
	whole      bool         // check: the whole pack, hashed and its header compared
	want       []pack.Entry // whole segments: what the index lists

	buf     *[]byte // the loaded bytes (nil until loaded)
	data    []byte
	loadErr error
	aead    *crypto.AEAD
	keyErr  error
	loaded  chan struct{}
	packErr error         // whole segments: the pack's own verification
	packOK  chan struct{} // whole segments: packErr is set

	bufCap int64 // whole segments: the capacity of their buffers

	bases  *baseWindow // the prefetched bases of this segment's deltas
	isBase bool        // the blobs are those bases, not the caller's

	seq int // its place in the stream's segments
}

// slot carries one blob from a decoding worker to the in-order consumer.
// Slots are reused, so decoding allocates nothing per blob once warm.
type slot struct {
	seg     *segment
	i       int // index in reads
	last    bool
	scratch []byte
	plain   []byte
	out     []byte
	err     error
	cerr    error // Unordered: what consume returned
	done    chan struct{}
}

// StreamBlobs reads the blobs in reads and calls fn for each, in the order
// given, on the calling goroutine. Neighbouring reads in one pack are
// fetched with one ranged read (MaxGap, MaxRead); reads are fetched ahead
// (ReadAhead) by Loads goroutines and decrypted, decompressed and verified
// by Workers goroutines, so a writer in fn finds the next blob ready.
//
// plain is only valid during the call. A blob that could not be read or
// verified gives fn a *BlobError (plain is nil); other stored copies are
// tried first. An error returned by fn stops the stream and is returned.
func (r *Repository) StreamBlobs(ctx context.Context, reads []BlobRead, o StreamOptions, fn func(i int, plain []byte, err error) error) error {
	if !r.CanRead() {
		return ErrWriteOnly
	}
	o = o.withDefaults(r.be)
	// The bases of delta blobs are read with them, batched: each window of
	// reads is preceded by ranged reads of the packs holding its deltas'
	// bases, decoded once into the window's bases (see prefetchBases).
	all, segs := r.planReads(reads, o)
	return r.stream(ctx, o, segs, nil, func(s *segment, k int) pack.Entry {
		b := all[k]
		return pack.Entry{Type: b.Loc.Type, ID: b.ID, Offset: b.Loc.Offset, Length: b.Loc.Length, RawLength: b.Loc.RawLength, Base: b.Loc.Base}
	}, func(s *slot) error {
		if s.seg.isBase {
			return nil // kept in the window's bases by decodeSlot
		}
		return fn(s.i, s.out, s.err)
	}, func(k int, buf []byte) ([]byte, error) {
		if k >= len(reads) {
			return nil, ErrBlobNotFound // a base: its deltas load it themselves
		}
		return r.loadOther(ctx, reads[k].ID, reads[k].Loc, buf)
	})
}

// segmentsOf merges reads[from:to] into ranged reads: neighbouring blobs
// of one pack in one read.
func segmentsOf(reads []BlobRead, from, to int, o StreamOptions) []*segment {
	var segs []*segment
	for i := from; i < to; {
		loc := reads[i].Loc
		s := &segment{pack: loc.Pack, start: int64(loc.Offset), end: int64(loc.Offset) + int64(loc.Length), first: i, n: 1}
		for j := i + 1; j < to; j++ {
			// The next blobs join while they lie in the same pack near
			// the range read so far, in any order: savers working in
			// parallel store a stream's neighbouring chunks slightly out
			// of order, and a blob may repeat.
			l := reads[j].Loc
			off, end := int64(l.Offset), int64(l.Offset)+int64(l.Length)
			if l.Pack.ID != s.pack.ID || off > s.end+int64(o.MaxGap) || end < s.start-int64(o.MaxGap) {
				break
			}
			start, end := min(s.start, off), max(s.end, end)
			if end-start > int64(o.MaxRead) {
				break
			}
			s.start, s.end = start, end
			s.n++
		}
		// A read that takes the last blob goes on to the pack's end (its
		// header, a few KiB): a transfer read to its end finishes cleanly,
		// where FTP has to drop the connection to stop one early.
		if tail := int64(loc.Pack.Size) - s.end; tail > 0 && tail <= int64(o.MaxGap) && s.n > 0 {
			s.end = int64(loc.Pack.Size)
		}
		segs = append(segs, s)
		i += s.n
	}
	return segs
}

// baseWindowBytes bounds the plaintext of the bases one window of reads
// prefetches. At most a few windows are in flight (the read-ahead holds
// a few segments), so this bounds the memory that bases take.
const baseWindowBytes = 8 << 20

// planReads splits reads into windows whose delta blobs need at most
// baseWindowBytes of bases, and returns the reads with the bases appended
// (indices from len(reads) on) and the segments: for each window, the
// ranged reads of its bases (grouped by pack, in offset order) and then
// its own. Before this, every delta's base was a separate read made by the
// decoder that needed it, which made a restore of the last day of a delta
// series half again as slow as that of a full dump.
func (r *Repository) planReads(reads []BlobRead, o StreamOptions) ([]BlobRead, []*segment) {
	hasDelta := false
	for _, b := range reads {
		if !b.Loc.Base.IsNull() {
			hasDelta = true
			break
		}
	}
	if !hasDelta {
		return reads, segmentsOf(reads, 0, len(reads), o)
	}
	all := reads[:len(reads):len(reads)]
	var segs []*segment
	start := 0
	var win *baseWindow
	var bases []BlobRead
	var winBytes int
	flush := func(end int) {
		if start == end {
			return
		}
		if len(bases) > 0 {
			slices.SortFunc(bases, func(a, b BlobRead) int {
				if c := bytes.Compare(a.Loc.Pack.ID[:], b.Loc.Pack.ID[:]); c != 0 {
					return c
				}
				return int(a.Loc.Offset) - int(b.Loc.Offset)
			})
			first := len(all)
			all = append(all, bases...)
			bsegs := segmentsOf(all, first, len(all), o)
			for _, s := range bsegs {
				s.isBase, s.bases = true, win
			}
			segs = append(segs, bsegs...)
		}
		rsegs := segmentsOf(all, start, end, o)
		if len(bases) > 0 {
			for _, s := range rsegs {
				s.bases = win
			}
		}
		segs = append(segs, rsegs...)
		start, win, bases, winBytes = end, nil, nil, 0
	}
	for i, b := range reads {
		base := b.Loc.Base
		if base.IsNull() {
			continue
		}
		if p := win.lookup(base); p != nil {
			p.refs.Add(1)
			continue
		}
		// The base's first full copy; a base stored only as a delta is
		// damage, which the delta's own load of it reports.
		var loc index.Location
		found := false
		for _, l := range r.Locations(pack.DataBlob, base) {
			if l.Base.IsNull() {
				loc, found = l, true
				break
			}
		}
		if !found {
			continue
		}
		if winBytes > 0 && winBytes+int(loc.RawLength) > baseWindowBytes {
			flush(i)
		}
		if win == nil {
			win = &baseWindow{m: map[id.ID]*prefetched{}, dictOnly: true}
		}
		p := &prefetched{ready: make(chan struct{})}
		p.refs.Add(1)
		win.m[base] = p
		bases = append(bases, BlobRead{ID: base, Loc: loc})
		winBytes += int(loc.RawLength)
	}
	flush(len(reads))
	return all, segs
}

// baseWindow holds the bases prefetched for one window of reads: filled
// by the decoders of the base segments, read by those of the deltas. The
// map is complete before streaming starts; each entry is ready once.
type baseWindow struct {
	m map[id.ID]*prefetched
	// dictOnly: the bases serve only as dictionaries of deltas that are
	// themselves verified, so their own IDs are not recomputed.
	dictOnly bool
}

// prefetched is one base of a window: plain is nil when it could not be
// read (its deltas then load it themselves, which reports the damage).
type prefetched struct {
	ready chan struct{}
	plain []byte
	refs  atomic.Int32 // deltas of the window that have not used it yet
}

func (w *baseWindow) lookup(bid id.ID) *prefetched {
	if w == nil {
		return nil
	}
	return w.m[bid]
}

// base waits for bid's prefetched plaintext; ok is false when the window
// has none for it. The plaintext stays until done(bid) of the window's
// last delta that needs it.
func (w *baseWindow) base(ctx context.Context, bid id.ID) (plain []byte, ok bool) {
	p := w.lookup(bid)
	if p == nil {
		return nil, false
	}
	select {
	case <-ctx.Done():
		return nil, false
	case <-p.ready:
	}
	return p.plain, p.plain != nil
}

// done says that one delta of the window whose base is bid is finished
// with it, used or not (a delta that failed before it needed its base
// counts too, or the base would stay in memory for the whole stream); the
// last one drops the plaintext.
func (w *baseWindow) done(bid id.ID) {
	if p := w.lookup(bid); p != nil && p.refs.Add(-1) == 0 {
		p.plain = nil
	}
}

// fill makes bid's plaintext (or its failure, nil) ready.
func (w *baseWindow) fill(bid id.ID, plain []byte) {
	p := w.lookup(bid)
	if p == nil {
		return
	}
	p.plain = plain // each base is read once per window
	close(p.ready)
}

// BlobFailure is a blob that could not be decoded, and why.
type BlobFailure struct {
	ID  id.ID
	Err error
}

// VerifyPacks reads each pack whole (one read per pack), checks that its
// sealed header lists the same blobs as packs[i].Blobs, end to end up to
// the header, and decodes and verifies every blob, in parallel: then every
// byte of the pack is checked (verifyPackBytes). It
// calls fn once per pack, in order, with the pack's own problem (nil, or an
// error wrapping ErrInvalidData or the backend's error) and the IDs of the
// blobs that failed.
func (r *Repository) VerifyPacks(ctx context.Context, packs []PackRead, o StreamOptions, fn func(i int, packErr error, bad []BlobFailure) error) error {
	if !r.CanRead() {
		return ErrWriteOnly
	}
	if o.ReadAhead <= 0 {
		// Two whole packs: one being decoded while the next is read.
		for _, p := range packs {
			o.ReadAhead = max(o.ReadAhead, 2*int(min(p.Pack.Size, 1<<30)))
		}
	}
	o = o.withDefaults(r.be)
	// Blobs are verified in any order, each as soon as a decoder is free:
	// in order, one large blob held up the slots behind it, and the other
	// core sat idle until it was done (a pack of small media files and a
	// few 8 MiB chunks). Packs are still reported in order.
	o.Unordered = true
	segs := make([]*segment, len(packs))
	first := 0
	for i, p := range packs {
		segs[i] = &segment{pack: p.Pack, start: 0, end: int64(p.Pack.Size), first: first, n: len(p.Blobs), whole: true, want: p.Blobs}
		first += len(p.Blobs)
	}
	packOf := make([]int, 0, first)
	for i, p := range packs {
		for range p.Blobs {
			packOf = append(packOf, i)
		}
	}
	entry := func(k int) pack.Entry {
		p := packs[packOf[k]]
		return p.Blobs[k-segs[packOf[k]].first]
	}
	type failure struct {
		k int
		f BlobFailure
	}
	var (
		mu  sync.Mutex
		bad = make([][]failure, len(packs))
	)
	return r.stream(ctx, o, segs, func(s *segment) error {
		mu.Lock()
		fs := bad[s.seq]
		bad[s.seq] = nil
		mu.Unlock()
		var out []BlobFailure
		if len(fs) > 0 {
			slices.SortFunc(fs, func(a, b failure) int { return a.k - b.k })
			out = make([]BlobFailure, len(fs))
			for i, f := range fs {
				out[i] = f.f
			}
		}
		return fn(s.seq, s.packErr, out)
	}, func(s *segment, k int) pack.Entry {
		return entry(k)
	}, func(s *slot) error {
		if s.err != nil {
			p := packOf[s.i]
			mu.Lock()
			bad[p] = append(bad[p], failure{s.i, BlobFailure{ID: entry(s.i).ID, Err: s.err}})
			mu.Unlock()
		}
		return nil
	}, nil)
}

// stream runs the pipeline over segs: a producer that admits segments
// within the read-ahead budget, Loads loaders, a dispatcher that hands the
// blobs of loaded segments to Workers decoders through a fixed set of
// slots, and the consumer (the caller's goroutine) that takes slots in
// order. retire, when set, is called in order for each segment once all
// its blobs are consumed (and a whole segment's own check is done); blob
// describes the k-th blob; fallback, when set, loads a blob that failed
// from another stored copy.
func (r *Repository) stream(ctx context.Context, o StreamOptions, segs []*segment,
	retire func(s *segment) error,
	blob func(s *segment, k int) pack.Entry,
	consume func(s *slot) error,
	fallback func(k int, buf []byte) ([]byte, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs before wg.Wait

	var largest int64
	whole := false
	for _, s := range segs {
		largest = max(largest, s.end-s.start)
		whole = whole || s.whole
	}
	bufs := &segBufs{limit: int64(o.ReadAhead) + largest}
	if whole {
		// Every buffer of a whole-pack stream fits the largest pack and
		// counts as that against the read-ahead, so that two packs'
		// buffers serve the whole check: none is dropped because it is a
		// little too small for the next pack, and no third is kept
		// (check --read-data peaked at 108 MiB with three).
		for _, s := range segs {
			s.bufCap = largest
		}
		bufs.limit = max(int64(o.ReadAhead), largest)
	}
	budget := newByteBudget(int64(o.ReadAhead))
	loadCh := make(chan *segment)
	for i, s := range segs {
		s.seq = i
		s.loaded = make(chan struct{})
		if s.whole {
			s.packOK = make(chan struct{})
		}
	}
	// Producer: admits segments in order within the budget.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(loadCh)
		for _, s := range segs {
			if !budget.acquire(ctx, s.cost()) {
				return
			}
			select {
			case <-ctx.Done():
				budget.release(s.cost())
				return
			case loadCh <- s:
			}
		}
	}()
	for range o.Loads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range loadCh {
				r.loadSegment(ctx, s, bufs)
				close(s.loaded)
			}
		}()
	}

	nslots := 2*o.Workers + 2
	if o.Unordered {
		// Unordered slots hold no buffers (a decoder lends its own for
		// the blob it works on), so there can be many: a slot is taken
		// back only once the blobs before it are done too, and with few,
		// a large blob held the other decoders up once they had taken
		// the few behind it.
		nslots = max(nslots, unorderedSlots)
	}
	free := make(chan *slot, nslots)
	for range nslots {
		free <- &slot{done: make(chan struct{}, 1)}
	}
	work := make(chan *slot, nslots)
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var scratch, plain []byte // Unordered: this decoder's buffers
			for s := range work {
				if o.Unordered {
					s.scratch, s.plain = scratch, plain
				}
				r.decodeSlot(ctx, s, blob)
				if o.Unordered {
					s.cerr = r.consumeSlot(ctx, s, consume, fallback)
					scratch, plain = s.scratch, s.plain
					s.scratch, s.plain, s.out = nil, nil, nil
				}
				s.done <- struct{}{}
			}
		}()
	}
	ordered := make(chan *slot, nslots)
	// Dispatcher: segments in order, blobs in order, one slot each.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ordered)
		defer close(work)
		for _, s := range segs {
			select {
			case <-ctx.Done():
				return
			case <-s.loaded:
			}
			if s.whole {
				// The pack's hash and header, on a worker, alongside its
				// blobs (decoding leaves the loaded bytes intact). Its
				// slot is not handed to the consumer.
				if s.loadErr != nil {
					s.packErr = s.loadErr
					close(s.packOK)
				} else {
					wg.Add(1)
					go func() {
						defer wg.Done()
						s.packErr = r.verifyPackBytes(s)
						close(s.packOK)
					}()
				}
			}
			for k := s.first; k < s.first+s.n; k++ {
				var sl *slot
				select {
				case <-ctx.Done():
					return
				case sl = <-free:
				}
				sl.seg, sl.i, sl.last = s, k, k == s.first+s.n-1
				select {
				case <-ctx.Done():
					return
				case work <- sl:
				}
				select {
				case <-ctx.Done():
					return
				case ordered <- sl:
				}
			}
		}
	}()

	// Consumer.
	var err error
	next := 0 // segments fully handed on
	done := func(s *segment) error {
		if s.whole {
			<-s.packOK
		}
		var err error
		if retire != nil {
			err = retire(s)
		}
		r.releaseSegment(s, budget, bufs)
		next++
		return err
	}
	releaseUpTo := func(seg *segment) error {
		// Segments without blobs before seg: the dispatcher passed them,
		// so they are loaded.
		for next < len(segs) && segs[next] != seg {
			if err := done(segs[next]); err != nil {
				return err
			}
		}
		return nil
	}
	for sl := range ordered {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sl.done:
		}
		err = releaseUpTo(sl.seg) // earlier segments (and empty ones) are done
		if err != nil {
			cancel()
			return err
		}
		if o.Unordered {
			err = sl.cerr
		} else {
			err = r.consumeSlot(ctx, sl, consume, fallback)
		}
		seg := sl.seg
		last := sl.last
		sl.out, sl.err, sl.cerr = nil, nil, nil
		free <- sl
		if err != nil {
			cancel()
			return err
		}
		if last {
			if err := done(seg); err != nil {
				cancel()
				return err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for next < len(segs) {
		<-segs[next].loaded
		if err := done(segs[next]); err != nil {
			return err
		}
	}
	return nil
}

// unorderedSlots is how many blobs an unordered stream may have handed to
// its decoders ahead of the oldest one not yet done.
const unorderedSlots = 64

// consumeSlot hands a decoded blob to consume, after trying another copy
// of a blob that failed.
func (r *Repository) consumeSlot(ctx context.Context, sl *slot, consume func(*slot) error, fallback func(int, []byte) ([]byte, error)) error {
	if sl.err != nil && fallback != nil && ctx.Err() == nil {
		if out, ferr := fallback(sl.i, sl.plain); ferr == nil {
			sl.out, sl.plain, sl.err = out, out[:0], nil
		}
	}
	return consume(sl)
}

func (r *Repository) releaseSegment(s *segment, b *byteBudget, bufs *segBufs) {
	if s.buf != nil {
		bufs.put(s.buf)
		s.buf, s.data = nil, nil
	}
	b.release(s.cost())
}

// cost is what s counts against the read-ahead: its buffer, which for a
// ranged read is always maxReadSize, so that every buffer fits every read
// and none is allocated again and again (page faults were a tenth of a
// dump's CPU time).
func (s *segment) cost() int64 {
	if s.whole {
		return max(s.end-s.start, s.bufCap)
	}
	return max(s.end-s.start, maxReadSize)
}

// segBufs keeps the buffers of finished reads for reuse. Buffers in use
// and kept add up to at most limit (the read-ahead plus the largest read)
// past which returned buffers are dropped, so memory stays bounded however
// the sizes of reads vary.
type segBufs struct {
	mu    sync.Mutex
	free  []*[]byte
	bytes int64 // kept in free
	inUse int64 // handed out by get
	limit int64
}

// get returns a buffer of length n, reused when one is large enough; a
// new one has capacity minCap if that holds n.
func (p *segBufs) get(n, minCap int) *[]byte {
	p.mu.Lock()
	best := -1
	for i, b := range p.free {
		if cap(*b) >= n && (best < 0 || cap(*b) < cap(*p.free[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := p.free[best]
		p.free[best] = p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
		p.bytes -= int64(cap(*b))
		p.inUse += int64(cap(*b))
		p.mu.Unlock()
		*b = (*b)[:n]
		return b
	}
	// Sizes are rounded up to an eighth of their power of two, so that a
	// kept buffer fits the next read of about the same size (packs differ
	// by a few blobs) instead of being replaced by a new one.
	c := minCap
	if n > c {
		round := 64 << 10
		if n > 8*round {
			round = 1 << (bits.Len(uint(n)) - 3)
		}
		c = (n + round - 1) / round * round
	}
	b := make([]byte, n, c)
	p.inUse += int64(cap(b))
	// Kept buffers too small for this read make room for it.
	for p.bytes+p.inUse > p.limit && len(p.free) > 0 {
		p.bytes -= int64(cap(*p.free[0]))
		p.free = p.free[1:]
	}
	p.mu.Unlock()
	return &b
}

// put keeps b for reuse, or drops it (oldest first) past the limit.
func (p *segBufs) put(b *[]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inUse -= int64(cap(*b))
	p.free = append(p.free, b)
	p.bytes += int64(cap(*b))
	for p.bytes+p.inUse > p.limit && len(p.free) > 0 {
		p.bytes -= int64(cap(*p.free[0]))
		p.free = p.free[1:]
	}
}

// loadSegment reads s's byte range into a pooled buffer and opens its pack
// key. Errors are kept in s for its blobs.
func (r *Repository) loadSegment(ctx context.Context, s *segment, bufs *segBufs) {
	s.aead, s.keyErr = r.PackKey(s.pack)
	if s.keyErr != nil && !s.whole {
		return // nothing to decode with; the blobs fail (or fall back)
	}
	n := int(s.end - s.start)
	bp := bufs.get(n, int(s.cost()))
	data := *bp
	s.buf = bp
	length := n
	if s.whole {
		length = 0 // all of it, and find out when the pack is shorter
	}
	got := 0
	err := r.be.Load(ctx, backends.Handle{Type: backends.PackFile, Name: s.pack.ID.String()}, length, s.start,
		func(rd io.Reader) error {
			got = 0 // fn may be called again on a retry
			for got < len(data) {
				m, err := rd.Read(data[got:])
				got += m
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
			}
			if s.whole {
				// More bytes than the index says: the pack is not what
				// was indexed.
				var one [1]byte
				if m, _ := io.ReadFull(rd, one[:]); m > 0 {
					got++
				}
			}
			return nil
		})
	if err == nil && got != n {
		err = fmt.Errorf("%w: pack %s has %d bytes, index says %d or more", ErrInvalidData, s.pack.ID.Str(), got, n)
		if s.whole && got > n {
			err = fmt.Errorf("%w: pack %s is longer than indexed", ErrInvalidData, s.pack.ID.Str())
		}
		got = min(got, n)
	}
	if err != nil && !errors.Is(err, ErrInvalidData) && !errors.Is(err, backends.ErrUnavailable) &&
		(errors.Is(err, backends.ErrNotExist) || errors.Is(err, backends.ErrRange) ||
			errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
		err = fmt.Errorf("%w: %v", ErrInvalidData, err)
	}
	if errors.Is(err, backends.ErrNotExist) {
		r.MarkMissing(s.pack.ID) // its other copies are tried first from now on
	}
	s.loadErr = err
	s.data = data[:got]
}

// verifyPackBytes checks a whole pack: its trailer and sealed header open
// and the header lists what the index lists, blobs end to end from offset 0
// to the header (pack.Parse). With the pack as long as indexed (loadSegment)
// and every blob opened by the decoders, each byte is then authenticated:
// the blobs by AES-GCM under the pack's own key, the header under the
// metadata key, the trailer by locating the header exactly. The SHA-256 of
// the pack, which its name is, is not computed again: it found nothing
// those do not (the pack key is per pack, so another pack's bytes under
// this name fail to open), and it was a sixth of check --read-data's time.
func (r *Repository) verifyPackBytes(s *segment) error {
	if s.loadErr != nil {
		return s.loadErr
	}
	h, err := pack.Parse(r.keys.Meta, s.data)
	if err != nil {
		return fmt.Errorf("%w: header: %v", ErrInvalidData, err)
	}
	if !sameEntries(h.Entries, s.want) {
		return fmt.Errorf("%w: header does not match the index", ErrInvalidData)
	}
	if s.keyErr != nil {
		return fmt.Errorf("%w: pack key: %v", ErrInvalidData, s.keyErr)
	}
	return nil
}

// decodeSlot opens the blob of slot s from its loaded segment, leaving the
// segment's bytes intact.
func (r *Repository) decodeSlot(ctx context.Context, s *slot, blob func(*segment, int) pack.Entry) {
	seg := s.seg
	e := blob(seg, s.i)
	t, bid, off, length, rawLength := e.Type, e.ID, int64(e.Offset), e.Length, e.RawLength
	berr := func(err error) error { return &BlobError{Type: t, ID: bid, Pack: seg.pack.ID, Err: err} }
	s.out = nil
	if !seg.isBase && !e.Base.IsNull() {
		defer seg.bases.done(e.Base) // on every path: see done
	}
	if seg.isBase {
		// Every base is made ready, read or not, so that no delta waits
		// for it forever: a base that failed is loaded by its deltas.
		defer func() {
			if s.err != nil {
				seg.bases.fill(bid, nil)
			}
		}()
	}
	switch {
	case seg.keyErr != nil:
		if errors.Is(seg.keyErr, ErrWriteOnly) {
			s.err = ErrWriteOnly
		} else {
			s.err = berr(fmt.Errorf("%w: pack key: %v", ErrInvalidData, seg.keyErr))
		}
		return
	case int64(length) > int64(MaxStoredSize(t)) || int64(rawLength) > int64(MaxRawSize(t)):
		s.err = berr(fmt.Errorf("%w: index claims a blob of %d bytes", ErrInvalidData, length))
		return
	}
	lo, hi := off-seg.start, off-seg.start+int64(length)
	if lo < 0 || hi > int64(len(seg.data)) {
		err := seg.loadErr
		if err == nil {
			err = fmt.Errorf("%w: blob at %d+%d is outside the %d bytes read", ErrInvalidData, off, length, len(seg.data))
		}
		s.err = berr(err)
		return
	}
	if seg.isBase {
		// A base for the window's deltas, into a buffer of its own (it
		// outlives the slot); a base must be a full blob (depth 1).
		plain := make([]byte, 0, int(e.RawLength)+zstdSlack)
		out, inScratch, err := r.decodeBlob(ctx, seg.aead, e, seg.data[lo:hi], &s.scratch, &plain, 1, true, seg.bases)
		if err == nil && inScratch {
			out = append(make([]byte, 0, len(out)), out...)
		}
		if err != nil {
			out = nil
		}
		seg.bases.fill(bid, out)
		s.err = nil
		return
	}
	// A delta's base is loaded through the index and must be the one
	// the index names.
	out, _, err := r.decodeBlob(ctx, seg.aead, e, seg.data[lo:hi], &s.scratch, &s.plain, 0, true, seg.bases)
	if err != nil {
		var be *BlobError
		if errors.As(err, &be) && be.Pack.IsNull() {
			be.Pack = seg.pack.ID
		}
		s.err = err
		return
	}
	s.out, s.err = out, nil
}

// loadOther loads a blob that failed in pack failed.Pack from any other
// copy the index knows.
func (r *Repository) loadOther(ctx context.Context, bid id.ID, failed index.Location, buf []byte) ([]byte, error) {
	var lastErr error = ErrBlobNotFound
	for _, loc := range r.Locations(failed.Type, bid) {
		// A delta that failed is tried again where it failed: its base
		// came from the prefetch, unchecked, and the load here takes a
		// base whose ID is checked, from any of its copies.
		if loc.Pack.ID == failed.Pack.ID && loc.Offset == failed.Offset && failed.Base.IsNull() {
			continue
		}
		out, err := r.loadFromDepth(ctx, bid, loc, buf, 0)
		if err == nil {
			return out, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// byteBudget is a counting semaphore over bytes. A request larger than the
// whole budget is admitted when nothing else is held.
type byteBudget struct {
	mu    sync.Mutex
	cond  chan struct{}
	limit int64
	used  int64
}

func newByteBudget(limit int64) *byteBudget {
	return &byteBudget{limit: limit, cond: make(chan struct{})}
}

func (b *byteBudget) acquire(ctx context.Context, n int64) bool {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			return true
		}
		wait := b.cond
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-wait:
		}
	}
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.cond)
	b.cond = make(chan struct{})
	b.mu.Unlock()
}

// sameEntries reports whether a and b list the same blobs at the same
// places, in any order.
func sameEntries(a, b []pack.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[id.ID]pack.Entry, len(a))
	for _, e := range a {
		m[e.ID] = e
	}
	for _, e := range b {
		if m[e.ID] != e {
			return false
		}
	}
	return true
}
