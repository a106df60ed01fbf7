package pitr

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hoard-backup/hoard/dump/postgres"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/wal"
	"github.com/hoard-backup/hoard/snapshot"
)

// Sentinel errors of restore.
var (
	// ErrNotEmpty means the data directory holds files and Force is not set.
	ErrNotEmpty = errors.New("pitr: the data directory is not empty (use --force to replace its content)")
	// ErrNoBaseBackup means no base backup fits the target.
	ErrNoBaseBackup = errors.New("pitr: no base backup")
)

// Target is where recovery stops. Exactly one of its forms is used: Time,
// LSN, Name, or none of them (the end of the archived WAL).
type Target struct {
	Time time.Time
	LSN  string // PostgreSQL's X/X notation
	Name string // a restore point made with pg_create_restore_point
}

// String describes the target for messages.
func (t Target) String() string {
	switch {
	case !t.Time.IsZero():
		return "time " + t.Time.Format(time.RFC3339Nano)
	case t.LSN != "":
		return "LSN " + t.LSN
	case t.Name != "":
		return "restore point " + strconv.Quote(t.Name)
	}
	return "the end of the archived WAL"
}

// ParseLSN parses PostgreSQL's X/X notation.
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("pitr: %q is not an LSN (like 0/16B3748)", s)
	}
	return h<<32 | l, nil
}

// BaseBackup is one base backup snapshot of a database.
type BaseBackup struct {
	Snapshot *snapshot.Snapshot
	DB       *snapshot.DatabaseInfo
	Timeline uint32
	StartWAL wal.Name
	StartLSN uint64
	StopLSN  uint64
	StopTime time.Time
	SegSize  int64
}

// BaseBackups returns the base backups of database name in sns, oldest
// first. Snapshots whose details do not parse are left out.
func BaseBackups(sns []*snapshot.Snapshot, name string) []BaseBackup {
	var out []BaseBackup
	for _, sn := range sns {
		db := sn.Source.Database(name)
		if db == nil || db.Format != postgres.FormatBaseBackup {
			continue
		}
		d := db.Details
		tli, err1 := strconv.ParseUint(d["timeline"], 10, 32)
		start, err2 := wal.ParseName(d["start_wal"])
		startLSN, err3 := ParseLSN(d["start_lsn"])
		stopLSN, err4 := ParseLSN(d["stop_lsn"])
		stop, err5 := time.Parse(time.RFC3339Nano, d["stop_time"])
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil || start.Kind != wal.Segment {
			continue
		}
		size, err := strconv.ParseInt(d["wal_segment_size"], 10, 64)
		if err != nil || size < 1<<20 || size > 1<<30 {
			size = DefaultSegmentSize
		}
		out = append(out, BaseBackup{Snapshot: sn, DB: db, Timeline: uint32(tli), StartWAL: start,
			StartLSN: startLSN, StopLSN: stopLSN, StopTime: stop, SegSize: size})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StopTime.Before(out[j].StopTime) })
	return out
}

// Choose picks the newest base backup that ended before the target: one
// that recovery can bring to a consistent state and then roll forward to
// the target. For a restore point or the end, the newest.
func Choose(bbs []BaseBackup, t Target) (BaseBackup, error) {
	var lsn uint64
	if t.LSN != "" {
		var err error
		if lsn, err = ParseLSN(t.LSN); err != nil {
			return BaseBackup{}, err
		}
	}
	for i := len(bbs) - 1; i >= 0; i-- {
		b := bbs[i]
		switch {
		case !t.Time.IsZero() && !b.StopTime.Before(t.Time):
		case t.LSN != "" && b.StopLSN > lsn:
		default:
			return b, nil
		}
	}
	if len(bbs) == 0 {
		return BaseBackup{}, fmt.Errorf("%w: the repository has no physical backup of this database (hoard db backup NAME --physical)", ErrNoBaseBackup)
	}
	return BaseBackup{}, fmt.Errorf("%w ended before %s: the oldest ended at %s (LSN %s)", ErrNoBaseBackup, t,
		bbs[0].StopTime.Format(time.RFC3339), bbs[0].DB.Details["stop_lsn"])
}

// CheckWAL makes sure that the archive holds every segment from the base
// backup's first on, up to the target: to the segment holding the target
// LSN, to the first segment pushed after the target time, or to the last
// archived segment (a restore point, the end). It returns a *MissingError
// naming the first segment missing. Entries are opened (for their push
// times) only for a time target.
func CheckWAL(ctx context.Context, r *repo.Repository, a *Archive, cluster string, bb BaseBackup, t Target) error {
	a.SetSegmentSize(cluster, bb.SegSize)
	first := bb.StartWAL.SegNo(bb.SegSize)
	stopSeg := bb.StopLSN / uint64(bb.SegSize)
	last, ok := a.lastSegment(cluster, bb.Timeline)
	if !ok || last < stopSeg {
		last = stopSeg
	}
	if t.LSN != "" {
		lsn, err := ParseLSN(t.LSN)
		if err != nil {
			return err
		}
		if seg := lsn / uint64(bb.SegSize); seg > stopSeg {
			last = seg
		} else {
			last = stopSeg
		}
	}
	for n := first; n <= last; n++ {
		tli, ok := a.segment(cluster, n, bb.Timeline)
		needed := "recovery to " + t.String()
		if n <= stopSeg {
			needed = "the base backup " + bb.Snapshot.ID.Str() + " (to become consistent)"
		}
		if !ok {
			return &MissingError{Cluster: cluster, Segment: wal.SegmentName(bb.Timeline, n, bb.SegSize), Needed: needed}
		}
		if !t.Time.IsZero() && n >= stopSeg {
			e, err := wal.Load(ctx, r, cluster, wal.SegmentName(tli, n, bb.SegSize))
			if err != nil {
				return err
			}
			if !e.Time.Before(t.Time) {
				return nil // pushed after the target: it holds the records up to it
			}
		}
	}
	if !t.Time.IsZero() {
		// Every archived segment was pushed before the target: the records
		// up to it would be in the next one, which is not archived (yet).
		return &MissingError{Cluster: cluster, Segment: wal.SegmentName(bb.Timeline, last+1, bb.SegSize),
			Needed: "recovery to " + t.String() + " (every archived segment was pushed before it)"}
	}
	return nil
}

// Extract writes a base backup's tar stream into dir, which must be empty
// unless force (then its content is removed first). Names that would
// leave dir are refused.
func Extract(rd io.Reader, dir string) error {
	tr := tar.NewReader(rd)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pitr: base backup tar: %w", err)
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return fmt.Errorf("pitr: base backup tar: %w: entry %q leaves the data directory", repo.ErrInvalidData, h.Name)
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				return fmt.Errorf("pitr: %w", err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return fmt.Errorf("pitr: %w", err)
			}
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(h.Mode)&0o700|0o600)
			if err != nil {
				return fmt.Errorf("pitr: %w", err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("pitr: write %s: %w", p, err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				return fmt.Errorf("pitr: %w", err)
			}
		}
	}
}

// PrepareDir makes dir an empty directory of mode 0700: it refuses one
// that holds files unless force, which removes them.
func PrepareDir(dir string, force bool) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(dir, 0o700)
	case err != nil:
		return fmt.Errorf("pitr: %w", err)
	case len(entries) > 0 && !force:
		return fmt.Errorf("%w: %s", ErrNotEmpty, dir)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("pitr: %w", err)
		}
	}
	return os.Chmod(dir, 0o700)
}

// quote is a value in postgresql.conf's syntax.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// WriteRecovery configures a restored data directory to replay archived
// WAL to the target: restore_command, the target, promotion when it is
// reached, the latest timeline, and recovery.signal. With noArchive the
// restored server does not archive (a trial restore must not add its new
// timeline to the archive the next restore follows).
func WriteRecovery(dir, restoreCommand string, t Target, noArchive bool) error {
	var b strings.Builder
	b.WriteString("\n# hoard db restore: point-in-time recovery to " + t.String() + "\n")
	b.WriteString("restore_command = " + quote(restoreCommand) + "\n")
	switch {
	case !t.Time.IsZero():
		b.WriteString("recovery_target_time = " + quote(t.Time.UTC().Format("2006-01-02 15:04:05.999999-07")) + "\n")
	case t.LSN != "":
		b.WriteString("recovery_target_lsn = " + quote(t.LSN) + "\n")
	case t.Name != "":
		b.WriteString("recovery_target_name = " + quote(t.Name) + "\n")
	}
	b.WriteString("recovery_target_timeline = 'latest'\n")
	if t != (Target{}) {
		b.WriteString("recovery_target_action = 'promote'\n")
	}
	if noArchive {
		b.WriteString("archive_mode = off\n")
	}
	f, err := os.OpenFile(filepath.Join(dir, "postgresql.auto.conf"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("pitr: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("pitr: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pitr: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "recovery.signal"), nil, 0o600); err != nil {
		return fmt.Errorf("pitr: %w", err)
	}
	return nil
}
