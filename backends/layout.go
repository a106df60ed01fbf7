package backends

import (
	"context"
	"fmt"
)

// The repository layout, the same in every backend so that a repository
// folder can be copied between them as it is (docs/FORMAT.md, "Layout"):
//
//	config
//	keys/NAME  index/NAME  snapshots/NAME  locks/NAME
//	data/NA/NAME       packs, sharded by the first two characters of NAME
//
// Backends join these slash-separated paths to their root (a folder, a
// bucket prefix) and never spell the layout themselves.

// Path returns the slash-separated path of h below the repository's root,
// after checking that h is Valid. An invalid handle is an error that also
// matches ErrPermanent.
func Path(h Handle) (string, error) {
	if err := h.Valid(); err != nil {
		return "", fmt.Errorf("%w (%w)", err, ErrPermanent)
	}
	switch h.Type {
	case ConfigFile:
		return string(h.Type), nil
	case PackFile:
		if len(h.Name) < 2 {
			return "", fmt.Errorf("backends: pack name %q is too short to shard: %w", h.Name, ErrPermanent)
		}
		return ShardDir(h.Name) + "/" + h.Name, nil
	}
	return string(h.Type) + "/" + h.Name, nil
}

// Dirs returns the folders below the root that a valid h lives in, parents
// first: none for the config, "TYPE" for most files, "data" and its shard
// for a pack. Backends with real folders create them before a Save.
func Dirs(h Handle) []string {
	switch h.Type {
	case ConfigFile:
		return nil
	case PackFile:
		return []string{string(PackFile), ShardDir(h.Name)}
	}
	return []string{string(h.Type)}
}

// ShardDir returns the folder, below the root, of the pack named name:
// "data/" and name's first two characters. name must be at least two
// characters long (Path checks that).
func ShardDir(name string) string { return string(PackFile) + "/" + name[:2] }

// ShardDirs returns the 256 folders of the pack shards of names in lowercase
// hex (pack IDs), which backends with real folders create in Create.
func ShardDirs() []string {
	dirs := make([]string, 0, 256)
	for i := range 256 {
		dirs = append(dirs, fmt.Sprintf("%s/%02x", PackFile, i))
	}
	return dirs
}

// IsShard reports whether name, an entry of the pack folder, names a shard
// folder: exactly two characters.
func IsShard(name string) bool { return len(name) == 2 }

// ListShards reads the given shard folders of the pack folder with read, up
// to limit at once and ahead of emit, and calls emit with each shard's
// entries in the order of shards, in the calling goroutine. It is the pack
// listing of the backends that must read one folder per shard. read's and
// emit's errors are returned as they are (read runs in other goroutines:
// translate its errors there); a done ctx ends the listing with ctx's error
// after prefix and the operation, as in "sftp: list data: context canceled".
// Every read has returned when ListShards returns.
func ListShards[E any](ctx context.Context, prefix string, shards []string, limit int,
	read func(ctx context.Context, shard string) ([]E, error), emit func(shard string, entries []E) error) error {
	if limit < 1 {
		limit = 1
	}
	type result struct {
		entries []E
		err     error
	}
	results := make([]chan result, len(shards))
	for i := range results {
		results[i] = make(chan result, 1) // each reader sends once and never blocks
	}
	lctx, cancel := context.WithCancel(ctx)
	sem := make(chan struct{}, limit)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, s := range shards {
			select {
			case sem <- struct{}{}:
			case <-lctx.Done():
				results[i] <- result{err: lctx.Err()}
				continue
			}
			go func() {
				defer func() { <-sem }()
				e, err := read(lctx, s)
				results[i] <- result{e, err}
			}()
		}
		for range limit {
			sem <- struct{}{} // wait for the last readers
		}
	}()
	defer func() {
		cancel()
		<-done
	}()
	for i, s := range shards {
		var r result
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			return fmt.Errorf("%s: list %s: %w", prefix, PackFile, ctx.Err())
		}
		if r.err != nil {
			return r.err
		}
		if err := emit(s, r.entries); err != nil {
			return err
		}
	}
	return nil
}
