package chunk_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/hoard-backup/hoard/chunk"
)

// TestPeekTake interleaves Peek and Take with Next and NextOne, which
// must give Next's cuts; taking a true chunk
// leaves the remaining cuts as Next alone finds them; taking bytes that do
// not end at a cut makes the chunker start afresh there, as a new stream
// would; the stream is returned whole either way.
func TestPeekTake(t *testing.T) {
	pol := testPol(t)
	p := chunk.Params{MinSize: 4 << 10, MaxSize: 64 << 10, AverageBits: 14}
	data := randomData(7, 40<<20) // larger than a round, so Peek must refill
	want := chunks(t, data, pol, p)
	if len(want) < 100 {
		t.Fatalf("%d chunks", len(want))
	}
	for _, tc := range []struct {
		name string
		// take returns how many bytes to take at chunk number i, given the
		// true next chunk length n, or 0 to call Next, -1 to call NextOne.
		take func(i, n int) int
		same bool
	}{
		{"every third chunk taken", func(i, n int) int { return when(i%3 == 0, n) }, true},
		{"all taken", func(i, n int) int { return n }, true},
		{"one wrong take", func(i, n int) int { return when(i == 50, n-100) }, false},
		{"one by one", func(i, n int) int { return -1 }, true},
		{"one by one, Next and Take mixed", func(i, n int) int { return [...]int{-1, 0, n, -1, -1, n}[i%6] }, true},
	} {
		c := chunk.New(bytes.NewReader(data), pol, p)
		var got []int
		var out []byte
		pos := 0
		for i := 0; ; i++ {
			next := 0
			if k := len(got); k < len(want) && pos == sum(want[:k]) {
				next = want[k]
			}
			if n := tc.take(i, next); n > 0 {
				b, err := c.Peek(n)
				if err != nil || len(b) != n || !bytes.Equal(b, data[pos:pos+n]) {
					t.Fatalf("%s: Peek(%d) at %d: %d bytes, %v", tc.name, n, pos, len(b), err)
				}
				out = append(out, b...)
				c.Take(n)
				got, pos = append(got, n), pos+n
				continue
			}
			var ch []byte
			var err error
			if tc.take(i, next) < 0 {
				ch, err = c.NextOne(nil)
			} else {
				ch, err = c.Next(nil)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ch...)
			got, pos = append(got, len(ch)), pos+len(ch)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("%s: the chunks do not make up the stream", tc.name)
		}
		if tc.same && !slices.Equal(got, want) {
			t.Errorf("%s: %d chunks, want %d", tc.name, len(got), len(want))
		}
		if !tc.same {
			// After the wrong take at chunk 50, the chunker restarts at
			// its end: the rest is a fresh stream's cuts.
			at := sum(want[:50]) + want[50] - 100
			fresh := chunks(t, data[at:], pol, p)
			if !slices.Equal(got[51:], fresh) {
				t.Errorf("%s: after the wrong take, cuts differ from a stream starting there", tc.name)
			}
		}
	}
	// Peek at the end returns what is left.
	c := chunk.New(bytes.NewReader(data[:1000]), pol, p)
	if b, err := c.Peek(5000); err != nil || len(b) != 1000 {
		t.Fatalf("Peek past the end: %d bytes, %v", len(b), err)
	}
}

// when returns n if ok, else 0.
func when(ok bool, n int) int {
	if ok {
		return n
	}
	return 0
}

func sum(s []int) int {
	n := 0
	for _, v := range s {
		n += v
	}
	return n
}
