package archiver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/hoard-backup/hoard/chunk"
	"github.com/hoard-backup/hoard/repo/id"
)

// BaseCache keeps, in a folder on this host, the plaintexts of the full
// chunks of the streams this host backed up last (database dumps,
// standard input), so that a host whose key cannot read the repository (a
// write-only key) can still store the next version's changed chunks as
// deltas against them (docs/FORMAT.md, section 14.6; docs/gpg.md). Each
// chunk is one file named by its ID, zstd-compressed, mode 0600. Get and
// Put touch a file's time; Trim removes what no backup used lately and
// keeps the folder under its size. The repository checks what Get returns
// against the ID, so a damaged file only costs a full blob. Safe for
// concurrent use.
type BaseCache struct {
	dir      string
	maxBytes int64
	enc      *zstd.Encoder
	dec      *zstd.Decoder
	now      func() time.Time
}

// OpenBaseCache opens (making it if needed) the cache folder dir, which
// Trim keeps under maxBytes.
func OpenBaseCache(dir string, maxBytes int64, now func() time.Time) (*BaseCache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("archiver: base cache: %w", err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(chunk.MaxSize+1<<20))
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &BaseCache{dir: dir, maxBytes: maxBytes, enc: enc, dec: dec, now: now}, nil
}

func (c *BaseCache) path(bid id.ID) string {
	s := bid.String()
	return filepath.Join(c.dir, s[:2], s)
}

// Get returns the plaintext of chunk bid, if the cache has it.
func (c *BaseCache) Get(bid id.ID) ([]byte, bool) {
	p := c.path(bid)
	b, err := os.ReadFile(p)
	if err != nil || len(b) > chunk.MaxSize+1<<20 {
		return nil, false
	}
	plain, err := c.dec.DecodeAll(b, nil)
	if err != nil || len(plain) > chunk.MaxSize {
		return nil, false
	}
	c.touch(p)
	return plain, true
}

// Has reports whether the cache has chunk bid, and marks it as used.
func (c *BaseCache) Has(bid id.ID) bool { return c.touch(c.path(bid)) == nil }

func (c *BaseCache) touch(p string) error {
	t := c.now()
	return os.Chtimes(p, t, t)
}

// Put keeps plain as chunk bid. Errors are ignored: a chunk missing from
// the cache is stored in full next time.
func (c *BaseCache) Put(bid id.ID, plain []byte) {
	p := c.path(bid)
	if c.touch(p) == nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return
	}
	_, err = tmp.Write(c.enc.EncodeAll(plain, nil))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
}

// Trim removes the chunks no backup used for maxAge, and then the least
// recently used ones until the cache is at most maxBytes. It returns the
// size left.
func (c *BaseCache) Trim(maxAge time.Duration) (int64, error) {
	type file struct {
		path string
		size int64
		mod  time.Time
	}
	var files []file
	err := filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		files = append(files, file{p, fi.Size(), fi.ModTime()})
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("archiver: base cache: %w", err)
	}
	slices.SortFunc(files, func(a, b file) int { return b.mod.Compare(a.mod) }) // newest first
	var total int64
	cutoff := c.now().Add(-maxAge)
	for _, f := range files {
		if f.mod.Before(cutoff) || total+f.size > c.maxBytes {
			os.Remove(f.path)
			continue
		}
		total += f.size
	}
	return total, nil
}
