package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/config"
	"github.com/hoard-backup/hoard/database"
)

// refusedError marks a restore that was refused: the target holds data
// and --force was not given, or the snapshot holds another engine's dump.
type refusedError = database.RefusedError

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
		if _, err := config.EngineOf(into); err != nil {
			return usagef("--into: %v", err)
		}
		if err := database.CheckInto(eng, d.Name, into); err != nil {
			return err
		}
	}
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true, read: true})
	if err != nil {
		return err
	}
	defer done()
	res, err := database.Restore(ctx, r, eng, d.Name, ref, database.RestoreOptions{Into: into, Force: o.force, Progress: g.restoreProgress})
	if err != nil {
		return err
	}
	target := restoreTarget(d, into, res.Info.Database)
	if g.json {
		return printJSON(g.stdout, map[string]any{"snapshot": res.Snapshot.ID.String(), "database": d.Name, "engine": res.Info.Engine,
			"into": target, "bytes": res.Bytes, "duration_ns": res.Duration.Nanoseconds()})
	}
	fmt.Fprintf(g.stdout, "restored database %s (%s, %s) from snapshot %s into %s in %s\n", d.Name, res.Info.Engine, formatBytes(res.Bytes),
		res.Snapshot.ID.Str(), target, res.Duration.Round(time.Millisecond))
	return nil
}

// restoreProgress shows a dump's restore.
func (g *globals) restoreProgress(done func() uint64, total uint64) func() {
	return g.startProgress(bytesProgress(done, total))
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
