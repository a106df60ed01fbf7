package database

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hoard-backup/hoard/config"
	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/dump/postgres"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

// RefusedError is a restore that was refused: the target holds data and
// Force was not given, or the snapshot holds another engine's dump.
type RefusedError struct{ Err error }

func (e RefusedError) Error() string { return e.Err.Error() }
func (e RefusedError) Unwrap() error { return e.Err }

// errRestoreStopped tells the snapshot reader that the restore ended.
var errRestoreStopped = errors.New("restore stopped")

// Progress shows how far a restore has come: done returns the bytes of
// the dump read so far, of total. It returns the function that stops
// showing it.
type Progress func(done func() uint64, total uint64) (stop func())

// Find finds the snapshot ref ("latest": the latest that holds the
// database) and its record of database name.
func Find(ctx context.Context, r *repo.Repository, name, ref string) (*snapshot.Snapshot, *snapshot.DatabaseInfo, error) {
	var sn *snapshot.Snapshot
	if strings.EqualFold(ref, "latest") {
		sns, _, err := snapshot.List(ctx, r)
		if err != nil {
			return nil, nil, err
		}
		for i := len(sns) - 1; i >= 0 && sn == nil; i-- {
			if sns[i].Source.Database(name) != nil {
				sn = sns[i]
			}
		}
		if sn == nil {
			return nil, nil, fmt.Errorf("%w: no snapshot holds database %s", snapshot.ErrNotFound, name)
		}
	} else {
		var err error
		if sn, err = snapshot.Find(ctx, r, ref, snapshot.Filter{}); err != nil {
			return nil, nil, err
		}
	}
	info := sn.Source.Database(name)
	if info == nil {
		return nil, nil, fmt.Errorf("%w: snapshot %s holds no database %s", snapshot.ErrNotFound, sn.ID.Str(), name)
	}
	return sn, info, nil
}

// Latest is the newest snapshot record of each database the repository's
// snapshots hold, by database name.
func Latest(sns []*snapshot.Snapshot) map[string]*snapshot.Snapshot {
	latest := map[string]*snapshot.Snapshot{}
	for _, sn := range sns { // oldest first
		for _, d := range sn.Source.Databases {
			latest[d.Name] = sn
		}
	}
	return latest
}

// CheckInto refuses a target URL of another engine than eng's: --into
// postgres://... for a MySQL database. A target that is not a URL (a name
// on the same server, a file) is not checked.
func CheckInto(eng dump.Engine, name, into string) error {
	if !strings.Contains(into, "://") {
		return nil
	}
	e, err := config.EngineOf(into)
	if err != nil {
		return err
	}
	if e != eng.Name() {
		return RefusedError{fmt.Errorf("database %s is a %s database; --into names a %s one", name, eng.Name(), e)}
	}
	return nil
}

// Load streams the dump that info records, from snapshot sn, into the
// engine's Restore and returns the dump's size. It refuses (RefusedError)
// a dump of another engine, a physical backup, and a target that holds
// data unless t.Force is set.
func Load(ctx context.Context, r *repo.Repository, sn *snapshot.Snapshot, info *snapshot.DatabaseInfo,
	eng dump.Engine, t dump.Target, progress Progress) (uint64, error) {
	if info.Format == postgres.FormatBaseBackup {
		return 0, RefusedError{fmt.Errorf("snapshot %s holds a physical backup of %s: restore it into a data directory with --data-dir DIR and --to-time, --to-lsn, --to-name or --to-end (docs/pitr.md)", sn.ID.Str(), info.Name)}
	}
	if info.Engine != eng.Name() {
		return 0, RefusedError{fmt.Errorf("snapshot %s holds a %s dump of %s, which cannot be restored into a %s database", sn.ID.Str(), info.Engine, info.Name, eng.Name())}
	}
	n, err := restorer.FindNode(ctx, r, sn, info.Path)
	if err != nil {
		return 0, err
	}
	if n.Type != snapshot.TypeFile {
		return 0, fmt.Errorf("snapshot %s: %s is a %s, not a dump", sn.ID.Str(), info.Path, n.Type)
	}
	src := DumpInfo(info)
	t.Source = &src
	pr, pw := io.Pipe()
	dumped := make(chan error, 1)
	cw := &countingWriter{w: pw}
	go func() {
		err := restorer.Dump(ctx, r, n, cw, 0)
		pw.CloseWithError(err)
		dumped <- err
	}()
	stop := func() {}
	if progress != nil {
		stop = progress(cw.n.Load, n.Size)
	}
	err = eng.Restore(ctx, pr, t)
	pr.CloseWithError(errRestoreStopped)
	derr := <-dumped
	stop()
	if err != nil {
		if errors.Is(err, dump.ErrNotEmpty) {
			return 0, RefusedError{err}
		}
		if derr != nil && !errors.Is(err, derr) && !errors.Is(derr, errRestoreStopped) {
			return 0, fmt.Errorf("%w (reading the snapshot: %v)", err, derr)
		}
		return 0, err
	}
	return n.Size, nil
}

type countingWriter struct {
	w io.Writer
	n atomic.Uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(uint64(n))
	return n, err
}

// RestoreOptions says where Restore loads a dump.
type RestoreOptions struct {
	// Into is the target: a database name on the engine's server or a URL
	// of the same engine, or a file for SQLite; empty: the engine's own
	// database.
	Into     string
	Force    bool // replace a target that holds data
	Progress Progress
}

// Restored is what Restore did.
type Restored struct {
	Snapshot *snapshot.Snapshot
	Info     *snapshot.DatabaseInfo // the snapshot's record of the dump
	Bytes    uint64                 // the dump's size
	Duration time.Duration
}

// Restore restores database name from snapshot ref ("latest": the latest
// that holds it) with engine eng.
func Restore(ctx context.Context, r *repo.Repository, eng dump.Engine, name, ref string, o RestoreOptions) (*Restored, error) {
	if err := CheckInto(eng, name, o.Into); err != nil {
		return nil, err
	}
	sn, info, err := Find(ctx, r, name, ref)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	size, err := Load(ctx, r, sn, info, eng, dump.Target{Into: o.Into, Force: o.Force}, o.Progress)
	if err != nil {
		return nil, err
	}
	return &Restored{Snapshot: sn, Info: info, Bytes: size, Duration: time.Since(start)}, nil
}
