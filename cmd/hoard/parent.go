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

// ownFirst returns the snapshots the key in use wrote, if there are any,
// else all: a parent whose media trees' unchanged files are reused must be
// one of them (archiver.Options.Parent).
func ownFirst(r *repo.Repository, sns []*snapshot.Snapshot) []*snapshot.Snapshot {
	var own []*snapshot.Snapshot
	for _, sn := range sns {
		if snapshot.Verify(r, sn) == crypto.TrustThisKey {
			own = append(own, sn)
		}
	}
	if len(own) == 0 {
		return sns
	}
	return own
}

// streamParent is the parent of a backup of standard input or a command's
// output: the newest snapshot of the host that stored a stream under the
// same file name. Its content lets the archiver recognise the unchanged
// chunks of today's stream without searching for cut points.
func streamParent(sns []*snapshot.Snapshot, host, filename string) *snapshot.Snapshot {
	for i := len(sns) - 1; i >= 0; i-- {
		sn := sns[i]
		k := sn.Source.Kind
		if sn.Host == host && (k == "stdin" || k == "command") && sn.Source.Filename == filename {
			return sn
		}
	}
	return nil
}

// dbParent is the parent of a backup of databases (and media trees: paths):
// among the host's snapshots of the same media paths, the newest of those
// that hold the most of the databases. Without media paths, a snapshot
// holding none of them is no parent.
func dbParent(sns []*snapshot.Snapshot, host string, paths, dbs []string) *snapshot.Snapshot {
	f := snapshot.Filter{Host: host, Paths: paths}
	var best *snapshot.Snapshot
	bestScore := 0
	for i := len(sns) - 1; i >= 0; i-- {
		sn := sns[i]
		if !f.Match(sn) {
			continue
		}
		score := 0
		for _, name := range dbs {
			if sn.Source.Database(name) != nil {
				score++
			}
		}
		if best == nil && len(paths) > 0 || score > bestScore {
			best, bestScore = sn, score
		}
	}
	if len(paths) == 0 && bestScore == 0 {
		return nil
	}
	return best
}
