package database

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/dump/drill"
	"github.com/hoard-backup/hoard/dump/postgres"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/snapshot"
)

// ErrNoDrill is returned for a database a restore drill cannot prove: its
// engine cannot check a restored database (a physical backup).
var ErrNoDrill = errors.New("database: a restore drill needs a logical dump (pg_dump, mariadb-dump or an SQLite copy)")

// Drill is the outcome of a restore drill (hoard db verify).
type Drill struct {
	Snapshot    string             `json:"snapshot"`
	Database    string             `json:"database"`
	Engine      string             `json:"engine"`
	Scratch     string             `json:"scratch"`
	Passed      bool               `json:"passed"`
	Expected    string             `json:"expected"` // where the expected row counts come from: "fingerprint" (recorded at backup time) or "live" (the database, counted now)
	Notes       []string           `json:"notes,omitempty"`
	Checks      []dump.CheckResult `json:"checks"`
	Tables      []drill.Table      `json:"tables"`
	Failures    []string           `json:"failures,omitempty"`
	Leftovers   []string           `json:"leftovers_dropped,omitempty"`
	Bytes       uint64             `json:"bytes"`
	RestoreNS   int64              `json:"restore_ns"`
	CheckNS     int64              `json:"check_ns"`
	ScratchGone bool               `json:"scratch_dropped"`
	// Error is why a drill of several could not run to a verdict.
	Error string `json:"error,omitempty"`
	// Skipped is why a drill of several was not run (a physical backup,
	// a database not in the configuration); a skipped drill did not fail.
	Skipped string `json:"skipped,omitempty"`
}

// DrillOptions are a restore drill's settings.
type DrillOptions struct {
	// TempDir is where an SQLite scratch copy goes (the database's
	// temp_dir); empty: the system's.
	TempDir string
	// Progress shows the restore's progress.
	Progress Progress
}

// Checker is eng as a dump.Checker, or ErrNoDrill.
func Checker(eng dump.Engine) (dump.Checker, error) {
	ck, ok := eng.(dump.Checker)
	if !ok || eng.Format() == postgres.FormatBaseBackup {
		return nil, ErrNoDrill
	}
	return ck, nil
}

// DropLeftovers drops the scratch databases (SQLite: files in tempDir)
// that killed drills left on eng's server more than stale ago, and
// returns their names.
func DropLeftovers(ctx context.Context, eng dump.Engine, tempDir string, stale time.Duration) ([]string, error) {
	ck, err := Checker(eng)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if eng.Name() != dump.SQLite {
		return drill.DropStale(ctx, ck, now, stale)
	}
	var dropped []string
	for _, f := range drill.StaleFiles(drill.TempDir(tempDir), now, stale) {
		if err := ck.Drop(ctx, f); err != nil {
			return dropped, fmt.Errorf("removing the leftover scratch file %s: %w", f, err)
		}
		dropped = append(dropped, f)
	}
	return dropped, nil
}

// RunDrill restores database name's dump recorded in snapshot sn into a
// scratch database next to it (SQLite: a scratch file), runs the engine's
// checks on it, compares its tables' row counts with the fingerprint
// recorded at backup time (with the live database's when the snapshot has
// none), and drops it. A drill that ran reports its verdict in Passed and
// Failures; an error means it could not run to a verdict (the dump could
// not be restored, the checks could not run), and the Drill returned with
// it says how far it came.
func RunDrill(ctx context.Context, r *repo.Repository, eng dump.Engine, name string, sn *snapshot.Snapshot,
	o DrillOptions) (out *Drill, err error) {
	out = &Drill{Database: name, Engine: eng.Name(), Snapshot: sn.ID.String()}
	ck, err := Checker(eng)
	if err != nil {
		return out, err
	}
	info := sn.Source.Database(name)
	if info == nil {
		return out, fmt.Errorf("%w: snapshot %s holds no database %s", snapshot.ErrNotFound, sn.ID.Str(), name)
	}
	if out.Scratch, err = drill.ScratchName(name, time.Now()); err != nil {
		return out, err
	}
	if eng.Name() == dump.SQLite {
		out.Scratch = filepath.Join(drill.TempDir(o.TempDir), out.Scratch+".sqlite")
	}
	defer func() {
		// ctx may be cancelled (Ctrl-C): drop the scratch database anyway.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if derr := ck.Drop(dctx, out.Scratch); derr != nil {
			err = errors.Join(err, fmt.Errorf("dropping the scratch database %s: %w", out.Scratch, derr))
		} else {
			out.ScratchGone = true
		}
	}()

	start := time.Now()
	out.Bytes, err = Load(ctx, r, sn, info, eng, dump.Target{Into: out.Scratch}, o.Progress)
	if err != nil {
		return out, fmt.Errorf("restore drill of %s, snapshot %s: restoring into %s: %w", name, sn.ID.Str(), out.Scratch, err)
	}
	out.RestoreNS = time.Since(start).Nanoseconds()
	start = time.Now()
	if out.Checks, err = ck.Check(ctx, out.Scratch); err != nil {
		return out, err
	}
	restored, err := ck.Tables(ctx, out.Scratch)
	if err != nil {
		return out, err
	}
	// The fingerprint recorded at backup time says what the dump held;
	// snapshots without one are compared with the live database, counted
	// now (which may have changed since).
	out.Expected = "fingerprint"
	expected, ok := drill.Expected(info.Fingerprint, restored)
	if !ok {
		out.Expected = "live"
		out.Notes = append(out.Notes, "no fingerprint recorded: row counts compared with the live database's")
		if expected, err = ck.Tables(ctx, ""); err != nil {
			return out, fmt.Errorf("counting the rows of the live database %s: %w", name, err)
		}
	}
	out.Tables = drill.Compare(expected, restored)
	out.CheckNS = time.Since(start).Nanoseconds()
	out.Failures = drill.Failures(out.Checks, out.Tables)
	out.Passed = len(out.Failures) == 0
	return out, nil
}

// DrillTarget is a database a drill of several restores: its name and
// engine (nil when it is not configured, so that there is no server to
// drill on).
type DrillTarget struct {
	Name    string
	Engine  dump.Engine
	TempDir string // as DrillOptions.TempDir
	// Err is why the configured database's engine could not be made (a
	// secret that cannot be read): its drill fails with it.
	Err error
}

// Failed says whether the drill failed: it ran and did not pass, or it
// could not run. A skipped drill did not fail.
func (d *Drill) Failed() bool { return !d.Passed && d.Skipped == "" }

// DrillSnapshot drills each target's dump in snapshot sn (hoard run's
// verify_after_run), one after the other; a failed drill does not stop the
// next. stale is as in DropLeftovers.
func DrillSnapshot(ctx context.Context, r *repo.Repository, sn *snapshot.Snapshot, targets []DrillTarget,
	stale time.Duration, progress Progress) []*Drill {
	var out []*Drill
	for _, t := range targets {
		out = append(out, drillOne(ctx, r, t, sn, stale, progress))
	}
	return out
}

// DrillLatest drills, for each target, the latest snapshot that holds it;
// a target no snapshot holds fails. The databases the snapshots hold that
// are not among the targets are reported as skipped: there is no server
// to drill them on.
func DrillLatest(ctx context.Context, r *repo.Repository, targets []DrillTarget, stale time.Duration, progress Progress) ([]*Drill, error) {
	sns, _, err := snapshot.List(ctx, r)
	if err != nil {
		return nil, err
	}
	latest := Latest(sns)
	var out []*Drill
	known := map[string]bool{}
	for _, t := range targets {
		known[t.Name] = true
		sn := latest[t.Name]
		if sn == nil {
			d := &Drill{Database: t.Name}
			if t.Engine != nil {
				d.Engine = t.Engine.Name()
			}
			d.Error = fmt.Sprintf("%v: no snapshot holds database %s", snapshot.ErrNotFound, t.Name)
			if t.Err != nil {
				d.Error = t.Err.Error()
			}
			out = append(out, d)
			continue
		}
		out = append(out, drillOne(ctx, r, t, sn, stale, progress))
	}
	names := make([]string, 0, len(latest))
	for n := range latest {
		if !known[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		sn := latest[n]
		out = append(out, &Drill{Database: n, Engine: sn.Source.Database(n).Engine, Snapshot: sn.ID.String(),
			Skipped: "not in the configuration: no server to restore it on"})
	}
	return out, nil
}

func drillOne(ctx context.Context, r *repo.Repository, t DrillTarget, sn *snapshot.Snapshot, stale time.Duration, progress Progress) *Drill {
	if t.Err != nil {
		return &Drill{Database: t.Name, Snapshot: sn.ID.String(), Error: t.Err.Error()}
	}
	if t.Engine == nil {
		return &Drill{Database: t.Name, Snapshot: sn.ID.String(), Skipped: "not in the configuration: no server to restore it on"}
	}
	if _, err := Checker(t.Engine); err != nil {
		return &Drill{Database: t.Name, Engine: t.Engine.Name(), Snapshot: sn.ID.String(), Skipped: err.Error()}
	}
	left, err := DropLeftovers(ctx, t.Engine, t.TempDir, stale)
	if err != nil {
		return &Drill{Database: t.Name, Engine: t.Engine.Name(), Snapshot: sn.ID.String(), Leftovers: left, Error: err.Error()}
	}
	d, err := RunDrill(ctx, r, t.Engine, t.Name, sn, DrillOptions{TempDir: t.TempDir, Progress: progress})
	d.Leftovers = left
	if err != nil {
		d.Passed, d.Error = false, err.Error()
	}
	return d
}
