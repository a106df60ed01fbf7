// Package backendtest holds the conformance suite that every backends.Backend
// passes (Run) and a fault-injecting wrapper for other packages' tests
// (Faulty). It is imported by tests only.
package backendtest

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/hoard-backup/hoard/backends"
)

// SeedEnv names the environment variable that fixes the seed of the random
// test data, to reproduce a failure; Run logs the seed it uses.
const SeedEnv = "HOARD_TEST_SEED"

// Run runs the conformance suite as parallel subtests of t.
//
// open is called once per subtest and must return a backend over a new,
// empty location (a fresh t.TempDir, bucket prefix or in-memory store). If the
// backend is a backends.Creator, Run calls Create before using it. Run closes
// every backend it opens; open should clean up the location itself, with
// t.Cleanup. open may call t.Skip (a server is missing) or t.Fatal.
func Run(t *testing.T, open func(t *testing.T) backends.Backend) {
	t.Helper()
	s := &suite{open: open, seed: seed(t)}
	t.Logf("backendtest: seed %d (set %s to reproduce)", s.seed, SeedEnv)
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Properties", s.testProperties},
		{"ListEmpty", s.testListEmpty},
		{"NotExist", s.testNotExist},
		{"RoundTrip", s.testRoundTrip},
		{"EmptyFile", s.testEmptyFile},
		{"Replace", s.testReplace},
		{"LoadRange", s.testLoadRange},
		{"LoadCallbackError", s.testLoadCallbackError},
		{"ListError", s.testListError},
		{"ListCancel", s.testListCancel},
		{"SaveReaderError", s.testSaveReaderError},
		{"SaveWrongLength", s.testSaveWrongLength},
		{"SaveErrorKeepsOld", s.testSaveErrorKeepsOld},
		{"CancelledContext", s.testCancelledContext},
		{"ConcurrentSave", s.testConcurrentSave},
		{"InvalidHandle", s.testInvalidHandle},
		{"Close", s.testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t)
		})
	}
}

// seed returns the seed from SeedEnv, or a random one.
func seed(t *testing.T) uint64 {
	if v := os.Getenv(SeedEnv); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("backendtest: %s=%q: %v", SeedEnv, v, err)
		}
		return s
	}
	return rand.Uint64()
}

type suite struct {
	open func(t *testing.T) backends.Backend
	seed uint64
}

// backend opens a backend for t, creates it if needed and closes it at the end of t.
func (s *suite) backend(t *testing.T) backends.Backend {
	t.Helper()
	be := s.open(t)
	t.Cleanup(func() {
		if err := be.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if c, ok := be.(backends.Creator); ok {
		if err := c.Create(context.Background()); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	return be
}

// rng returns a random source for t, derived from the seed and t's name so
// that parallel subtests are reproducible.
func (s *suite) rng(t *testing.T) *rand.Rand {
	h := fnv.New64a()
	_, _ = io.WriteString(h, t.Name()) // hash writes never fail
	return rand.New(rand.NewPCG(s.seed, h.Sum64()))
}

func randomBytes(rng *rand.Rand, n int) []byte {
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	return buf
}

func randomName(rng *rand.Rand) string {
	return hex.EncodeToString(randomBytes(rng, 32))
}

// handle returns a random handle of type t (the config handle for ConfigFile).
func randomHandle(rng *rand.Rand, t backends.FileType) backends.Handle {
	if t == backends.ConfigFile {
		return backends.Handle{Type: t}
	}
	return backends.Handle{Type: t, Name: randomName(rng)}
}

func save(t *testing.T, be backends.Backend, h backends.Handle, data []byte) {
	t.Helper()
	if err := be.Save(context.Background(), h, backends.NewByteReader(data)); err != nil {
		t.Fatalf("Save(%v): %v", h, err)
	}
}

// list returns the files of type typ, name to size.
func list(t testing.TB, be backends.Backend, typ backends.FileType) map[string]int64 {
	t.Helper()
	files := make(map[string]int64)
	err := be.List(context.Background(), typ, func(fi backends.FileInfo) error {
		if _, dup := files[fi.Name]; dup {
			t.Errorf("List(%s): %q listed twice", typ, fi.Name)
		}
		files[fi.Name] = fi.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List(%s): %v", typ, err)
	}
	return files
}

// AssertAbsent fails t unless Stat says h does not exist and List does not
// show it.
func AssertAbsent(t *testing.T, be backends.Backend, h backends.Handle) {
	t.Helper()
	if fi, err := be.Stat(context.Background(), h); !errors.Is(err, backends.ErrNotExist) {
		t.Errorf("Stat(%v) = %+v, %v; want ErrNotExist", h, fi, err)
	}
	if _, ok := list(t, be, h.Type)[h.Name]; ok {
		t.Errorf("List(%s) shows %v", h.Type, h)
	}
}

func (s *suite) testProperties(t *testing.T) {
	be := s.backend(t)
	if p := be.Properties(); p.Connections < 1 {
		t.Errorf("Properties().Connections = %d, want >= 1", p.Connections)
	}
	if be.Location() == "" {
		t.Error("Location() is empty")
	}
}

func (s *suite) testListEmpty(t *testing.T) {
	be := s.backend(t)
	for _, typ := range backends.FileTypes() {
		if files := list(t, be, typ); len(files) != 0 {
			t.Errorf("List(%s) on a new repository = %v", typ, files)
		}
	}
}

func (s *suite) testNotExist(t *testing.T) {
	be := s.backend(t)
	ctx := context.Background()
	rng := s.rng(t)
	for _, typ := range backends.FileTypes() {
		h := randomHandle(rng, typ)
		called := false
		err := be.Load(ctx, h, 0, 0, func(io.Reader) error { called = true; return nil })
		if !errors.Is(err, backends.ErrNotExist) {
			t.Errorf("Load(%v) = %v, want ErrNotExist", h, err)
		}
		if called {
			t.Errorf("Load(%v) called fn for a missing file", h)
		}
		if _, err := be.Stat(ctx, h); !errors.Is(err, backends.ErrNotExist) {
			t.Errorf("Stat(%v) = %v, want ErrNotExist", h, err)
		}
		if err := be.Remove(ctx, h); !errors.Is(err, backends.ErrNotExist) {
			t.Errorf("Remove(%v) = %v, want ErrNotExist", h, err)
		}
	}
}

func (s *suite) testRoundTrip(t *testing.T) {
	be := s.backend(t)
	ctx := context.Background()
	rng := s.rng(t)
	want := make(map[backends.Handle][]byte)
	for _, typ := range backends.FileTypes() {
		h := randomHandle(rng, typ)
		want[h] = randomBytes(rng, 1+rng.IntN(64<<10))
		save(t, be, h, want[h])
	}
	for h, data := range want {
		if got := LoadAll(t, be, h); !bytes.Equal(got, data) {
			t.Errorf("Load(%v): got %d bytes, want the %d saved", h, len(got), len(data))
		}
		fi, err := be.Stat(ctx, h)
		if err != nil {
			t.Errorf("Stat(%v): %v", h, err)
		} else if fi.Name != h.Name || fi.Size != int64(len(data)) {
			t.Errorf("Stat(%v) = %+v, want name %q size %d", h, fi, h.Name, len(data))
		}
		files := list(t, be, h.Type)
		if len(files) != 1 || files[h.Name] != int64(len(data)) {
			t.Errorf("List(%s) = %v, want only %q (%d bytes)", h.Type, files, h.Name, len(data))
		}
	}
	for h := range want {
		if err := be.Remove(ctx, h); err != nil {
			t.Fatalf("Remove(%v): %v", h, err)
		}
		AssertAbsent(t, be, h)
		if err := be.Remove(ctx, h); !errors.Is(err, backends.ErrNotExist) {
			t.Errorf("second Remove(%v) = %v, want ErrNotExist", h, err)
		}
	}
}

func (s *suite) testEmptyFile(t *testing.T) {
	be := s.backend(t)
	h := randomHandle(s.rng(t), backends.SnapshotFile)
	save(t, be, h, nil)
	if got := LoadAll(t, be, h); len(got) != 0 {
		t.Errorf("Load of an empty file gave %d bytes", len(got))
	}
	if files := list(t, be, h.Type); len(files) != 1 || files[h.Name] != 0 {
		t.Errorf("List(%s) = %v, want only %q (0 bytes)", h.Type, files, h.Name)
	}
}

func (s *suite) testReplace(t *testing.T) {
	be := s.backend(t)
	if !be.Properties().HasAtomicReplace {
		t.Skip("backend does not replace atomically")
	}
	rng := s.rng(t)
	h := randomHandle(rng, backends.LockFile)
	save(t, be, h, randomBytes(rng, 100))
	second := randomBytes(rng, 50)
	save(t, be, h, second)
	if got := LoadAll(t, be, h); !bytes.Equal(got, second) {
		t.Errorf("Load after replace: got %d bytes, want the 50 saved last", len(got))
	}
	if files := list(t, be, h.Type); len(files) != 1 || files[h.Name] != 50 {
		t.Errorf("List(%s) after replace = %v, want only %q (50 bytes)", h.Type, files, h.Name)
	}
}

func (s *suite) testLoadRange(t *testing.T) {
	be := s.backend(t)
	rng := s.rng(t)
	size := 1000 + rng.IntN(9000)
	data := randomBytes(rng, size)
	h := randomHandle(rng, backends.PackFile)
	save(t, be, h, data)

	const (
		ok = iota
		unexpectedEOF
		errRange
		anyError
	)
	tests := []struct {
		name   string
		offset int64
		length int
		want   int // ok, unexpectedEOF, errRange or anyError
	}{
		{"whole", 0, 0, ok},
		{"exact", 0, size, ok},
		{"prefix", 0, 10, ok},
		{"middle", 100, 500, ok},
		{"tail", 10, 0, ok},
		{"lastByte", int64(size - 1), 1, ok},
		{"lastByteToEnd", int64(size - 1), 0, ok},
		{"atEnd", int64(size), 0, ok},
		{"atEndWithLength", int64(size), 5, unexpectedEOF},
		{"pastEnd", int64(size - 5), 10, unexpectedEOF},
		{"longerThanFile", 0, size + 1, unexpectedEOF},
		{"offsetBeyond", int64(size + 1), 0, errRange},
		{"offsetBeyondWithLength", int64(size + 1), 1, errRange},
		{"negativeOffset", -1, 10, anyError},
		{"negativeLength", 0, -1, anyError},
	}
	for range 5 {
		off := rng.IntN(size)
		tests = append(tests, struct {
			name   string
			offset int64
			length int
			want   int
		}{fmt.Sprintf("random%d", off), int64(off), 1 + rng.IntN(size-off), ok})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				got     []byte
				readErr error
				calls   int
			)
			err := be.Load(context.Background(), h, tc.length, tc.offset, func(rd io.Reader) error {
				calls++
				got, readErr = io.ReadAll(rd)
				return readErr
			})
			// What a correct backend yields: the bytes that exist in the range.
			var want []byte
			if tc.offset >= 0 && tc.offset <= int64(size) && tc.length >= 0 {
				end := int64(size)
				if tc.length > 0 {
					end = min(end, tc.offset+int64(tc.length))
				}
				want = data[tc.offset:end]
			}
			switch tc.want {
			case ok:
				if err != nil {
					t.Fatalf("Load(%d, %d): %v", tc.offset, tc.length, err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("Load(%d, %d) gave %d bytes, want %d (or wrong content)", tc.offset, tc.length, len(got), len(want))
				}
			case unexpectedEOF:
				if !errors.Is(readErr, io.ErrUnexpectedEOF) || !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("Load(%d, %d) of a %d-byte file: read error %v, Load error %v; want io.ErrUnexpectedEOF for both",
						tc.offset, tc.length, size, readErr, err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("Load(%d, %d) gave %d bytes before failing, want the %d that exist", tc.offset, tc.length, len(got), len(want))
				}
			case errRange:
				if !errors.Is(err, backends.ErrRange) {
					t.Errorf("Load(%d, %d) of a %d-byte file = %v, want ErrRange", tc.offset, tc.length, size, err)
				}
			case anyError:
				if err == nil {
					t.Errorf("Load(%d, %d) succeeded, want an error", tc.offset, tc.length)
				}
			}
			if tc.want == ok && calls == 0 {
				t.Errorf("Load(%d, %d) did not call fn", tc.offset, tc.length)
			}
		})
	}
}

func (s *suite) testLoadCallbackError(t *testing.T) {
	be := s.backend(t)
	rng := s.rng(t)
	h := randomHandle(rng, backends.IndexFile)
	save(t, be, h, randomBytes(rng, 1000))
	errFn := errors.New("backendtest: callback failed")
	err := be.Load(context.Background(), h, 0, 0, func(rd io.Reader) error {
		if _, err := io.ReadFull(rd, make([]byte, 10)); err != nil {
			return err
		}
		return errFn
	})
	if !errors.Is(err, errFn) {
		t.Errorf("Load = %v, want the callback's error", err)
	}
}

// saveMany saves n small files of type typ and returns their names.
func saveMany(t *testing.T, rng *rand.Rand, be backends.Backend, typ backends.FileType, n int) []string {
	t.Helper()
	var names []string
	for range n {
		h := randomHandle(rng, typ)
		save(t, be, h, randomBytes(rng, 1+rng.IntN(100)))
		names = append(names, h.Name)
	}
	return names
}

func (s *suite) testListError(t *testing.T) {
	be := s.backend(t)
	rng := s.rng(t)
	for _, typ := range []backends.FileType{backends.PackFile, backends.SnapshotFile} {
		saveMany(t, rng, be, typ, 5)
		errStop := errors.New("backendtest: stop listing")
		calls := 0
		err := be.List(context.Background(), typ, func(backends.FileInfo) error {
			calls++
			return errStop
		})
		if !errors.Is(err, errStop) {
			t.Errorf("List(%s) = %v, want fn's error", typ, err)
		}
		if calls != 1 {
			t.Errorf("List(%s) called fn %d times after it failed, want 1", typ, calls)
		}
	}
}

func (s *suite) testListCancel(t *testing.T) {
	be := s.backend(t)
	rng := s.rng(t)
	for _, typ := range []backends.FileType{backends.PackFile, backends.KeyFile} {
		saveMany(t, rng, be, typ, 5)

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		calls := 0
		err := be.List(ctx, typ, func(backends.FileInfo) error { calls++; return nil })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("List(%s) with a cancelled ctx = %v, want context.Canceled", typ, err)
		}
		if calls != 0 {
			t.Errorf("List(%s) with a cancelled ctx called fn %d times", typ, calls)
		}

		ctx, cancel = context.WithCancel(context.Background())
		calls = 0
		err = be.List(ctx, typ, func(backends.FileInfo) error { calls++; cancel(); return nil })
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("List(%s) cancelled in fn = %v, want context.Canceled", typ, err)
		}
		if calls != 1 {
			t.Errorf("List(%s) called fn %d times after ctx was cancelled, want 1", typ, calls)
		}
	}
}

// lyingReader yields its data but claims length bytes.
type lyingReader struct {
	*backends.ByteReader
	length int64
}

func (r *lyingReader) Length() int64 { return r.length }

func (s *suite) testSaveReaderError(t *testing.T) {
	be := s.backend(t)
	rng := s.rng(t)
	errRead := errors.New("backendtest: reader failed")
	for _, typ := range backends.FileTypes() {
		h := randomHandle(rng, typ)
		data := randomBytes(rng, 1000+rng.IntN(100<<10))
		rd := NewFailingReader(data[:len(data)/2], int64(len(data)), errRead)
		if err := be.Save(context.Background(), h, rd); !errors.Is(err, errRead) {
			t.Errorf("Save(%v) with a failing reader = %v, want the reader's error", h, err)
		}
		AssertAbsent(t, be, h)
	}
}

func (s *suite) testSaveWrongLength(t *testing.T) {
	be := s.backend(t)
	rng := s.rng(t)
	for _, delta := range []int64{-1, 1, -500, 500} {
		h := randomHandle(rng, backends.PackFile)
		data := randomBytes(rng, 1000)
		rd := &lyingReader{ByteReader: backends.NewByteReader(data), length: int64(len(data)) + delta}
		if err := be.Save(context.Background(), h, rd); err == nil {
			t.Errorf("Save of %d bytes with Length %d succeeded", len(data), rd.length)
		}
		AssertAbsent(t, be, h)
	}
}

func (s *suite) testSaveErrorKeepsOld(t *testing.T) {
	be := s.backend(t)
	rng := s.rng(t)
	h := randomHandle(rng, backends.ConfigFile)
	old := randomBytes(rng, 300)
	save(t, be, h, old)
	data := randomBytes(rng, 1000)
	rd := NewFailingReader(data[:500], 1000, errors.New("backendtest: reader failed"))
	if err := be.Save(context.Background(), h, rd); err == nil {
		t.Fatal("Save with a failing reader succeeded")
	}
	if got := LoadAll(t, be, h); !bytes.Equal(got, old) {
		t.Errorf("after a failed Save, Load gave %d bytes, want the %d saved before", len(got), len(old))
	}
}

func (s *suite) testCancelledContext(t *testing.T) {
	be := s.backend(t)
	rng := s.rng(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := randomHandle(rng, backends.PackFile)
	if err := be.Save(ctx, h, backends.NewByteReader(randomBytes(rng, 1000))); !errors.Is(err, context.Canceled) {
		t.Errorf("Save with a cancelled ctx = %v, want context.Canceled", err)
	}
	AssertAbsent(t, be, h)
	save(t, be, h, randomBytes(rng, 1000))
	if err := be.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		_, err := io.Copy(io.Discard, rd)
		return err
	}); !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a cancelled ctx = %v, want context.Canceled", err)
	}
	if _, err := be.Stat(ctx, h); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with a cancelled ctx = %v, want context.Canceled", err)
	}
	if err := be.Remove(ctx, h); !errors.Is(err, context.Canceled) {
		t.Errorf("Remove with a cancelled ctx = %v, want context.Canceled", err)
	}
	if _, err := be.Stat(context.Background(), h); err != nil {
		t.Errorf("Stat after Remove with a cancelled ctx: %v; want the file kept", err)
	}
}

func (s *suite) testConcurrentSave(t *testing.T) {
	be := s.backend(t)
	rng := s.rng(t)
	const n = 20
	want := make(map[backends.Handle][]byte, n)
	for range n {
		want[randomHandle(rng, backends.PackFile)] = randomBytes(rng, 1+rng.IntN(32<<10))
	}
	var wg sync.WaitGroup
	for h, data := range want {
		wg.Go(func() {
			if err := be.Save(context.Background(), h, backends.NewByteReader(data)); err != nil {
				t.Errorf("concurrent Save(%v): %v", h, err)
			}
		})
	}
	wg.Wait()
	files := list(t, be, backends.PackFile)
	if len(files) != n {
		t.Errorf("List after %d concurrent saves shows %d files", n, len(files))
	}
	for h, data := range want {
		if files[h.Name] != int64(len(data)) {
			t.Errorf("List shows %v with %d bytes, want %d", h, files[h.Name], len(data))
		}
		if got := LoadAll(t, be, h); !bytes.Equal(got, data) {
			t.Errorf("Load(%v) after concurrent saves: wrong content", h)
		}
	}
}

func (s *suite) testInvalidHandle(t *testing.T) {
	be := s.backend(t)
	ctx := context.Background()
	invalid := []backends.Handle{
		{Type: backends.PackFile, Name: "../x"},
		{Type: backends.PackFile, Name: "a/b"},
		{Type: backends.PackFile, Name: `a\b`},
		{Type: backends.PackFile, Name: ""},
		{Type: backends.KeyFile, Name: "."},
		{Type: backends.KeyFile, Name: ".."},
		{Type: backends.IndexFile, Name: "/etc/passwd"},
		{Type: backends.SnapshotFile, Name: "x.tmp-1"},
		{Type: backends.ConfigFile, Name: "x"},
		{Type: backends.ConfigFile, Name: "../config"},
		{Type: "bogus", Name: "abcd"},
		{Type: "", Name: "abcd"},
		{Type: "../data", Name: "abcd"},
	}
	for _, h := range invalid {
		_, statErr := be.Stat(ctx, h)
		for op, err := range map[string]error{
			"Save":   be.Save(ctx, h, backends.NewByteReader([]byte("hostile"))),
			"Load":   be.Load(ctx, h, 0, 0, func(io.Reader) error { return nil }),
			"Stat":   statErr,
			"Remove": be.Remove(ctx, h),
		} {
			if !errors.Is(err, backends.ErrPermanent) {
				t.Errorf("%s(%#v) = %v, want an error matching ErrPermanent", op, h, err)
			}
		}
	}
	for _, typ := range []backends.FileType{"bogus", "", "../data"} {
		if err := be.List(ctx, typ, func(backends.FileInfo) error { return nil }); err == nil {
			t.Errorf("List(%q) succeeded", typ)
		}
	}
	for _, typ := range backends.FileTypes() {
		if files := list(t, be, typ); len(files) != 0 {
			t.Errorf("after hostile saves, List(%s) = %v", typ, files)
		}
	}
}

func (s *suite) testClose(t *testing.T) {
	be := s.open(t)
	if c, ok := be.(backends.Creator); ok {
		if err := c.Create(context.Background()); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	rng := s.rng(t)
	save(t, be, randomHandle(rng, backends.KeyFile), randomBytes(rng, 100))
	if err := be.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
