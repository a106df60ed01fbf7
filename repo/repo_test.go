package repo_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/chunk"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
)

const passphrase = "correct horse"

// newRepo creates a repository in memory. The iterated S2K keeps it fast.
func newRepo(t *testing.T) (*repo.Repository, *mem.Backend) {
	t.Helper()
	be := mem.New()
	r, err := repo.Init(context.Background(), be, repo.InitOptions{
		Options: repo.Options{Passphrase: []byte(passphrase)}, S2K: crypto.S2KIterated, Host: "test", Username: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	return r, be
}

// reopen opens the repository in be with pass and loads its index.
func reopen(t *testing.T, be backends.Backend, pass string) *repo.Repository {
	t.Helper()
	ctx := context.Background()
	r, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte(pass)})
	if err != nil {
		t.Fatal(err)
	}
	problems, err := r.LoadIndex(ctx)
	if err != nil || len(problems) > 0 {
		t.Fatalf("LoadIndex: %v %+v", err, problems)
	}
	return r
}

// randomBytes returns n bytes from a seeded source; the seed is logged.
func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("random data seed %d", seed)
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

func TestInitOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be := newRepo(t)
	cfg := r.Config()
	if cfg.Version != repo.FormatVersion || cfg.Compression != "zstd" || cfg.Chunker != chunk.DefaultParams() || cfg.PackSize != 16<<20 {
		t.Fatalf("config %+v", cfg)
	}
	if _, err := id.Parse(cfg.ID); err != nil {
		t.Fatalf("repository ID %q: %v", cfg.ID, err)
	}
	if !r.CanRead() {
		t.Fatal("the first key cannot read")
	}
	r2 := reopen(t, be, passphrase)
	got := r2.Config()
	if got.ID != cfg.ID || !got.Created.Equal(cfg.Created) || got.Chunker != cfg.Chunker || got.PackSize != cfg.PackSize ||
		got.Compression != cfg.Compression || r2.Polynomial() != r.Polynomial() || r2.KeyName() != r.KeyName() {
		t.Fatalf("opened config %+v, created %+v", got, cfg)
	}
	if _, err := repo.Init(ctx, be, repo.InitOptions{Options: repo.Options{Passphrase: []byte("x")}, S2K: crypto.S2KIterated}); !errors.Is(err, repo.ErrAlreadyExists) {
		t.Fatalf("second Init: %v, want ErrAlreadyExists", err)
	}
	if _, err := repo.Open(ctx, mem.New(), repo.Options{Passphrase: []byte(passphrase)}); !errors.Is(err, repo.ErrNoRepository) {
		t.Fatalf("Open of an empty backend: %v, want ErrNoRepository", err)
	}
	if _, err := repo.Init(ctx, mem.New(), repo.InitOptions{S2K: crypto.S2KIterated}); err == nil {
		t.Fatal("Init with an empty passphrase")
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, be := newRepo(t)
	raw, err := backends.LoadAll(ctx, be, backends.Handle{Type: backends.ConfigFile})
	if err != nil {
		t.Fatal(err)
	}
	config := func(change func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		change(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		config []byte // nil: unchanged
		pass   string
		want   error
	}{
		{"wrong passphrase", nil, "wrong", repo.ErrWrongPassword},
		{"empty passphrase", nil, "", repo.ErrWrongPassword},
		{"version 3", config(func(m map[string]any) { m["version"] = 3 }), passphrase, repo.ErrVersion},
		{"version 0", config(func(m map[string]any) { m["version"] = 0 }), passphrase, repo.ErrVersion},
		{"not a hoard config", config(func(m map[string]any) { m["hoard"] = "restic" }), passphrase, repo.ErrInvalidData},
		{"bad repository ID", config(func(m map[string]any) { m["id"] = "xyz" }), passphrase, repo.ErrInvalidData},
		{"not JSON", []byte("hoard"), passphrase, repo.ErrInvalidData},
		{"damaged body", config(func(m map[string]any) {
			b := []byte(m["body"].(string))
			b[20] ^= 1
			m["body"] = string(b)
		}), passphrase, repo.ErrInvalidData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be2 := copyBackend(t, be)
			if tc.config != nil {
				if err := be2.Save(ctx, backends.Handle{Type: backends.ConfigFile}, backends.NewByteReader(tc.config)); err != nil {
					t.Fatal(err)
				}
			}
			if r, err := repo.Open(ctx, be2, repo.Options{Passphrase: []byte(tc.pass)}); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, %v; want %v", r, err, tc.want)
			}
		})
	}
}

// copyBackend returns a new in-memory backend with every file of be.
func copyBackend(t *testing.T, be backends.Backend) *mem.Backend {
	t.Helper()
	ctx := context.Background()
	out := mem.New()
	for _, ft := range backends.FileTypes() {
		err := be.List(ctx, ft, func(fi backends.FileInfo) error {
			h := backends.Handle{Type: ft, Name: fi.Name}
			b, err := backends.LoadAll(ctx, be, h)
			if err != nil {
				return err
			}
			return out.Save(ctx, h, backends.NewByteReader(b))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestSaveBlobDedup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be := newRepo(t)
	for _, tc := range []struct {
		name string
		t    pack.BlobType
		data []byte
	}{
		{"data", pack.DataBlob, []byte("some file content")},
		{"tree", pack.TreeBlob, []byte(`{"nodes":[]}`)},
		{"same bytes as data, as a tree", pack.TreeBlob, []byte("some file content")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, err := r.SaveBlob(ctx, tc.t, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if first.Known || first.Stored == 0 || first.ID != r.BlobID(tc.data) {
				t.Fatalf("first save: %+v", first)
			}
			again, err := r.SaveBlob(ctx, tc.t, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if !again.Known || again.Stored != 0 || again.ID != first.ID {
				t.Fatalf("second save before flush: %+v", again)
			}
		})
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.Index().Len(); n != 3 {
		t.Fatalf("%d blobs in the index, want 3", n)
	}
	if res, err := r.SaveBlob(ctx, pack.DataBlob, []byte("some file content")); err != nil || !res.Known {
		t.Fatalf("save after flush: %+v, %v", res, err)
	}
	r2 := reopen(t, be, passphrase)
	if res, err := r2.SaveBlob(ctx, pack.TreeBlob, []byte(`{"nodes":[]}`)); err != nil || !res.Known {
		t.Fatalf("save after reopening: %+v, %v", res, err)
	}

	// Many goroutines saving the same blob store it once.
	data := []byte("saved by everyone at once")
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		stored int
	)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.SaveBlob(ctx, pack.DataBlob, data)
			if err != nil {
				t.Error(err)
				return
			}
			if !res.Known {
				mu.Lock()
				stored++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if stored != 1 {
		t.Fatalf("stored %d times", stored)
	}
}

func TestLoadBlobRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, be := newRepo(t)
	random := randomBytes(t, 1<<20)
	for _, tc := range []struct {
		name string
		t    pack.BlobType
		data []byte
		// stored is the sealed size SaveBlob must report; 0 means "less
		// than half the plaintext" (compressed).
		stored int
	}{
		{"empty", pack.DataBlob, []byte{}, 1 + crypto.Overhead},
		{"short, not compressed", pack.DataBlob, []byte("hello"), 5 + 1 + crypto.Overhead},
		{"incompressible", pack.DataBlob, random, len(random) + 1 + crypto.Overhead},
		{"compressible", pack.DataBlob, bytes.Repeat([]byte("hoard backup "), 50000), 0},
		{"largest chunk, compressible", pack.DataBlob, make([]byte, chunk.MaxSize), 0},
		{"tree", pack.TreeBlob, bytes.Repeat([]byte(`{"name":"a","type":"file"},`), 1000), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := r.SaveBlob(ctx, tc.t, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.stored == 0 && res.Stored >= len(tc.data)/2:
				t.Fatalf("stored %d bytes of %d compressible ones", res.Stored, len(tc.data))
			case tc.stored != 0 && res.Stored != tc.stored:
				t.Fatalf("stored %d bytes, want %d", res.Stored, tc.stored)
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := r.LoadBlob(ctx, tc.t, res.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.data) {
				t.Fatalf("loaded %d bytes, saved %d", len(got), len(tc.data))
			}
			// From a fresh open, through the index files, into a reused buffer.
			buf := make([]byte, 10, 100)
			got, err = reopen(t, be, passphrase).LoadBlob(ctx, tc.t, res.ID, buf)
			if err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("after reopening: %d bytes, %v", len(got), err)
			}
			other := pack.DataBlob
			if tc.t == pack.DataBlob {
				other = pack.TreeBlob
			}
			if _, err := r.LoadBlob(ctx, other, res.ID, nil); !errors.Is(err, repo.ErrBlobNotFound) {
				t.Fatalf("load as %s: %v, want ErrBlobNotFound", other, err)
			}
		})
	}
}

// TestDamagedPack changes stored packs: LoadBlob must notice and return an
// error matching repo.ErrInvalidData, never wrong bytes.
func TestDamagedPack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(data []byte, e pack.Entry) []byte // nil result: remove the pack
	}{
		{"flipped byte in the blob", func(d []byte, e pack.Entry) []byte { d[e.Offset+e.Length/2] ^= 1; return d }},
		{"flipped nonce", func(d []byte, e pack.Entry) []byte { d[e.Offset] ^= 0x80; return d }},
		{"flipped tag", func(d []byte, e pack.Entry) []byte { d[e.Offset+e.Length-1] ^= 1; return d }},
		{"blob moved", func(d []byte, e pack.Entry) []byte {
			return append(append(bytes.Clone(d[:e.Offset]), 0), d[e.Offset:]...)
		}},
		{"truncated", func(d []byte, e pack.Entry) []byte { return d[:e.Offset+e.Length-1] }},
		{"removed", func([]byte, pack.Entry) []byte { return nil }},
	} {
		for _, compressible := range []bool{false, true} {
			name := tc.name
			if compressible {
				name += ", compressed"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r, be := newRepo(t)
				data := []byte("incompressible? no, short")
				if compressible {
					data = bytes.Repeat([]byte("compress me "), 1000)
				}
				res, err := r.SaveBlob(ctx, pack.DataBlob, data)
				if err != nil {
					t.Fatal(err)
				}
				if err := r.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				loc := r.Index().Lookup(pack.DataBlob, res.ID)[0]
				h := backends.Handle{Type: backends.PackFile, Name: loc.Pack.ID.String()}
				stored, err := backends.LoadAll(ctx, be, h)
				if err != nil {
					t.Fatal(err)
				}
				entry := pack.Entry{Offset: loc.Offset, Length: loc.Length}
				if damaged := tc.damage(bytes.Clone(stored), entry); damaged == nil {
					err = be.Remove(ctx, h)
				} else {
					err = be.Save(ctx, h, backends.NewByteReader(damaged))
				}
				if err != nil {
					t.Fatal(err)
				}
				got, err := r.LoadBlob(ctx, pack.DataBlob, res.ID, nil)
				if !errors.Is(err, repo.ErrInvalidData) {
					t.Fatalf("got %d bytes, %v; want repo.ErrInvalidData", len(got), err)
				}
				var berr *repo.BlobError
				if !errors.As(err, &berr) || berr.ID != res.ID || berr.Type != pack.DataBlob {
					t.Fatalf("error %v does not name the blob", err)
				}
			})
		}
	}
}

// TestWriteOnlyKey opens the repository with a write-only key file: it can
// store data and trees and read trees, but not data.
func TestWriteOnlyKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	full, be := newRepo(t)
	secret := []byte("file content the writer must not read back")
	old, err := full.SaveBlob(ctx, pack.DataBlob, secret)
	if err != nil {
		t.Fatal(err)
	}
	oldTree, err := full.SaveBlob(ctx, pack.TreeBlob, []byte(`{"nodes":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := full.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	wo := full.Keys().Secrets.WriteOnlyCopy()
	keyFile, err := crypto.EncryptWithPassphrase(wo, []byte("writer"), crypto.S2KIterated)
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Save(ctx, backends.Handle{Type: backends.KeyFile, Name: id.Hash(keyFile).String()}, backends.NewByteReader(keyFile)); err != nil {
		t.Fatal(err)
	}

	w := reopen(t, be, "writer")
	if w.CanRead() || w.Keys().Secrets.Kind != crypto.WriteOnly {
		t.Fatalf("opened with kind %s, can read %v", w.Keys().Secrets.Kind, w.CanRead())
	}
	data := []byte("a new chunk from the writer")
	res, err := w.SaveBlob(ctx, pack.DataBlob, data)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := w.SaveBlob(ctx, pack.DataBlob, secret); err != nil || !again.Known {
		t.Fatalf("the writer does not deduplicate: %+v, %v", again, err)
	}
	tree := []byte(`{"nodes":[{"name":"a","type":"fifo","mode":0,"uid":0,"gid":0}]}`)
	treeRes, err := w.SaveBlob(ctx, pack.TreeBlob, tree)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		t    pack.BlobType
		id   id.ID
		want []byte // nil: ErrWriteOnly
	}{
		{"own tree", pack.TreeBlob, treeRes.ID, tree},
		{"tree of the full key", pack.TreeBlob, oldTree.ID, []byte(`{"nodes":[]}`)},
		{"own data", pack.DataBlob, res.ID, nil},
		{"data of the full key", pack.DataBlob, old.ID, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := w.LoadBlob(ctx, tc.t, tc.id, nil)
			if tc.want == nil {
				if !errors.Is(err, repo.ErrWriteOnly) || got != nil {
					t.Fatalf("got %q, %v; want repo.ErrWriteOnly", got, err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}

	// The full key reads what the writer stored.
	r := reopen(t, be, passphrase)
	if !r.CanRead() {
		t.Fatal("the full key file was not the one opened")
	}
	if got, err := r.LoadBlob(ctx, pack.DataBlob, res.ID, nil); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("full key reading the writer's data: %q, %v", got, err)
	}
}
