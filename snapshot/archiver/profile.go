package archiver

import (
	"fmt"

	"github.com/hoard-backup/hoard/chunk"
)

// Chunk size profiles per item. Streams (dumps, standard input) want small
// chunks: a day's changes are scattered, and smaller chunks carry fewer
// unchanged bytes around them. Trees of media files want large ones: their
// files do not change in place, and large chunks mean fewer blobs and less
// index memory. The profile an item was cut with is recorded in the
// snapshot (Snapshot.ChunkProfiles), so that the next backup cuts it the
// same way and finds its unchanged chunks again.

// chunkProfile returns the profile for an item: its own, else
// Options.ChunkProfile, else what the parent snapshot recorded for it.
// Otherwise a new item gets its DefaultChunkProfile ("large" for media
// trees), else the repository's profile (hoard init's default is "dump");
// an item the parent has without a record (made before profiles were
// recorded) keeps the repository's, so that it is cut as before. An empty
// name means the repository's profile, when it is neither "dump" nor
// "large".
func (a *Archiver) chunkProfile(it *Item, key string, hasOld bool) string {
	if it.ChunkProfile != "" {
		return it.ChunkProfile
	}
	if a.o.ChunkProfile != "" {
		return a.o.ChunkProfile
	}
	if p := a.o.Parent; p != nil && p.ChunkProfiles[key] != "" {
		return p.ChunkProfiles[key]
	}
	if !hasOld && it.DefaultChunkProfile != "" {
		return it.DefaultChunkProfile
	}
	return profileName(a.r.Config().Chunker)
}

// profileName is the name of params' profile, or "" for another.
func profileName(p chunk.Params) string {
	for _, name := range []string{"dump", "large"} {
		if q, _ := chunk.Profile(name); q == p {
			return name
		}
	}
	return ""
}

// useProfile sets the chunker parameters for the item at key and records
// the choice.
func (a *Archiver) useProfile(it *Item, key string, hasOld bool) error {
	name := a.chunkProfile(it, key, hasOld)
	if name == "" {
		a.params = a.r.Config().Chunker
		return nil
	}
	p, err := chunk.Profile(name)
	if err != nil {
		return fmt.Errorf("archiver: %s: %w", key, err)
	}
	a.params = p
	if a.profiles == nil {
		a.profiles = map[string]string{}
	}
	a.profiles[key] = name
	return nil
}
