package main

import (
	"log/slog"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/snapshot"
)

// fileParent is the parent of a backup of paths: the newest snapshot of
// the paths (f) that the key in use wrote, since the archiver reuses the
// content of unchanged files only from such a parent (a write-only holder
// can write a snapshot for any host's paths). Without one it is the newest
// snapshot of the paths, which the archiver follows only as a hint.
func fileParent(r *repo.Repository, sns []*snapshot.Snapshot, f snapshot.Filter, log *slog.Logger) *snapshot.Snapshot {
	var newest *snapshot.Snapshot
	for i := len(sns) - 1; i >= 0; i-- {
		sn := sns[i]
		if !f.Match(sn) {
			continue
		}
		if snapshot.Verify(r, sn) == crypto.TrustThisKey {
			if newest != nil {
				log.Warn("the newest snapshot of these paths was not written by this key; using an older one as parent",
					"newest", newest.ID.Str(), "writer", newest.Writer, "parent", sn.ID.Str())
			}
			return sn
		}
		if newest == nil {
			newest = sn
		}
	}
	return newest
}

// streamParent is the parent of a backup of standard input or a command's
// output: the newest snapshot of the host that stored a stream under the
// same file name. Its content lets the archiver recognise the unchanged
// chunks of today's stream without searching for cut points.
func streamParent(sns []*snapshot.Snapshot, host, filename string) *snapshot.Snapshot {
	for i := len(sns) - 1; i >= 0; i-- {
		sn := sns[i]
		k := sn.Source.Kind
		if sn.Host == host && (k == snapshot.KindStdin || k == snapshot.KindCommand) && sn.Source.Filename == filename {
			return sn
		}
	}
	return nil
}
