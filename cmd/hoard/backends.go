package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/cache"
	"github.com/hoard-backup/hoard/backends/dropbox"
	"github.com/hoard-backup/hoard/backends/ftp"
	"github.com/hoard-backup/hoard/backends/local"
	"github.com/hoard-backup/hoard/backends/retry"
	"github.com/hoard-backup/hoard/backends/s3"
	"github.com/hoard-backup/hoard/backends/sftp"
)

// registry lists the backends this build knows; cmd is the one place that
// registers them (no init-time registration, so what a build holds is read here). Remote backends are wrapped in the retry
// layer and, unless HOARD_NO_CACHE is set, a local metadata cache.
func registry(log *slog.Logger) backends.Registry {
	return backends.Registry{
		"local":   local.Opener,
		"sftp":    remote(sftp.Opener, log),
		"ftp":     remote(ftp.Opener, log),
		"ftps":    remote(ftp.Opener, log),
		"s3":      remote(s3.Opener, log),
		"s3+http": remote(s3.Opener, log),
		"dropbox": remote(dropbox.Opener, log),
	}
}

func remote(open backends.Opener, log *slog.Logger) backends.Opener {
	return func(ctx context.Context, location string) (backends.Backend, error) {
		be, err := open(ctx, location)
		if err != nil {
			return nil, err
		}
		var out backends.Backend = retry.New(be, retry.Options{Logger: log})
		if os.Getenv("HOARD_NO_CACHE") != "" {
			return out, nil
		}
		dir, err := cacheDir(be.Location())
		if err != nil {
			log.Warn("no metadata cache", "error", err)
			return out, nil
		}
		c, err := cache.New(out, dir)
		if err != nil {
			log.Warn("no metadata cache", "error", err)
			return out, nil
		}
		return c, nil
	}
}

// cacheDir is $HOARD_CACHE_DIR or the user cache dir, then hoard/ and a hash
// of the (credential-free) location.
func cacheDir(location string) (string, error) {
	base := os.Getenv("HOARD_CACHE_DIR")
	if base == "" {
		ucd, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("cache dir: %w", err)
		}
		base = filepath.Join(ucd, "hoard")
	}
	sum := sha256.Sum256([]byte(location))
	return filepath.Join(base, hex.EncodeToString(sum[:8])), nil
}
