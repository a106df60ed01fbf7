// Package chunk splits streams into content-defined chunks with
// restic/chunker, using a per-repository polynomial and size profile, so that
// an insertion in the middle of a dump moves only the chunks around it.
package chunk

import (
	"errors"
	"fmt"
	"io"

	"github.com/restic/chunker"
)

// MaxSize is the largest chunk any profile may produce; buffers are sized from it.
const MaxSize = 8 << 20

// Params is a size profile: the bounds and the average of chunk sizes.
type Params struct {
	MinSize     uint `json:"min_size"`
	MaxSize     uint `json:"max_size"`
	AverageBits int  `json:"average_bits"`
}

// DefaultParams returns restic's profile: 512 KiB to 8 MiB, about 1 MiB on average.
func DefaultParams() Params {
	return Params{MinSize: 512 << 10, MaxSize: 8 << 20, AverageBits: 20}
}

// Validate reports a profile the chunker cannot honour.
func (p Params) Validate() error {
	switch {
	case p.MinSize < 64 || p.MinSize > p.MaxSize:
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
	var v uint64
	if _, err := fmt.Sscanf(s, "%x", &v); err != nil {
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
	c *chunker.Chunker
}

// New returns a chunker over rd.
func New(rd io.Reader, pol Pol, p Params) *Chunker {
	c := chunker.NewWithBoundaries(rd, pol, p.MinSize, p.MaxSize)
	c.SetAverageBits(p.AverageBits)
	return &Chunker{c: c}
}

// Next returns the next chunk, stored in buf (reused when large enough), or
// io.EOF after the last one. The returned slice is valid until the next call.
func (c *Chunker) Next(buf []byte) ([]byte, error) {
	ch, err := c.c.Next(buf)
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if err != nil {
		return nil, err
	}
	return ch.Data, nil
}
