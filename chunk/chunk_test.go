package chunk_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/chunk"
)

// testPolynomial is the polynomial of FORMAT.md's example key file.
const testPolynomial = "3da3358b4dc173"

func testPol(t *testing.T) chunk.Pol {
	t.Helper()
	p, err := chunk.ParsePolynomial(testPolynomial)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// randomData returns n bytes from a ChaCha8 stream, which is the same on
// every platform and Go version.
func randomData(seed uint64, n int) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// chunks splits data and returns the chunks' lengths, checking that they
// reassemble data and respect p's bounds.
func chunks(t *testing.T, data []byte, pol chunk.Pol, p chunk.Params) []int {
	t.Helper()
	c := chunk.New(bytes.NewReader(data), pol, p)
	var (
		lengths []int
		joined  []byte
		buf     = make([]byte, 0, p.MaxSize)
	)
	for {
		ch, err := c.Next(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lengths = append(lengths, len(ch))
		joined = append(joined, ch...)
	}
	if !bytes.Equal(joined, data) {
		t.Fatalf("%d chunks of %d bytes in all do not reassemble %d bytes", len(lengths), len(joined), len(data))
	}
	for i, n := range lengths {
		last := i == len(lengths)-1
		if n == 0 || uint(n) > p.MaxSize || (!last && uint(n) < p.MinSize) {
			t.Fatalf("chunk %d of %d: %d bytes, bounds %d..%d", i, len(lengths), n, p.MinSize, p.MaxSize)
		}
	}
	if _, err := c.Next(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after the end: %v, want io.EOF", err)
	}
	return lengths
}

func TestBoundaries(t *testing.T) {
	t.Parallel()
	pol := testPol(t)
	small := chunk.Params{MinSize: 64, MaxSize: 4096, AverageBits: 10}
	for _, tc := range []struct {
		name       string
		p          chunk.Params
		data       []byte
		wantChunks int // 0: any
	}{
		{"empty", small, nil, 0},
		{"one byte", small, []byte{1}, 1},
		{"under the minimum", small, randomData(1, 63), 1},
		// The fingerprint of a window of zeros is zero: a cut as soon as allowed.
		{"zeros cut at the minimum", small, make([]byte, 256*64+5), 257},
		{"random", small, randomData(2, 1<<20), 0},
		{"default profile", chunk.DefaultParams(), randomData(3, 24<<20), 0},
		{"default profile, zeros", chunk.DefaultParams(), make([]byte, 20<<20), 40},
		// One cut in 2^22 bytes on average: nearly every chunk ends at the maximum.
		{"cut at the maximum", chunk.Params{MinSize: 64, MaxSize: 128, AverageBits: 22}, randomData(5, 128*100), 100},
		{"widest profile", chunk.Params{MinSize: 64, MaxSize: chunk.MaxSize, AverageBits: 22}, randomData(4, 10<<20), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.p.Validate(); err != nil {
				t.Fatal(err)
			}
			lengths := chunks(t, tc.data, pol, tc.p)
			if tc.wantChunks != 0 && len(lengths) != tc.wantChunks {
				t.Fatalf("%d chunks, want %d: %v", len(lengths), tc.wantChunks, lengths)
			}
			if len(tc.data) == 0 && len(lengths) != 0 {
				t.Fatalf("chunks of empty input: %v", lengths)
			}
			if len(lengths) > 2 {
				mean := len(tc.data) / len(lengths)
				t.Logf("%d chunks, mean %d bytes", len(lengths), mean)
			}
		})
	}
}

// TestDeterminism checks that a fixed polynomial and profile always cut the
// same input at the same places: in two runs, and against the cut points
// recorded when this test was written. If the golden digest changes, new
// backups no longer deduplicate against old ones.
func TestDeterminism(t *testing.T) {
	t.Parallel()
	pol := testPol(t)
	p := chunk.Params{MinSize: 64, MaxSize: 4096, AverageBits: 10}
	data := randomData(42, 256<<10)
	a := chunks(t, data, pol, p)
	b := chunks(t, data, pol, p)
	if !equal(a, b) {
		t.Fatalf("two runs differ:\n%v\n%v", a, b)
	}
	h := sha256.New()
	for _, n := range a {
		_ = binary.Write(h, binary.LittleEndian, uint32(n))
	}
	const golden = "a3db10d086571dd1c8cefaf5f240001f046f5278de27178ed6fb23fbb950ac56"
	if got := hex.EncodeToString(h.Sum(nil)); got != golden {
		t.Fatalf("cut points changed: %d chunks, first %v, digest %s, want %s", len(a), a[:5], got, golden)
	}

	other, err := chunk.RandomPolynomial()
	if err != nil {
		t.Fatal(err)
	}
	if c := chunks(t, data, other, p); equal(a, c) {
		t.Fatalf("polynomial %v cuts like %v", other, pol)
	}
}

// TestLocality inserts bytes in the middle of a stream: the chunks before it
// stay the same, and so do the chunks after the chunker resynchronises.
func TestLocality(t *testing.T) {
	t.Parallel()
	pol := testPol(t)
	p := chunk.Params{MinSize: 64, MaxSize: 4096, AverageBits: 10}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	data := randomData(seed, 512<<10)
	mid := len(data) / 2
	edited := append(append(bytes.Clone(data[:mid]), randomData(seed+1, 100)...), data[mid:]...)
	a, b := chunks(t, data, pol, p), chunks(t, edited, pol, p)
	set := map[[32]byte]bool{}
	for _, c := range split(data, a) {
		set[sha256.Sum256(c)] = true
	}
	shared := 0
	for _, c := range split(edited, b) {
		if set[sha256.Sum256(c)] {
			shared++
		}
	}
	if shared < len(a)-4 {
		t.Fatalf("only %d of %d chunks survive a 100-byte insertion", shared, len(a))
	}
}

func split(data []byte, lengths []int) [][]byte {
	var out [][]byte
	for _, n := range lengths {
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParsePolynomial(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, s string
		ok      bool
	}{
		{"FORMAT.md example", "3da3358b4dc173", true},
		{"upper case", "3DA3358B4DC173", true},
		{"reducible: divisible by x", "3da3358b4dc172", false},
		{"reducible: x^53+1, divisible by x+1", "20000000000001", false},
		{"reducible: (x^26+x+1)(x^27+x^2+1)", reducibleDeg53(), false},
		{"degree 52", "1da3358b4dc173", false},
		{"degree 54", "7da3358b4dc173", false},
		{"degree 0", "1", false},
		{"zero", "0", false},
		{"empty", "", false},
		{"not hex", "zz", false},
		{"0x prefix", "0x3da3358b4dc173", false},
		{"more than 64 bits", "1" + "3da3358b4dc173" + "00", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := chunk.ParsePolynomial(tc.s)
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("accepted %q as %v", tc.s, p)
			}
			if tc.ok && (p.Deg() != 53 || !p.Irreducible()) {
				t.Fatalf("returned %v", p)
			}
		})
	}
	for i := 0; i < 5; i++ {
		p, err := chunk.RandomPolynomial()
		if err != nil {
			t.Fatal(err)
		}
		// Pol.String prints 0x...; key files store it without the prefix.
		got, err := chunk.ParsePolynomial(p.String()[2:])
		if err != nil || got != p {
			t.Fatalf("random %v: parsed %v, %v", p, got, err)
		}
	}
}

// reducibleDeg53 returns the hex of (x^26+x+1)*(x^27+x^2+1), a reducible
// polynomial of degree 53.
func reducibleDeg53() string {
	a := chunk.Pol(1<<26 | 1<<1 | 1)
	b := chunk.Pol(1<<27 | 1<<2 | 1)
	return a.Mul(b).String()[2:]
}

func TestParamsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		p    chunk.Params
		ok   bool
	}{
		{"default", chunk.DefaultParams(), true},
		{"small", chunk.Params{MinSize: 64, MaxSize: 4096, AverageBits: 10}, true},
		{"min equals max", chunk.Params{MinSize: 4096, MaxSize: 4096, AverageBits: 10}, true},
		{"largest", chunk.Params{MinSize: 64, MaxSize: chunk.MaxSize, AverageBits: 22}, true},
		{"min under the window", chunk.Params{MinSize: 63, MaxSize: 4096, AverageBits: 10}, false},
		{"min over max", chunk.Params{MinSize: 8192, MaxSize: 4096, AverageBits: 10}, false},
		{"max over MaxSize", chunk.Params{MinSize: 64, MaxSize: chunk.MaxSize + 1, AverageBits: 20}, false},
		{"average bits 9", chunk.Params{MinSize: 64, MaxSize: 4096, AverageBits: 9}, false},
		{"average bits 23", chunk.Params{MinSize: 64, MaxSize: 4096, AverageBits: 23}, false},
		{"zero", chunk.Params{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate(%+v) = %v, want ok %v", tc.p, err, tc.ok)
			}
		})
	}
}
