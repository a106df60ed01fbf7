package repo_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"testing"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/pack"
)

// sqlText returns n bytes of an SQL dump's rows, from a seeded source.
func sqlText(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "INSERT INTO users VALUES (%d, 'user%d', 'u%d@example.com', %d, '2026-11-%02d');\n",
			i, rng.IntN(1e6), rng.IntN(1e6), rng.IntN(1000), 1+rng.IntN(28))
	}
	return b.Bytes()[:n]
}

// jpegBytes returns a real JPEG of a noisy photograph-like image, cut or
// repeated to n bytes (a chunk of a media file is any part of it).
func jpegBytes(t testing.TB, seed uint64, n int) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	img := image.NewRGBA(image.Rect(0, 0, 1024, 1024))
	for y := range 1024 {
		for x := range 1024 {
			v := uint8(x/4 + y/8 + rng.IntN(64))
			img.Set(x, y, color.RGBA{v, uint8(rng.IntN(256)), v / 2, 255})
		}
	}
	var out bytes.Buffer
	for out.Len() < n {
		if err := jpeg.Encode(&out, img, &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()[:n]
}

func gzipBytes(t testing.TB, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write(p)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestIncompressibleChunks: chunks of JPEG, random bytes and gzip are found
// incompressible by their sample, so no whole zstd pass is spent on them,
// and are stored uncompressed; text, zeroes and chunks that are only partly
// incompressible are still compressed.
func TestIncompressibleChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _ := newRepo(t)
	const n = 1 << 20
	mixed := append(randomBytes(t, n/2), sqlText(3, n/2)...)
	interleaved := make([]byte, 0, n)
	for i := 0; len(interleaved) < n; i++ {
		if i%2 == 0 {
			interleaved = append(interleaved, randomBytes(t, 64<<10)...)
		} else {
			interleaved = append(interleaved, sqlText(uint64(i), 64<<10)...)
		}
	}
	for _, tc := range []struct {
		name         string
		data         []byte
		incompressib bool
	}{
		{"random", randomBytes(t, n), true},
		{"jpeg", jpegBytes(t, 1, n), true},
		{"gzip", gzipBytes(t, append(sqlText(1, 2*n), randomBytes(t, 2*n)...))[:n], true},
		{"random, smallest sampled", randomBytes(t, 16<<10), true},
		{"jpeg, small file", jpegBytes(t, 2, 40<<10), true},
		{"random, largest chunk", randomBytes(t, 8<<20), true},
		{"sql", sqlText(2, n), false},
		{"zeroes", make([]byte, n), false},
		{"half random, half sql", mixed, false},
		{"random and sql interleaved", interleaved, false},
		{"sql, smallest sampled", sqlText(4, 16<<10), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := repo.Incompressible(r, tc.data); got != tc.incompressib {
				t.Fatalf("sample says incompressible: %v, want %v", got, tc.incompressib)
			}
			want := byte(pack.CompressionZstd)
			if tc.incompressib {
				want = pack.CompressionNone
			}
			if got := repo.PayloadCompression(r, tc.data); got != want {
				t.Fatalf("compression byte %d, want %d", got, want)
			}
			res, err := r.SaveBlob(ctx, pack.DataBlob, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.incompressib && res.Stored != len(tc.data)+1+crypto.Overhead:
				t.Fatalf("stored %d bytes of %d, want them uncompressed", res.Stored, len(tc.data))
			case !tc.incompressib && res.Stored > len(tc.data)*9/10:
				t.Fatalf("stored %d bytes of %d compressible ones", res.Stored, len(tc.data))
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := r.LoadBlob(ctx, pack.DataBlob, res.ID, nil)
			if err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("loaded %d bytes (%v), saved %d", len(got), err, len(tc.data))
			}
		})
	}
}

// BenchmarkCompress makes the payload of 1 MiB chunks of each kind: the
// sample, and the zstd pass unless the sample says it would not pay.
func BenchmarkCompress(b *testing.B) {
	const n = 1 << 20
	r, _ := newRepo(&testing.T{})
	for _, kind := range []string{"random", "jpeg", "gzip", "sql"} {
		b.Run(kind, func(b *testing.B) {
			var data []byte
			switch kind {
			case "random":
				data = randomBytes(&testing.T{}, n)
			case "jpeg":
				data = jpegBytes(b, 1, n)
			case "gzip":
				data = gzipBytes(b, append(sqlText(1, 2*n), randomBytes(&testing.T{}, 2*n)...))[:n]
			case "sql":
				data = sqlText(1, n)
			}
			b.SetBytes(n)
			b.ResetTimer()
			for range b.N {
				repo.PayloadCompression(r, data)
			}
		})
	}
}
