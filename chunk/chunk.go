// Package chunk splits streams into content-defined chunks, using a
// per-repository polynomial and size profile, so that an insertion in the
// middle of a dump moves only the chunks around it.
//
// The cut points are exactly those of restic/chunker (a Rabin fingerprint
// over a 64-byte window; a chunk ends after the first byte at which the
// chunk is at least MinSize long and the fingerprint's low AverageBits bits
// are zero, or when it reaches MaxSize), computed by restic/chunker itself.
// What this package adds is parallelism: a large block is cut into
// segments, and each segment is chunked by its own goroutine as if a chunk
// started there. Content-defined cuts resynchronise: once the true chain of
// cuts, continued from the previous segment, meets a cut of the next
// segment, every later cut of that segment is right too. Only those short
// stretches are scanned twice. That lifts chunking off the single core that
// bounds restic when the data is already stored (the daily-dump case).
package chunk

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"sync"

	"github.com/restic/chunker"
)

// MaxSize is the largest chunk any profile may produce; buffers are sized from it.
const MaxSize = 8 << 20

// windowSize is the width of the rolling fingerprint, as in restic/chunker.
const windowSize = 64

// Params is a size profile: the bounds and the average of chunk sizes.
type Params struct {
	MinSize     uint `json:"min_size"`
	MaxSize     uint `json:"max_size"`
	AverageBits int  `json:"average_bits"`
}

// DefaultParams returns restic's profile: 512 KiB to 8 MiB, about 1 MiB on
// average. It is repo.Init's default; hoard init asks for DumpParams unless
// told "large".
func DefaultParams() Params {
	return Params{MinSize: 512 << 10, MaxSize: 8 << 20, AverageBits: 20}
}

// DumpParams returns a profile of smaller chunks for repositories of daily
// database dumps: 64 KiB to 1 MiB, about 128 KiB on average. A day's
// changed rows are spread over a dump (a database puts new and updated
// rows into free space anywhere in a table, and dumps write rows in that
// order), so smaller chunks store fewer unchanged bytes around them:
// bench/db-series.sh measured about 40 % of the 1 MiB profile's new
// bytes per day. Most media files are smaller than a chunk of either
// profile, so only large files pay for it, in more blobs.
func DumpParams() Params {
	return Params{MinSize: 64 << 10, MaxSize: 1 << 20, AverageBits: 17}
}

// Profile returns the size profile named "dump" (DumpParams, what hoard
// init uses unless told otherwise) or "large" (DefaultParams, restic's).
func Profile(name string) (Params, error) {
	switch name {
	case "dump":
		return DumpParams(), nil
	case "large":
		return DefaultParams(), nil
	}
	return Params{}, fmt.Errorf("chunk: unknown size profile %q (dump or large)", name)
}

// Validate reports a profile the chunker cannot honour.
func (p Params) Validate() error {
	switch {
	case p.MinSize < windowSize || p.MinSize > p.MaxSize:
		return fmt.Errorf("chunk: invalid sizes min %d max %d", p.MinSize, p.MaxSize)
	case p.MaxSize > MaxSize:
		return fmt.Errorf("chunk: max size %d over %d", p.MaxSize, MaxSize)
	case p.AverageBits < 10 || p.AverageBits > 22:
		return fmt.Errorf("chunk: average bits %d out of range 10..22", p.AverageBits)
	}
	return nil
}

// Pol is a chunker polynomial.
type Pol = chunker.Pol

// RandomPolynomial returns a new random irreducible polynomial.
func RandomPolynomial() (Pol, error) { return chunker.RandomPolynomial() }

// ParsePolynomial decodes a polynomial in the hex form Pol.String prints and
// checks that it is one the chunker accepts.
func ParsePolynomial(s string) (Pol, error) {
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("chunk: polynomial %q: %w", s, err)
	}
	p := Pol(v)
	if p.Deg() != 53 || !p.Irreducible() {
		return 0, fmt.Errorf("chunk: polynomial %q is not an irreducible polynomial of degree 53", s)
	}
	return p, nil
}

// Chunker yields the chunks of one stream. It is not safe for concurrent use.
type Chunker struct {
	rd      io.Reader
	pol     Pol
	p       Params
	workers int
	round   int // bytes chunked per parallel round

	buf  []byte // buf[off:] are the unconsumed bytes; buf[off] starts the next chunk
	off  int
	cuts []int // known cut positions in buf (end of a chunk, exclusive), ascending
	eof  bool
	tail bool // eof, and cuts holds every cut up to the end of the stream
	err  error
}

// New returns a chunker over rd that chunks with up to GOMAXPROCS goroutines.
func New(rd io.Reader, pol Pol, p Params) *Chunker {
	workers := runtime.GOMAXPROCS(0)
	return &Chunker{rd: rd, pol: pol, p: p, workers: workers, round: roundSize(workers)}
}

// roundSize is the bytes chunked per parallel round: 4 MiB per worker
// (at least 8 MiB), enough that re-scanning the start of each worker's
// segment costs a few per cent, and no more, since the round's buffer is
// a large part of a backup's memory.
func roundSize(workers int) int { return max(workers, 2) * 4 << 20 }

// Reset starts a new stream, keeping the buffers.
func (c *Chunker) Reset(rd io.Reader) {
	c.rd, c.buf, c.off, c.cuts, c.eof, c.tail, c.err = rd, c.buf[:0], 0, c.cuts[:0], false, false, nil
}

// SetWorkers bounds the goroutines that chunk in parallel (at least 1).
func (c *Chunker) SetWorkers(n int) {
	c.workers = max(n, 1)
}

func (c *Chunker) newBase() *chunker.BaseChunker {
	return chunker.NewBase(c.pol, chunker.WithBaseBoundaries(c.p.MinSize, c.p.MaxSize),
		chunker.WithBaseAverageBits(c.p.AverageBits))
}

// Next returns the next chunk, copied into buf (reused when large enough),
// or io.EOF after the last one.
func (c *Chunker) Next(buf []byte) ([]byte, error) {
	for len(c.cuts) == 0 {
		if c.eof && c.tail {
			if c.off == len(c.buf) {
				return nil, io.EOF
			}
			// The rest of the stream is the last chunk.
			c.cuts = append(c.cuts, len(c.buf))
			break
		}
		if !c.eof {
			if err := c.fill(); err != nil {
				return nil, err
			}
		}
		c.cuts = c.chain(c.off, len(c.buf))
		c.tail = c.eof
	}
	end := c.cuts[0]
	c.cuts = c.cuts[1:]
	out := append(buf[:0], c.buf[c.off:end]...)
	c.off = end
	return out, nil
}

// NextOne is Next for a caller that expects to need only the next chunk
// or few (one following an earlier backup of the stream, after a change):
// it searches for the next cut alone, sequentially, instead of chunking
// the whole buffered round in parallel.
func (c *Chunker) NextOne(buf []byte) ([]byte, error) {
	if len(c.cuts) > 0 || c.tail {
		return c.Next(buf)
	}
	if len(c.buf)-c.off < int(c.p.MaxSize) && !c.eof {
		if err := c.fill(); err != nil {
			return nil, err
		}
	}
	if c.off == len(c.buf) {
		return c.Next(buf) // the end, or an error
	}
	// With MaxSize bytes buffered (or the stream's end) there is a cut.
	if n := c.newBase().NextSplitPoint(c.buf[c.off:]); n > 0 {
		c.cuts = append(c.cuts[:0], c.off+n)
	} else {
		c.cuts, c.tail = append(c.cuts[:0], len(c.buf)), true
	}
	return c.Next(buf)
}

// Peek returns the next n bytes of the stream (fewer only at its end)
// without consuming them; they are valid until the next call. With Take it
// lets a caller recognise a chunk it expects without searching for cut
// points (see Take).
func (c *Chunker) Peek(n int) ([]byte, error) {
	if n > int(c.p.MaxSize) {
		n = int(c.p.MaxSize)
	}
	if len(c.buf)-c.off < n && !c.eof {
		if err := c.fill(); err != nil {
			return nil, err
		}
	}
	return c.buf[c.off:min(c.off+n, len(c.buf))], nil
}

// PeekAhead is Peek for up to a round's worth of bytes (Round): room for
// several chunks expected one after the other, to recognise them in
// parallel.
func (c *Chunker) PeekAhead(n int) ([]byte, error) {
	n = min(n, c.round)
	if len(c.buf)-c.off < n && !c.eof {
		if err := c.fill(); err != nil {
			return nil, err
		}
	}
	return c.buf[c.off:min(c.off+n, len(c.buf))], nil
}

// Round is the most bytes PeekAhead returns.
func (c *Chunker) Round() int { return c.round }

// Take consumes the next n bytes (at most what Peek returned) as one chunk.
//
// The caller must know that they are one: a chunk's cut depends only on
// its own bytes, because the fingerprint restarts at every cut, so bytes
// equal to those of a chunk that the same polynomial and profile cut
// elsewhere (one that did not end at its stream's end) end at the same
// cut here too. That is how an earlier backup of a stream makes chunking
// it again nearly free. Should the caller be wrong, the stream is still
// stored whole; only later cuts differ from what Next alone would give.
func (c *Chunker) Take(n int) {
	end := c.off + n
	k := sort.SearchInts(c.cuts, end)
	if k < len(c.cuts) && c.cuts[k] == end {
		c.cuts = c.cuts[k+1:]
	} else {
		// Not a cut the chain knows: start it again at end.
		c.cuts, c.tail = c.cuts[:0], false
	}
	c.off = end
}

// fill reads until a round's worth of bytes (or the stream's end) is
// buffered past off, moving the unconsumed bytes to the front first.
func (c *Chunker) fill() error {
	if c.err != nil {
		return c.err
	}
	if c.off > 0 {
		n := copy(c.buf, c.buf[c.off:])
		c.buf = c.buf[:n]
		for i := range c.cuts {
			c.cuts[i] -= c.off
		}
		c.off = 0
	}
	want := c.round + int(c.p.MaxSize)
	for len(c.buf) < want && !c.eof {
		// Grow gradually so that small files cost little.
		if len(c.buf) == cap(c.buf) {
			nb := make([]byte, len(c.buf), min(max(2*cap(c.buf), 64<<10), want))
			copy(nb, c.buf)
			c.buf = nb
		}
		n, err := c.rd.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		if errors.Is(err, io.EOF) {
			c.eof = true
		} else if err != nil {
			c.err = err
			return err
		}
	}
	return nil
}

// seqCuts chunks buf[from:to] sequentially as if a chunk started at from
// and returns the cut positions; bytes after the last cut are left.
func (c *Chunker) seqCuts(from, to int, out []int) []int {
	b := c.newBase()
	for from < to {
		n := b.NextSplitPoint(c.buf[from:to])
		if n < 0 {
			break
		}
		from += n
		out = append(out, from)
	}
	return out
}

// chain returns the true cuts of buf[from:to], a chunk starting at from.
func (c *Chunker) chain(from, to int) []int {
	w := c.workers
	if to-from < 4*int(c.p.MaxSize) {
		w = 1
	}
	if w == 1 {
		return c.seqCuts(from, to, c.cuts[:0])
	}
	starts := make([]int, w+1)
	for i := range starts {
		starts[i] = from + i*(to-from)/w
	}
	seg := make([][]int, w)
	var wg sync.WaitGroup
	for i := 0; i < w; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seg[i] = c.seqCuts(starts[i], starts[i+1], nil)
		}()
	}
	wg.Wait()
	out := append(c.cuts[:0], seg[0]...)
	pos := from
	if len(out) > 0 {
		pos = out[len(out)-1]
	}
	// Continue the true chain from pos until it meets a segment's cut.
	b := c.newBase()
	p := pos
	for i := 1; i < w; {
		n := b.NextSplitPoint(c.buf[p:to])
		if n < 0 {
			return out // no further cut: the rest waits for more data
		}
		p += n
		out = append(out, p)
		for i < w && p >= starts[i+1] {
			i++ // passed a whole segment without meeting it
		}
		if i >= w {
			break
		}
		if p < starts[i] {
			continue
		}
		if k := sort.SearchInts(seg[i], p); k < len(seg[i]) && seg[i][k] == p {
			out = append(out, seg[i][k+1:]...)
			if len(seg[i]) > 0 {
				p = seg[i][len(seg[i])-1]
			}
			i++
			b = c.newBase()
		}
	}
	// The last segment's tail: chunk on from the last cut to the end.
	return c.seqCuts(p, to, out)
}
