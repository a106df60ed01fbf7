package fuzz

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/hoard-backup/hoard/chunk"
)

// fuzzParams returns a small profile, so that short inputs give several chunks.
func fuzzParams() chunk.Params { return chunk.Params{MinSize: 64, MaxSize: 4096, AverageBits: 10} }

// chunkAll returns the lengths of the chunks of rd.
func chunkAll(t *testing.T, rd io.Reader, pol chunk.Pol, data []byte) []int {
	t.Helper()
	p := fuzzParams()
	c := chunk.New(rd, pol, p)
	var (
		lengths []int
		joined  []byte
		buf     []byte
	)
	for {
		ch, err := c.Next(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ch) == 0 {
			t.Fatal("empty chunk")
		}
		lengths = append(lengths, len(ch))
		joined = append(joined, ch...)
		buf = ch
	}
	if !bytes.Equal(joined, data) {
		t.Fatalf("chunks of %d bytes do not reassemble the input of %d", len(joined), len(data))
	}
	for i, n := range lengths {
		if n > int(p.MaxSize) || (i < len(lengths)-1 && n < int(p.MinSize)) {
			t.Fatalf("chunk %d of %d has %d bytes, bounds %d..%d", i, len(lengths), n, p.MinSize, p.MaxSize)
		}
	}
	return lengths
}

// FuzzChunker splits arbitrary input: the chunks reassemble the input, each
// but the last lies within the profile's bounds, and the cut points do not
// depend on how the reader hands out the bytes.
func FuzzChunker(f *testing.F) {
	pol := testPol(f)
	f.Add([]byte{})
	f.Add([]byte("a"))
	f.Add(bytes.Repeat([]byte{0}, 10000))
	seed := make([]byte, 20000)
	for i := range seed {
		seed[i] = byte(i*7919 + i>>5)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		a := chunkAll(t, bytes.NewReader(data), pol, data)
		b := chunkAll(t, iotest.HalfReader(iotest.OneByteReader(bytes.NewReader(data))), pol, data)
		if len(a) != len(b) {
			t.Fatalf("cuts depend on read sizes: %v, %v", a, b)
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("cuts depend on read sizes: %v, %v", a, b)
			}
		}
	})
}
