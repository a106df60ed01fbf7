package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/config"
	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/dump/postgres"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

// refusedError marks a restore that was refused: the target holds data
// and --force was not given, or the snapshot holds another engine's dump.
type refusedError struct{ err error }

func (e refusedError) Error() string { return e.err.Error() }
func (e refusedError) Unwrap() error { return e.err }

// errRestoreStopped tells the snapshot reader that the restore ended.
var errRestoreStopped = errors.New("restore stopped")

type dbRestoreOptions struct {
	into  string
	force bool
	pitr  pitrOptions // dbpitr.go
}

func dbRestoreCommand(g *globals) *cli.Command {
	o := &dbRestoreOptions{}
	return &cli.Command{
		Name:      "restore",
		Usage:     "restore a database from a snapshot (default: the latest that holds it)",
		ArgsUsage: "NAME [SNAPSHOT|latest]",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "into", Destination: &o.into,
				Usage: "restore into this database (a name on the same server, or a URL) or SQLite file instead of NAME's own"},
			&cli.BoolFlag{Name: "force", Destination: &o.force, Usage: "replace the target even if it holds data"},
		}, pitrFlags(&o.pitr)...),
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usagef("db restore takes NAME [SNAPSHOT|latest]")
			}
			ref := "latest"
			if c.NArg() == 2 {
				ref = c.Args().Get(1)
			}
			if o.pitr.wanted() {
				return runPITRRestore(c.Context, g, o, c.Args().First(), ref)
			}
			return runDBRestore(c.Context, g, o, c.Args().First(), ref)
		},
	}
}

func runDBRestore(ctx context.Context, g *globals, o *dbRestoreOptions, name, ref string) error {
	d, err := g.database(name)
	into := o.into
	if err != nil {
		// On a new machine: no config entry, but a URL to restore into.
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(into, "://") {
			return err
		}
		if d, err = urlDatabase(name, config.Secret{Value: into, Key: "--into"}, into); err != nil {
			return err
		}
		into = ""
	}
	eng, err := g.engine(ctx, d)
	if err != nil {
		return err
	}
	if strings.Contains(into, "://") {
		if e, err := config.EngineOf(into); err != nil {
			return usagef("--into: %v", err)
		} else if e != engineOf(eng) {
			return refusedError{fmt.Errorf("database %s is a %s database; --into names a %s one", d.Name, engineOf(eng), e)}
		}
	}
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true, read: true})
	if err != nil {
		return err
	}
	defer done()
	sn, info, err := findDBSnapshot(ctx, r, d.Name, ref)
	if err != nil {
		return err
	}
	start := time.Now()
	size, err := loadDump(ctx, g, r, sn, info, eng, dump.Target{Into: into, Force: o.force})
	if err != nil {
		return err
	}
	target := restoreTarget(d, into, info.Database)
	if g.json {
		return printJSON(g.stdout, map[string]any{"snapshot": sn.ID.String(), "database": d.Name, "engine": info.Engine,
			"into": target, "bytes": size, "duration_ns": time.Since(start).Nanoseconds()})
	}
	fmt.Fprintf(g.stdout, "restored database %s (%s, %s) from snapshot %s into %s in %s\n", d.Name, info.Engine, formatBytes(size),
		sn.ID.Str(), target, time.Since(start).Round(time.Millisecond))
	return nil
}

// dbSnapshot finds the snapshot ref ("latest": the latest that holds the
// database) and its record of database name.
func findDBSnapshot(ctx context.Context, r *repo.Repository, name, ref string) (*snapshot.Snapshot, *snapshot.DatabaseInfo, error) {
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
		if sn, err = findSnapshot(ctx, r, ref); err != nil {
			return nil, nil, err
		}
	}
	info := sn.Source.Database(name)
	if info == nil {
		return nil, nil, fmt.Errorf("%w: snapshot %s holds no database %s", snapshot.ErrNotFound, sn.ID.Str(), name)
	}
	return sn, info, nil
}

// loadDump streams the dump info records from snapshot sn into the engine's
// Restore, showing progress, and returns the dump's size.
func loadDump(ctx context.Context, g *globals, r *repo.Repository, sn *snapshot.Snapshot, info *snapshot.DatabaseInfo,
	eng dump.Engine, t dump.Target) (uint64, error) {
	if info.Format == postgres.FormatBaseBackup {
		return 0, refusedError{fmt.Errorf("snapshot %s holds a physical backup of %s: restore it into a data directory with --data-dir DIR and --to-time, --to-lsn, --to-name or --to-end (docs/pitr.md)", sn.ID.Str(), info.Name)}
	}
	engineName := engineOf(eng)
	if info.Engine != engineName {
		return 0, refusedError{fmt.Errorf("snapshot %s holds a %s dump of %s, which cannot be restored into a %s database", sn.ID.Str(), info.Engine, info.Name, engineName)}
	}
	n, err := restorer.FindNode(ctx, r, sn, info.Path)
	if err != nil {
		return 0, err
	}
	if n.Type != snapshot.TypeFile {
		return 0, fmt.Errorf("snapshot %s: %s is a %s, not a dump", sn.ID.Str(), info.Path, n.Type)
	}
	t.Source = &dump.Info{Engine: info.Engine, Database: info.Database, Host: info.Host, ServerVersion: info.ServerVersion,
		Tool: info.Tool, ToolVersion: info.ToolVersion, Options: info.Options, Format: info.Format, Details: info.Details}
	pr, pw := io.Pipe()
	dumped := make(chan error, 1)
	cw := &progressWriter{w: pw}
	go func() {
		err := restorer.Dump(ctx, r, n, cw, 0)
		pw.CloseWithError(err)
		dumped <- err
	}()
	stopProgress := g.startProgress(bytesProgress(cw.n.Load, n.Size))
	err = eng.Restore(ctx, pr, t)
	pr.CloseWithError(errRestoreStopped)
	derr := <-dumped
	stopProgress()
	if err != nil {
		if errors.Is(err, dump.ErrNotEmpty) {
			return 0, refusedError{err}
		}
		if derr != nil && !errors.Is(err, derr) && !errors.Is(derr, errRestoreStopped) {
			return 0, fmt.Errorf("%w (reading the snapshot: %v)", err, derr)
		}
		return 0, err
	}
	return n.Size, nil
}

// restoreTarget names the database a restore wrote into: --into's name or
// its URL's database, else the configured database (its file, or its URL's
// database), else the snapshot's. It never shows a URL, which may hold a
// password.
func restoreTarget(d *config.Database, into, recorded string) string {
	switch {
	case strings.Contains(into, "://"):
		if n := urlDatabaseName(into); n != "" {
			return n
		}
	case into != "":
		return into
	case d.Path != "":
		return d.Path
	case d.URL.Value != "":
		if n := urlDatabaseName(d.URL.Value); n != "" {
			return n
		}
	}
	return recorded
}

// urlDatabaseName is the database a postgres:// or mysql:// URL names: its
// path, or libpq's dbname parameter; for sqlite:// the file.
func urlDatabaseName(s string) string {
	if strings.HasPrefix(s, "sqlite") {
		if p, err := config.SQLitePath(s); err == nil {
			return p
		}
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	if n := strings.Trim(u.Path, "/"); n != "" {
		return n
	}
	return u.Query().Get("dbname")
}
