package repo

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
)

// Delta blobs (docs/FORMAT.md, section 14): a new chunk stored as a zstd
// frame whose raw dictionary is the plaintext of an older chunk, its base.
// Chains are one step long: a base is always a full blob. The idea of a
// previous version as dictionary is zstd's --patch-from.

// ErrBaseMissing means a delta blob's base is in no index.
var ErrBaseMissing = errors.New("repo: the base of a delta blob is missing")

// BaseSource gives the plaintext of blobs the host keeps itself (a local
// cache of the last version of each stream), so that a write-only host,
// which cannot read the repository, can still store deltas. Get returns
// false when it does not have the blob; what it returns is checked against
// the ID. Implementations are safe for concurrent use.
type BaseSource interface {
	Get(bid id.ID) ([]byte, bool)
}

// SetBaseSource makes SaveDataBlob take bases from s before the repository.
func (r *Repository) SetBaseSource(s BaseSource) { r.baseSource = s }

// deltaPrefix is the compression byte and the base ID in front of a delta's frame.
const deltaPrefix = 1 + 32

// maxBaseCache bounds the plaintexts of bases kept in memory. Deltas of
// one version rarely share a base (each chunk has its own), so a few
// suffice: the chunks a change split in two, read one after the other.
const maxBaseCache = 4 << 20

// baseCache keeps the plaintexts of recently used bases: the consecutive
// deltas of a series share them, and a restore reads each once.
type baseCache struct {
	mu    sync.Mutex
	ll    *list.List // of *baseEntry, most recent first
	items map[id.ID]*list.Element
	size  int
}

type baseEntry struct {
	id    id.ID
	plain []byte
}

func newBaseCache() *baseCache { return &baseCache{ll: list.New(), items: map[id.ID]*list.Element{}} }

func (c *baseCache) get(bid id.ID) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[bid]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*baseEntry).plain, true
	}
	return nil, false
}

// put keeps plain (which the cache owns from now on) as bid's plaintext.
func (c *baseCache) put(bid id.ID, plain []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[bid]; ok || len(plain) > maxBaseCache/4 {
		return
	}
	c.items[bid] = c.ll.PushFront(&baseEntry{id: bid, plain: plain})
	c.size += len(plain)
	for c.size > maxBaseCache {
		e := c.ll.Back()
		be := e.Value.(*baseEntry)
		c.ll.Remove(e)
		delete(c.items, be.id)
		c.size -= len(be.plain)
	}
}

// deltaCodecs are zstd encoders and decoders for deltas, one per worker:
// each use sets its own dictionary, so they are not shared.
// An encoder's window must hold the base and the new chunk; its memory
// grows with the window, so small chunks (the dump profile's are at most
// 1 MiB) use encoders with a small one.
type deltaCodecs struct {
	enc [len(deltaWindows)]chan *zstd.Encoder // by window
	dec chan *zstd.Decoder
}

// deltaWindows are the encoders' windows, from one for two chunks of the
// dump profile's average size to one for two chunks of chunk.MaxSize.
var deltaWindows = [3]int{512 << 10, 2 << 20, 16 << 20}

func newDeltaCodecs(n int) *deltaCodecs {
	c := &deltaCodecs{dec: make(chan *zstd.Decoder, n)}
	for k := range c.enc {
		c.enc[k] = make(chan *zstd.Encoder, n)
	}
	return c
}

// encoder returns an encoder whose window holds size bytes (a base and a
// chunk), and its class for putEncoder.
func (c *deltaCodecs) encoder(size int) (*zstd.Encoder, int) {
	k := 0
	for k < len(deltaWindows)-1 && size > deltaWindows[k] {
		k++
	}
	select {
	case e := <-c.enc[k]:
		return e, k
	default:
	}
	// Low memory: the history buffer is the window plus one block, not
	// twice the window (klauspost/compress keeps room to slide it, which
	// EncodeAll of one chunk never needs). The output is the same.
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), zstd.WithWindowSize(deltaWindows[k]), zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic(err) // only on invalid options, which are constant here
	}
	return e, k
}

func (c *deltaCodecs) putEncoder(e *zstd.Encoder, k int) {
	select {
	case c.enc[k] <- e:
	default:
	}
}

func (c *deltaCodecs) decoder() *zstd.Decoder {
	select {
	case d := <-c.dec:
		return d
	default:
	}
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxTreeSize+1<<20),
		zstd.WithDecoderMaxWindow(MaxTreeSize+1<<20))
	if err != nil {
		panic(err)
	}
	return d
}

func (c *deltaCodecs) putDecoder(d *zstd.Decoder) {
	select {
	case c.dec <- d:
	default:
	}
}

// encodeDelta appends to dst the payload of plaintext as a delta against
// base (whose ID is baseID).
func (r *Repository) encodeDelta(dst []byte, baseID id.ID, base, plaintext []byte) []byte {
	e, k := r.deltas.encoder(len(base) + len(plaintext))
	defer r.deltas.putEncoder(e, k)
	// ResetWithOptions only fails on invalid options; a base is at most
	// chunk.MaxSize bytes.
	_ = e.ResetWithOptions(nil, zstd.WithEncoderDictRaw(0, base))
	dst = append(dst, pack.CompressionDelta)
	dst = append(dst, baseID[:]...)
	return e.EncodeAll(plaintext, dst)
}

// decodeDelta decodes a delta's frame against base into buf[:0], refusing
// more than rawLength bytes.
func (r *Repository) decodeDelta(frame, base []byte, rawLength uint32, buf []byte) ([]byte, error) {
	d := r.deltas.decoder()
	defer r.deltas.putDecoder(d)
	if err := d.ResetWithOptions(nil, zstd.WithDecoderDictRaw(0, base)); err != nil && !errors.Is(err, zstd.ErrDecoderNilInput) {
		return nil, err
	}
	if cap(buf) < int(rawLength) {
		buf = make([]byte, 0, int(rawLength)+zstdSlack)
	}
	// The frame must declare its size, and that must be rawLength: nothing
	// larger is allocated for a hostile frame.
	h := zstd.Header{}
	if err := h.Decode(frame); err != nil {
		return nil, err
	}
	if !h.HasFCS || h.FrameContentSize != uint64(rawLength) {
		return nil, fmt.Errorf("frame content size %d (declared: %v), %d expected", h.FrameContentSize, h.HasFCS, rawLength)
	}
	return d.DecodeAll(frame, buf[:0])
}

// SaveDataBlob stores plaintext as a data blob with ID bid, as a delta
// against base when that is possible and pays (docs/FORMAT.md, section
// 14.2): the repository is of version 2, base is a data blob the host can
// read (from the repository with a full key, or from SetBaseSource), and the
// delta is small next to the full blob. If base is itself a delta, its own
// base is used, so that chains stay one step long. A null base stores a
// full blob, as SaveBlobWithID does.
func (r *Repository) SaveDataBlob(ctx context.Context, bid id.ID, plaintext []byte, base id.ID) (SaveResult, error) {
	if base.IsNull() || base == bid || r.cfg.Version < 2 {
		return r.saveBlob(ctx, pack.DataBlob, bid, plaintext, false)
	}
	res := SaveResult{ID: bid}
	if r.idx.Has(pack.DataBlob, bid) {
		res.Known = true
		return res, nil
	}
	locs := r.idx.Lookup(pack.DataBlob, base)
	if len(locs) == 0 {
		return r.saveBlob(ctx, pack.DataBlob, bid, plaintext, false)
	}
	if b := locs[0].Base; !b.IsNull() {
		base = b
		if base == bid || len(r.idx.Lookup(pack.DataBlob, base)) == 0 {
			return r.saveBlob(ctx, pack.DataBlob, bid, plaintext, false)
		}
	}
	basePlain, ok := r.basePlaintext(ctx, base)
	if !ok {
		return r.saveBlob(ctx, pack.DataBlob, bid, plaintext, false)
	}
	return r.saveDelta(ctx, bid, plaintext, base, basePlain)
}

// basePlaintext returns the plaintext of a full data blob for use as a
// base when writing: from the cache, the host's own copies, or the
// repository if the key can read it.
func (r *Repository) basePlaintext(ctx context.Context, base id.ID) ([]byte, bool) {
	if p, ok := r.bases.get(base); ok {
		return p, true
	}
	if r.baseSource != nil {
		if p, ok := r.baseSource.Get(base); ok && r.BlobID(p) == base {
			r.bases.put(base, p)
			return p, true
		}
	}
	if !r.CanRead() {
		return nil, false
	}
	p, err := r.loadBase(ctx, base)
	if err != nil {
		r.log.Debug("delta: base not readable, storing a full blob", "base", base.Str(), "err", err)
		return nil, false
	}
	return p, true
}

// saveDelta stores plaintext as a delta against basePlain, or as a full
// blob when the delta does not pay (docs/FORMAT.md, section 14.2).
func (r *Repository) saveDelta(ctx context.Context, bid id.ID, plaintext []byte, base id.ID, basePlain []byte) (SaveResult, error) {
	bp := r.payloads.get()
	if bp == nil {
		bp = new([]byte)
	}
	payload := r.encodeDelta((*bp)[:0], base, basePlain, plaintext)
	*bp = payload
	// zstd leaves the content size out of the frame of a small input
	// encoded with a dictionary (under 256 bytes or so); readers require
	// it, as the bound on what they allocate: such a chunk is stored full.
	var h zstd.Header
	if err := h.Decode(payload[deltaPrefix:]); err != nil || !h.HasFCS || h.FrameContentSize != uint64(len(plaintext)) {
		r.payloads.put(bp)
		return r.saveBlob(ctx, pack.DataBlob, bid, plaintext, false)
	}
	frame := len(payload) - deltaPrefix
	if frame > len(plaintext)/12 {
		// Large for a delta: compare with the full blob, a quarter of
		// which is the most a delta may take (a re-key otherwise).
		full := r.compress(plaintext)
		better := frame*4 <= len(*full)
		r.payloads.put(full)
		if !better {
			r.payloads.put(bp)
			return r.saveBlob(ctx, pack.DataBlob, bid, plaintext, false)
		}
	}
	res, err := r.savePayload(ctx, pack.DataBlob, bid, bp, len(plaintext), base, false)
	if err == nil && !res.Known {
		res.Base = base
	}
	return res, err
}

// loadBase returns the plaintext of a full data blob that is the base of a
// delta, from the cache or the repository. A base that is itself a delta
// is damage: chains are one step long.
func (r *Repository) loadBase(ctx context.Context, base id.ID) ([]byte, error) {
	if p, ok := r.bases.get(base); ok {
		return p, nil
	}
	locs := r.Locations(pack.DataBlob, base) // packs found missing last
	if len(locs) == 0 {
		return nil, &BlobError{Type: pack.DataBlob, ID: base, Err: ErrBaseMissing}
	}
	var firstErr error
	for _, loc := range locs {
		if !loc.Base.IsNull() {
			err := &BlobError{Type: pack.DataBlob, ID: base, Pack: loc.Pack.ID, Err: fmt.Errorf("%w: a base that is a delta", ErrInvalidData)}
			firstErr = firstOf(firstErr, err)
			continue
		}
		p, err := r.loadFromDepth(ctx, base, loc, nil, 1)
		if err == nil {
			r.bases.put(base, p)
			return p, nil
		}
		if errors.Is(err, ErrWriteOnly) || ctx.Err() != nil {
			return nil, err
		}
		firstErr = firstOf(firstErr, err)
	}
	return nil, firstErr
}

func firstOf(first, err error) error {
	if first == nil {
		return err
	}
	return first
}
