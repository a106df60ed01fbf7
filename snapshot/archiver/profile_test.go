package archiver_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/chunk"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/archiver"
)

// TestChunkProfiles: in a repository of the dump profile, a new media tree
// (default "large") is cut with the large profile and a stream with the
// dump profile;
// both are recorded, and the next backup follows the record, also for a
// stream first cut with --chunk-profile large. A parent without a record
// keeps the repository's profile.
func TestChunkProfiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dump := chunk.DumpParams()
	r, err := repo.Init(ctx, mem.New(), repo.InitOptions{Options: repo.Options{Passphrase: []byte(deltaPass)},
		S2K: crypto.S2KIterated, Chunker: &dump})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	media := make([]byte, 6<<20)
	for i := range media {
		media[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(filepath.Join(dir, "video.mp4"), media, 0o600); err != nil {
		t.Fatal(err)
	}
	stream := dumpDay(1)
	open := func(b []byte) func(context.Context) (io.ReadCloser, error) {
		return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	items := func() []archiver.Item {
		return []archiver.Item{{Name: "media", Path: dir, DefaultChunkProfile: "large"}, {Name: "db/main.sql", Open: open(stream)}}
	}
	backup := func(o archiver.Options, its []archiver.Item) *snapshot.Snapshot {
		t.Helper()
		sn, err := archiver.New(r, o).Backup(ctx, its, archiver.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		return sn
	}
	first := backup(archiver.Options{}, items())
	if got := first.ChunkProfiles; got["media"] != "large" || got["db/main.sql"] != "dump" {
		t.Fatalf("recorded %v", got)
	}
	// The media file: about 6 blobs of ~1 MiB, not ~48 of ~128 KiB.
	if n := first.Summary.DataBlobsNew; n > 30 {
		t.Fatalf("%d new data blobs: the media file was not cut large", n)
	}

	// A stream cut large by request is cut large again without it.
	large := backup(archiver.Options{ChunkProfile: "large"}, []archiver.Item{{Name: "s", Open: open(stream)}})
	again := backup(archiver.Options{Parent: large}, []archiver.Item{{Name: "s", Open: open(stream)}})
	if again.ChunkProfiles["s"] != "large" || again.Summary.DataBlobsNew != 0 {
		t.Fatalf("second backup: profiles %v, %d new blobs", again.ChunkProfiles, again.Summary.DataBlobsNew)
	}

	// A parent without a record (older hoard) keeps the repository's profile.
	old := *first
	old.ChunkProfiles = nil
	next := backup(archiver.Options{Parent: &old}, items())
	if got := next.ChunkProfiles; got["media"] != "dump" || got["db/main.sql"] != "dump" {
		t.Fatalf("after a parent without a record: %v", got)
	}
}
