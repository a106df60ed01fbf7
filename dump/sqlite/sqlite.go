// Package sqlite backs up an SQLite database file while an application
// writes to it, and restores it atomically.
//
// Backup runs the sqlite3 command-line tool's `VACUUM INTO` on a read-only
// connection: one read transaction, so the copy is one consistent state of
// the database however the application writes (in WAL mode it does not
// even block the writers; in rollback-journal mode writers wait, with their
// busy timeout, for the copy to finish). The copy keeps the page size,
// auto-vacuum mode, user_version and application_id, and leaves out free
// pages; VACUUM INTO writes a rollback-journal database, so the WAL flag of
// a WAL-mode source is set again on the copy. SQLite's
// copy needs a file, so it is made in a temporary directory (TempDir) and
// streamed from there; it is removed when the stream is closed.
//
// The sqlite3 tool is used instead of a Go driver: mattn/go-sqlite3 needs
// cgo and modernc.org/sqlite takes minutes to compile, for what two tool
// runs do.
//
// Restore writes the stream to a temporary file beside the target, checks
// it with PRAGMA integrity_check, and renames it over the target.
package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hoard-backup/hoard/dump"
)

// DefaultCommand is the sqlite3 command-line tool.
const DefaultCommand = "sqlite3"

// DefaultBusyTimeoutMs is how long the copy waits for a writer's lock.
const DefaultBusyTimeoutMs = 60000

// Config names the database file and the tool.
type Config struct {
	// Path is the database file.
	Path string
	// Command is the sqlite3 tool; empty means DefaultCommand.
	Command string
	// TempDir holds the consistent copy while it is streamed; empty means
	// the system's temporary directory. It needs room for the database.
	TempDir string
	// BusyTimeoutMs is how long to wait for a writer's lock; 0 means
	// DefaultBusyTimeoutMs.
	BusyTimeoutMs int
	// Stderr receives the tool's standard error as it runs; may be nil.
	Stderr io.Writer
}

// SQLite is one database file.
type SQLite struct {
	c Config
}

var _ dump.Engine = (*SQLite)(nil)

// New checks the configuration.
func New(c Config) (*SQLite, error) {
	if c.Path == "" {
		return nil, errors.New("sqlite: no database path")
	}
	p, err := filepath.Abs(c.Path)
	if err != nil {
		return nil, err
	}
	c.Path = p
	if c.Command == "" {
		c.Command = DefaultCommand
	}
	if c.BusyTimeoutMs <= 0 {
		c.BusyTimeoutMs = DefaultBusyTimeoutMs
	}
	return &SQLite{c: c}, nil
}

// Name is dump.SQLite.
func (s *SQLite) Name() string { return dump.SQLite }

// Format is "sqlite": the dump is a database file.
func (s *SQLite) Format() string { return "sqlite" }

// tool runs sqlite3 on file with the given commands; -init /dev/null keeps
// a user's ~/.sqliterc out of it.
func (s *SQLite) tool(file string, readonly bool, commands ...string) dump.Command {
	args := []string{"-init", "/dev/null", "-batch", "-bail"}
	if readonly {
		args = append(args, "-readonly")
	}
	args = append(args, file)
	args = append(args, commands...)
	return dump.Command{Path: s.c.Command, Args: args}
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Backup makes a consistent copy of the database and returns a stream of
// it. Closing the stream removes the copy.
func (s *SQLite) Backup(ctx context.Context) (io.ReadCloser, dump.Info, error) {
	tv, err := dump.Version(ctx, s.c.Command)
	if err != nil {
		return nil, dump.Info{}, err
	}
	fi, err := os.Stat(s.c.Path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, dump.Info{}, fmt.Errorf("sqlite: %s: %w (%w)", s.c.Path, err, dump.ErrSource)
	}
	if !fi.Mode().IsRegular() {
		return nil, dump.Info{}, fmt.Errorf("sqlite: %s is not a regular file (%w)", s.c.Path, dump.ErrSource)
	}
	dir, err := os.MkdirTemp(s.c.TempDir, "hoard-sqlite-")
	if err != nil {
		return nil, dump.Info{}, fmt.Errorf("sqlite: %w", err)
	}
	cp := filepath.Join(dir, "copy.db")
	cmd := s.tool(s.c.Path, true, fmt.Sprintf(".timeout %d", s.c.BusyTimeoutMs), "PRAGMA journal_mode", "VACUUM INTO "+sqlString(cp))
	cmd.Stderr = s.c.Stderr
	out, err := cmd.Output(ctx, nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, dump.Info{}, err
	}
	journal := strings.TrimSpace(string(out))
	// VACUUM INTO writes a rollback-journal database: give the copy the
	// source's WAL flag back, so that the restored file is in WAL mode too.
	// The same run lists the tables, whose rows are counted in the copy
	// (one consistent state, unlike the live file a drill could count
	// later) and recorded as the dump's fingerprint.
	commands := []string{".mode list", ".separator | \"\\n\"", "SELECT 'version', sqlite_version()", tablesQuery}
	if journal == "wal" {
		commands = append([]string{"PRAGMA journal_mode = WAL"}, commands...)
	}
	out, err = s.tool(cp, false, commands...).Output(ctx, nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, dump.Info{}, err
	}
	var version string
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "version|"); ok {
			version = v
		}
	}
	// A table that cannot be counted (a virtual table of a module the
	// tool lacks) leaves the dump without a fingerprint, not the backup
	// without its dump.
	var rows map[string]int64
	if names, err := tableNames(string(out)); err == nil {
		rows, _ = s.count(ctx, cp, names)
	}
	f, err := os.Open(cp)
	if err != nil {
		os.RemoveAll(dir)
		return nil, dump.Info{}, fmt.Errorf("sqlite: %w", err)
	}
	info := dump.Info{Engine: dump.SQLite, Database: s.c.Path, ServerVersion: version,
		Tool: s.c.Command, ToolVersion: tv, Options: []string{"VACUUM INTO"}, Format: "sqlite",
		Details: map[string]string{"journal_mode": journal}}
	return &copyStream{f: f, dir: dir, rows: rows}, info, nil
}

// copyStream reads the copy and removes it on Close.
type copyStream struct {
	f    *os.File
	dir  string
	rows map[string]int64 // counted in the copy (nil: could not be)
}

// CountedRows makes the copy's row counts the dump's fingerprint
// (dump.Counted).
func (c *copyStream) CountedRows() map[string]int64 { return c.rows }

func (c *copyStream) Read(p []byte) (int, error) { return c.f.Read(p) }

func (c *copyStream) Close() error {
	err := c.f.Close()
	if rerr := os.RemoveAll(c.dir); err == nil {
		err = rerr
	}
	return err
}

// Restore writes the database to Target.Into (default: the configured
// path) through a temporary file in the same directory, which must pass
// PRAGMA integrity_check before it replaces the target. An existing
// non-empty target is replaced only with Force; its -wal, -shm and
// -journal files are removed with it. Stop the applications that use it
// first.
func (s *SQLite) Restore(ctx context.Context, r io.Reader, t dump.Target) (err error) {
	dest := s.c.Path
	if t.Into != "" {
		if dest, err = filepath.Abs(t.Into); err != nil {
			return err
		}
	}
	if fi, err := os.Stat(dest); err == nil {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("sqlite: %s is not a regular file", dest)
		}
		if fi.Size() > 0 && !t.Force {
			return fmt.Errorf("%s: %w", dest, dump.ErrNotEmpty)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sqlite: %w", err)
	}
	dir := filepath.Dir(dest)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".hoard-restore-*")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	name := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			removeDB(name)
		}
	}()
	if _, err := io.Copy(tmp, ctxReader{ctx, r}); err != nil {
		return fmt.Errorf("sqlite: writing %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	out, err := s.tool(name, true, "PRAGMA integrity_check").Output(ctx, nil)
	// A read-only look at a WAL-mode file may leave empty -wal/-shm files.
	removeSidecars(name)
	var te *dump.ToolError
	switch {
	case errors.As(err, &te) && te.Stderr != "":
		return fmt.Errorf("sqlite: the restored database fails PRAGMA integrity_check: %s", strings.TrimSpace(te.Stderr))
	case err != nil:
		return err
	}
	if res := strings.TrimSpace(string(out)); res != "ok" {
		return fmt.Errorf("sqlite: the restored database fails PRAGMA integrity_check: %.2000s", res)
	}
	if t.Force {
		removeSidecars(dest)
	}
	if err := os.Rename(name, dest); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func removeSidecars(db string) {
	for _, suf := range []string{"-wal", "-shm", "-journal"} {
		_ = os.Remove(db + suf)
	}
}

func removeDB(db string) {
	_ = os.Remove(db)
	removeSidecars(db)
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
