package database

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sort"

	"github.com/hoard-backup/hoard/config"
	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/archiver"
)

// Database is one database a backup dumps.
type Database struct {
	Name         string      // its name in the config file, recorded in the snapshot
	Engine       dump.Engine // dumps it
	ChunkProfile string      // as config.Database.ChunkProfile
}

// BackupOptions says what Backup puts into the snapshot.
type BackupOptions struct {
	// Kind is the snapshot's source kind: snapshot.KindDatabase or
	// snapshot.KindRun.
	Kind      string
	Databases []Database
	Media     []*config.Media
	// Meta is the snapshot's host, tags, user and program; Backup sets
	// its Paths, Source and Commit.
	Meta archiver.Meta
	// Archiver are the archiver's options; Backup chooses the Parent.
	Archiver archiver.Options
	// Progress, if set, is called with the archiver before the backup
	// starts and returns the function that stops showing it.
	Progress func(*archiver.Archiver) (stop func())
}

// ErrNotDumped is returned when a backup ended without dumping one of its
// databases (no snapshot is made).
var ErrNotDumped = errors.New("database: a database was not dumped")

// Backup dumps the databases and reads the media trees into one snapshot
// and returns it. The snapshot exists only if every dump succeeded: a
// failed dump tool fails the backup with its *dump.ToolError.
func Backup(ctx context.Context, r *repo.Repository, o BackupOptions) (*snapshot.Snapshot, error) {
	var items []archiver.Item
	records := make([]*snapshot.DatabaseInfo, len(o.Databases))
	names := make([]string, len(o.Databases))
	for i, d := range o.Databases {
		names[i] = d.Name
		eng := d.Engine
		file := FileName(d.Name, eng.Format())
		items = append(items, archiver.Item{Name: file, ChunkProfile: d.ChunkProfile, Open: func(ctx context.Context) (io.ReadCloser, error) {
			rc, info, err := eng.Backup(ctx)
			if err != nil {
				return nil, err
			}
			rec := Record(d.Name, "/"+file, info)
			rc, rec.Fingerprint = dump.Fingerprinted(rc, info)
			records[i] = &rec
			return rc, nil
		}})
	}
	var paths []string
	for _, m := range o.Media {
		for _, p := range m.Paths {
			items = append(items, archiver.Item{Name: "media/" + m.Name + "/" + RootName(p), Path: p, Excludes: m.Excludes,
				ChunkProfile: m.ChunkProfile, DefaultChunkProfile: "large"})
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	meta := o.Meta
	meta.Paths = paths
	meta.Source = snapshot.Source{Kind: o.Kind}
	meta.Commit = func(sn *snapshot.Snapshot) error {
		for _, rec := range records {
			if rec == nil {
				return ErrNotDumped
			}
			sn.Source.Databases = append(sn.Source.Databases, *rec)
		}
		return nil
	}

	sns, _, err := snapshot.List(ctx, r)
	if err != nil {
		return nil, err
	}
	if len(paths) > 0 {
		sns = OwnFirst(r, sns)
	}
	ao := o.Archiver
	ao.Parent = Parent(sns, meta.Host, paths, names)
	a := archiver.New(r, ao)
	stop := func() {}
	if o.Progress != nil {
		stop = o.Progress(a)
	}
	sn, err := a.Backup(ctx, items, meta)
	stop()
	return sn, err
}

// RootName is the name a media path gets in the snapshot, below
// media/NAME/: its last element, "root" for /.
func RootName(p string) string {
	if p == "/" {
		return "root"
	}
	return filepath.Base(p)
}

// Parent is the parent of a backup of databases dbs (and media trees:
// paths): among the host's snapshots of the same media paths, the newest
// of those that hold the most of the databases. Without media paths, a
// snapshot holding none of them is no parent.
func Parent(sns []*snapshot.Snapshot, host string, paths, dbs []string) *snapshot.Snapshot {
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

// OwnFirst returns the snapshots the key in use wrote, if there are any,
// else all: a parent whose media trees' unchanged files are reused must be
// one of them (archiver.Options.Parent).
func OwnFirst(r *repo.Repository, sns []*snapshot.Snapshot) []*snapshot.Snapshot {
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
