package postgres

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hoard-backup/hoard/dump"
)

// DefaultBaseBackupCommand is the tool of physical backups.
const DefaultBaseBackupCommand = "pg_basebackup"

// FormatBaseBackup is the Info.Format of a physical backup: the tar stream
// of pg_basebackup, without WAL (the WAL archive holds it).
const FormatBaseBackup = "basebackup"

// BaseBackupArgs are pg_basebackup's options: one tar on standard output,
// no WAL in it (the server's archive_command stores WAL, and the backup
// waits until the WAL it needs is archived), an immediate checkpoint.
func BaseBackupArgs() []string {
	return []string{"--format=tar", "--wal-method=none", "--checkpoint=fast", "--pgdata=-"}
}

// ErrNoArchiving means the server does not archive WAL, so a physical
// backup of it could not be restored.
var ErrNoArchiving = errors.New("postgres: archive_mode is off: a physical backup needs WAL archiving (archive_command = 'hoard wal push ...', docs/pitr.md)")

// BaseBackup is a physical backup of a whole cluster through
// pg_basebackup. It is a dump.Engine whose Restore refuses: a physical
// backup is restored by package pitr into a data directory.
type BaseBackup struct {
	p    *Postgres
	tool string
	now  func() time.Time
}

var _ dump.Engine = (*BaseBackup)(nil)

// BaseBackup returns the physical backup of p's cluster, made with tool
// (empty: pg_basebackup from PATH).
func (p *Postgres) BaseBackup(tool string, now func() time.Time) *BaseBackup {
	if tool == "" {
		tool = DefaultBaseBackupCommand
	}
	return &BaseBackup{p: p, tool: tool, now: now}
}

// Name is dump.Postgres: a base backup is of a PostgreSQL cluster.
func (b *BaseBackup) Name() string { return dump.Postgres }

// Format is FormatBaseBackup.
func (b *BaseBackup) Format() string { return FormatBaseBackup }

// Restore refuses: a base backup is restored into a data directory with
// hoard db restore --to-... (package pitr).
func (b *BaseBackup) Restore(context.Context, io.Reader, dump.Target) error {
	return errors.New("postgres: a physical backup is restored into a data directory: use hoard db restore NAME --data-dir DIR --to-end (docs/pitr.md)")
}

const physicalSQL = `SELECT current_setting('archive_mode'), (SELECT system_identifier FROM pg_control_system()),
 (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size');`

// Backup starts pg_basebackup. Info.Details gets system_identifier and
// wal_segment_size at once; timeline, start_lsn, start_wal, stop_lsn and
// stop_time once the stream has been read to its end and closed (they come
// from the backup_label and backup_manifest inside the tar).
func (b *BaseBackup) Backup(ctx context.Context) (io.ReadCloser, dump.Info, error) {
	p := b.p
	tv, err := dump.Version(ctx, b.tool)
	if err != nil {
		return nil, dump.Info{}, err
	}
	db := p.conn.db
	if db == "" {
		db = p.c.MaintenanceDB
	}
	info, err := p.probe(ctx, p.conn, db)
	if err != nil {
		return nil, dump.Info{}, err
	}
	rows, err := p.psql(ctx, p.conn, db, physicalSQL)
	if err != nil {
		return nil, dump.Info{}, err
	}
	if len(rows) != 1 || len(rows[0]) != 3 {
		return nil, dump.Info{}, fmt.Errorf("postgres: unexpected answer from %s", p.c.ClientCommand)
	}
	if rows[0][0] == "off" {
		return nil, dump.Info{}, ErrNoArchiving
	}
	info.Details["system_identifier"] = rows[0][1]
	info.Details["wal_segment_size"] = rows[0][2]
	info.Tool, info.ToolVersion = b.tool, tv
	info.Options = BaseBackupArgs()
	info.Format = FormatBaseBackup
	args := append([]string{"--no-password", "--dbname=" + p.conn.url(db)}, BaseBackupArgs()...)
	s, err := p.command(b.tool, p.conn, args...).Start(ctx)
	if err != nil {
		return nil, dump.Info{}, err
	}
	pr, pw := io.Pipe()
	rs := &baseStream{s: s, tee: io.TeeReader(s, pw), pw: pw, done: make(chan struct{}), details: info.Details, now: b.now}
	go rs.parse(pr)
	return rs, info, nil
}

// baseStream is pg_basebackup's output; a goroutine reads a copy of it as
// a tar to find the backup_label and the backup_manifest.
type baseStream struct {
	s       *dump.Stream
	tee     io.Reader
	pw      *io.PipeWriter
	done    chan struct{}
	details map[string]string
	now     func() time.Time

	found map[string]string
	err   error
}

func (b *baseStream) Read(p []byte) (int, error) { return b.tee.Read(p) }

// Close waits for pg_basebackup and fills the details.
func (b *baseStream) Close() error {
	err := b.s.Close()
	b.pw.CloseWithError(io.ErrUnexpectedEOF) // after EOF the parser has seen everything
	<-b.done
	if err != nil {
		return err
	}
	if b.err != nil {
		return fmt.Errorf("postgres: reading pg_basebackup's tar: %w", b.err)
	}
	for _, k := range []string{"timeline", "start_lsn", "start_wal", "stop_lsn"} {
		if b.found[k] == "" {
			return fmt.Errorf("postgres: pg_basebackup's tar has no %s (backup_label or backup_manifest missing)", k)
		}
		b.details[k] = b.found[k]
	}
	b.details["stop_time"] = b.now().UTC().Format(time.RFC3339Nano)
	return nil
}

func (b *baseStream) parse(r *io.PipeReader) {
	defer close(b.done)
	defer func() { _, _ = io.Copy(io.Discard, r) }() // never block the backup
	b.found = map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				b.err = err
			}
			return
		}
		switch h.Name {
		case "backup_label":
			parseLabel(io.LimitReader(tr, 1<<16), b.found)
		case "backup_manifest":
			if err := parseManifest(io.LimitReader(tr, 1<<30), b.found); err != nil {
				b.err = err
				return
			}
		}
	}
}

// parseLabel reads START WAL LOCATION and START TIMELINE of a backup_label.
func parseLabel(r io.Reader, out map[string]string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		switch k {
		case "START WAL LOCATION": // 0/2000028 (file 000000010000000000000002)
			var lsn, file string
			if _, err := fmt.Sscanf(v, "%s (file %24s)", &lsn, &file); err == nil {
				out["start_lsn"], out["start_wal"] = lsn, file
			}
		case "START TIMELINE":
			if _, err := strconv.ParseUint(v, 10, 32); err == nil {
				out["timeline"] = v
			}
		}
	}
}

// parseManifest reads the WAL range of a backup_manifest.
func parseManifest(r io.Reader, out map[string]string) error {
	var m struct {
		WALRanges []struct {
			Timeline uint32 `json:"Timeline"`
			Start    string `json:"Start-LSN"`
			End      string `json:"End-LSN"`
		} `json:"WAL-Ranges"`
	}
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return fmt.Errorf("backup_manifest: %w", err)
	}
	if n := len(m.WALRanges); n > 0 {
		out["stop_lsn"] = m.WALRanges[n-1].End
	}
	return nil
}
