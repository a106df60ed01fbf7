package main

import (
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/snapshot/archiver"
)

// baseCacheMaxAge is how long a chunk no backup used stays in the base cache.
const baseCacheMaxAge = 8 * 24 * time.Hour

// baseCache opens the host's cache of stream chunks (docs/gpg.md) when the
// key cannot read the repository: it lets a write-only host store deltas.
// HOARD_NO_BASE_CACHE turns it off; HOARD_BASE_CACHE_MB bounds it (2048).
// nil when off or unavailable: backups then store full blobs.
func (g *globals) baseCache(r *repo.Repository) *archiver.BaseCache {
	if r.CanRead() || os.Getenv("HOARD_NO_BASE_CACHE") != "" || r.Config().Version < 2 {
		return nil
	}
	dir, err := cacheDir(r.Backend().Location())
	if err != nil {
		g.log.Warn("no base cache: deltas need a key that can read", "error", err)
		return nil
	}
	maxMB := int64(2048)
	if n, err := strconv.ParseInt(os.Getenv("HOARD_BASE_CACHE_MB"), 10, 64); err == nil && n >= 0 {
		maxMB = n
	}
	c, err := archiver.OpenBaseCache(filepath.Join(dir, "bases"), maxMB<<20, nil)
	if err != nil {
		g.log.Warn("no base cache: deltas need a key that can read", "error", err)
		return nil
	}
	return c
}

// trimBaseCache trims c after a backup; c may be nil.
func (g *globals) trimBaseCache(c *archiver.BaseCache) {
	if c == nil {
		return
	}
	size, err := c.Trim(baseCacheMaxAge)
	if err != nil {
		g.log.Warn("base cache", "error", err)
		return
	}
	g.log.Debug("base cache", "bytes", size)
}
