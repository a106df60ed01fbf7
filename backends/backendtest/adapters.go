package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hoard-backup/hoard/backends"
)

// This file holds the checks that every adapter's own tests make beyond Run:
// a location that was never created, and credentials that must not leak.

// NotCreated checks be, opened over a location that was never created (no
// Create): List finds nothing of any type, Stat of the config is
// ErrNotExist, and Save fails permanently, since it must never make the
// repository's folder itself (an unmounted disk looks like this).
func NotCreated(t *testing.T, be backends.Backend) {
	t.Helper()
	ctx := context.Background()
	for _, typ := range backends.FileTypes() {
		err := be.List(ctx, typ, func(fi backends.FileInfo) error {
			t.Errorf("List(%s) of a missing folder shows %v", typ, fi)
			return nil
		})
		if err != nil {
			t.Errorf("List(%s) of a missing folder: %v", typ, err)
		}
	}
	err := be.Save(ctx, backends.Handle{Type: backends.KeyFile, Name: "k"}, backends.NewByteReader([]byte("k")))
	if !errors.Is(err, backends.ErrPermanent) {
		t.Errorf("Save into a missing repository = %v, want ErrPermanent", err)
	}
	if _, err := be.Stat(ctx, backends.Handle{Type: backends.ConfigFile}); !errors.Is(err, backends.ErrNotExist) {
		t.Errorf("Stat of the config = %v, want ErrNotExist", err)
	}
}

// Texts calls every method of be on h (Create too, if be has it) and
// returns what each said, its error as text, keyed by the method's name,
// with Location: the strings in which a credential must never show.
func Texts(be backends.Backend, h backends.Handle) map[string]string {
	ctx := context.Background()
	_, statErr := be.Stat(ctx, h)
	texts := map[string]string{
		"Location": be.Location(),
		"Stat":     fmt.Sprint(statErr),
		"Save":     fmt.Sprint(be.Save(ctx, h, backends.NewByteReader([]byte("x")))),
		"Load":     fmt.Sprint(be.Load(ctx, h, 0, 0, func(io.Reader) error { return nil })),
		"List":     fmt.Sprint(be.List(ctx, h.Type, func(backends.FileInfo) error { return nil })),
		"Remove":   fmt.Sprint(be.Remove(ctx, h)),
	}
	if c, ok := be.(backends.Creator); ok {
		texts["Create"] = fmt.Sprint(c.Create(ctx))
	}
	return texts
}

// NoSecrets fails t for every text that shows one of secrets; the key of
// texts says where the text came from. Empty secrets are ignored.
func NoSecrets(t *testing.T, texts map[string]string, secrets ...string) {
	t.Helper()
	for what, text := range texts {
		t.Logf("%s: %s", what, text)
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("%s shows a secret: %s", what, text)
			}
		}
	}
}

// FailingReader yields the bytes of its ByteReader, then fails with Err
// (io.EOF makes a reader that is merely short or long), while claiming
// Len bytes: a source that breaks in the middle of a Save.
type FailingReader struct {
	*backends.ByteReader
	Len int64
	Err error
}

// NewFailingReader returns a FailingReader of data that claims length
// bytes and then fails with err.
func NewFailingReader(data []byte, length int64, err error) *FailingReader {
	return &FailingReader{ByteReader: backends.NewByteReader(data), Len: length, Err: err}
}

// Read implements io.Reader.
func (r *FailingReader) Read(p []byte) (int, error) {
	n, err := r.ByteReader.Read(p)
	if errors.Is(err, io.EOF) {
		return n, r.Err
	}
	return n, err
}

// Length implements backends.RewindReader.
func (r *FailingReader) Length() int64 { return r.Len }

// Random returns n random bytes from a seed that t logs.
func Random(t testing.TB, n int) []byte {
	t.Helper()
	seed := rand.Uint64()
	t.Logf("backendtest: random data from seed %d", seed)
	return randomBytes(rand.New(rand.NewPCG(seed, seed)), n)
}

// LoadAll loads all of h, failing t on error.
func LoadAll(t testing.TB, be backends.Backend, h backends.Handle) []byte {
	t.Helper()
	data, err := backends.LoadAll(context.Background(), be, h)
	if err != nil {
		t.Fatalf("Load(%v): %v", h, err)
	}
	return data
}

// LargeFile saves data under h, reads it back whole, and reads 20 bytes
// from at, which should straddle the boundary of two pieces of the
// backend's piecewise upload (multipart, upload session).
func LargeFile(t *testing.T, be backends.Backend, h backends.Handle, data []byte, at int64) {
	t.Helper()
	ctx := context.Background()
	if err := be.Save(ctx, h, backends.NewByteReader(data)); err != nil {
		t.Fatalf("Save of %d bytes: %v", len(data), err)
	}
	if got := LoadAll(t, be, h); !bytes.Equal(got, data) {
		t.Fatalf("Load of %d bytes: got %d bytes or wrong content", len(data), len(got))
	}
	var part []byte
	err := be.Load(ctx, h, 20, at, func(rd io.Reader) error {
		var err error
		part, err = io.ReadAll(rd)
		return err
	})
	want := data[at:min(int(at)+20, len(data))]
	if err != nil && len(want) == 20 || !bytes.Equal(part, want) {
		t.Errorf("ranged Load at %d of %d bytes: %v, %d bytes", at, len(data), err, len(part))
	}
}

// LargeFileBadReaders saves data (several pieces of a piecewise upload)
// from readers that fail in the second piece, in the last one, are one
// byte short or one byte long: each Save fails and leaves nothing. piece
// is the size of the backend's first piece. Handles are packs whose names
// start with prefix.
func LargeFileBadReaders(t *testing.T, be backends.Backend, prefix string, data []byte, piece int) {
	t.Helper()
	errRead := errors.New("backendtest: reader failed")
	n := int64(len(data))
	tests := []struct {
		name string
		rd   backends.RewindReader
		want error
	}{
		{"FailsInSecondPiece", NewFailingReader(data[:piece+5], n, errRead), errRead},
		{"FailsInLastPiece", NewFailingReader(data[:n-1], n, errRead), errRead},
		{"Short", NewFailingReader(data[:n-1], n, io.EOF), io.ErrUnexpectedEOF},
		{"Long", NewFailingReader(data, n-1, io.EOF), nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := backends.Handle{Type: backends.PackFile, Name: fmt.Sprintf("%s%d", prefix, i)}
			err := be.Save(context.Background(), h, tc.rd)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Save = %v, want an error matching %v", err, tc.want)
			}
			AssertAbsent(t, be, h)
		})
	}
}

// LoadPart loads length bytes at offset of h (length 0: to the end), as a
// restore reads a pack segment, taking only the first take bytes when take
// is not negative (fn stopping early); it reports wrong bytes through t
// and returns Load's error. want is the whole file.
func LoadPart(t *testing.T, be backends.Backend, h backends.Handle, want []byte, length int, offset int64, take int) error {
	t.Helper()
	want = want[offset:]
	if length > 0 {
		want = want[:length]
	}
	if take >= 0 {
		want = want[:take]
	}
	return be.Load(context.Background(), h, length, offset, func(rd io.Reader) error {
		var got []byte
		var err error
		if take >= 0 {
			got = make([]byte, take)
			_, err = io.ReadFull(rd, got)
		} else {
			got, err = io.ReadAll(rd)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Errorf("Load(%d, %d) taking %d: wrong bytes", length, offset, take)
		}
		return err
	})
}
