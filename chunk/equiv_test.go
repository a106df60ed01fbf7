package chunk

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/restic/chunker"
)

// TestSameCutsAsRestic checks that the parallel chunker cuts exactly where
// restic/chunker does, for several profiles, sizes and worker counts.
func TestSameCutsAsRestic(t *testing.T) {
	pol := Pol(0x3DA3358B4DC173)
	seed := uint64(42)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	profiles := []Params{
		DefaultParams(),
		{MinSize: 64, MaxSize: 4096, AverageBits: 10},
		{MinSize: 1 << 10, MaxSize: 64 << 10, AverageBits: 12},
		{MinSize: 256 << 10, MaxSize: 1 << 20, AverageBits: 18},
	}
	for _, p := range profiles {
		for _, size := range []int{0, 1, 63, 64, 5000, 1 << 20, 9<<20 + 17, 20 << 20} {
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			// Low-entropy stretches make long runs without cuts (max-size cuts).
			if size > 1<<20 {
				clear(data[size/3 : min(size, size/3+int(p.MaxSize)*2)])
			}
			want := resticCuts(t, data, pol, p)
			for _, workers := range []int{1, 2, 3} {
				c := New(bytes.NewReader(data), pol, p)
				c.SetWorkers(workers)
				c.round = 3<<20 + 7
				var got []int
				var buf []byte
				for {
					ch, err := c.Next(buf)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, len(ch))
					buf = ch
				}
				if !equalInts(got, want) {
					t.Fatalf("profile %+v size %d workers %d: %d chunks %v, restic %d chunks %v", p, size, workers, len(got), head(got), len(want), head(want))
				}
			}
		}
	}
}

func resticCuts(t *testing.T, data []byte, pol Pol, p Params) []int {
	c := chunker.New(bytes.NewReader(data), pol, chunker.WithBoundaries(p.MinSize, p.MaxSize), chunker.WithAverageBits(p.AverageBits))
	var out []int
	buf := make([]byte, 0, p.MaxSize)
	for {
		ch, err := c.Next(buf)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, int(ch.Length))
	}
}

func equalInts(a, b []int) bool {
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

func head(a []int) []int {
	if len(a) > 8 {
		return a[:8]
	}
	return a
}

func BenchmarkChunker(b *testing.B) {
	data := make([]byte, 64<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	pol := Pol(0x3DA3358B4DC173)
	for _, w := range []int{1, 2} {
		b.Run("hoard-workers-"+string(rune('0'+w)), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			buf := make([]byte, 0, MaxSize)
			for i := 0; i < b.N; i++ {
				c := New(bytes.NewReader(data), pol, DefaultParams())
				c.SetWorkers(w)
				for {
					if _, err := c.Next(buf); err != nil {
						break
					}
				}
			}
		})
	}
	b.Run("restic", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		buf := make([]byte, 0, MaxSize)
		for i := 0; i < b.N; i++ {
			c := chunker.New(bytes.NewReader(data), pol)
			for {
				if _, err := c.Next(buf); err != nil {
					break
				}
			}
		}
	})
}
