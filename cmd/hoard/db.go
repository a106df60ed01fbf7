package main

import (
	"context"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/config"
	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/dump/mysql"
	"github.com/hoard-backup/hoard/dump/postgres"
	"github.com/hoard-backup/hoard/dump/sqlite"
	"github.com/hoard-backup/hoard/snapshot"
)

// defaultDatabase is the name of the database DATABASE_URL names.
const defaultDatabase = "default"

func dbCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "db",
		Usage: "back up, restore and list databases (PostgreSQL, MySQL/MariaDB, SQLite)",
		Subcommands: []*cli.Command{
			dbBackupCommand(g), dbRestoreCommand(g), dbListCommand(g), dbVerifyCommand(g),
		},
	}
}

type dbBackupOptions struct {
	tags     cli.StringSlice
	host     string
	physical bool
}

func dbBackupCommand(g *globals) *cli.Command {
	o := &dbBackupOptions{}
	return &cli.Command{
		Name:  "backup",
		Usage: "dump databases into one snapshot; no snapshot unless every dump succeeds",
		ArgsUsage: "[NAME|URL]...   (names from the config file; none: every database in it, " +
			"or DATABASE_URL when the file names none)",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "tag", Destination: &o.tags, Usage: "add a tag (repeatable)"},
			&cli.StringFlag{Name: "host", Destination: &o.host, Usage: "record this host name instead of the machine's"},
			&cli.BoolFlag{Name: "physical", Destination: &o.physical,
				Usage: "a physical base backup of the whole PostgreSQL cluster (pg_basebackup), for point-in-time recovery (docs/pitr.md)"},
		},
		Action: func(c *cli.Context) error { return runDBBackup(c.Context, g, o, c.Args().Slice()) },
	}
}

func runDBBackup(ctx context.Context, g *globals, o *dbBackupOptions, args []string) error {
	var dbs []*config.Database
	switch {
	case len(args) > 0:
		for _, a := range args {
			d, err := g.database(a)
			if err != nil {
				return err
			}
			dbs = append(dbs, d)
		}
	case g.cfg != nil && len(g.cfg.Databases) > 0:
		for _, n := range g.cfg.DatabaseNames() {
			dbs = append(dbs, g.cfg.Databases[n])
		}
	case os.Getenv("DATABASE_URL") != "":
		d, err := g.database(defaultDatabase)
		if err != nil {
			return err
		}
		dbs = append(dbs, d)
	default:
		return usagef("no database: give a NAME from the config file or a URL, or set DATABASE_URL")
	}
	if o.physical {
		for i, d := range dbs {
			cp := *d
			cp.Physical = true
			dbs[i] = &cp
		}
	}
	sn, err := runItems(ctx, g, snapshot.KindDatabase, dbs, nil, o.tags.Value(), o.host)
	if err != nil {
		return err
	}
	return reportItems(g, sn, nil)
}

// database finds a database by name in the config file, "default" for
// DATABASE_URL, or makes one from a URL.
func (g *globals) database(arg string) (*config.Database, error) {
	if g.cfg != nil {
		if d := g.cfg.Databases[arg]; d != nil {
			return d, nil
		}
	}
	if arg == defaultDatabase && os.Getenv("DATABASE_URL") != "" {
		return urlDatabase(defaultDatabase, config.Secret{Env: "DATABASE_URL", Key: "DATABASE_URL"}, os.Getenv("DATABASE_URL"))
	}
	if strings.Contains(arg, "://") {
		return urlDatabase(nameFromURL(arg), config.Secret{Value: arg, Key: "URL"}, arg)
	}
	if g.cfg == nil {
		return nil, usagef("no database %q: there is no config file (give --config, HOARD_CONFIG or ./%s), and it is not a URL", arg, config.DefaultFile)
	}
	return nil, usagef("no database %q in %s (it has: %s)", arg, g.cfg.File, strings.Join(g.cfg.DatabaseNames(), ", "))
}

// urlDatabase describes a database given by a URL on the command line or
// in DATABASE_URL.
func urlDatabase(name string, src config.Secret, u string) (*config.Database, error) {
	eng, err := config.EngineOf(u)
	if err != nil {
		return nil, usagef("%s: %v", src.Key, err)
	}
	d := &config.Database{Name: name, Engine: eng, URL: src}
	if eng == config.SQLite {
		p, err := config.SQLitePath(u)
		if err != nil {
			return nil, usagef("%s: %v", src.Key, err)
		}
		d.URL, d.Path = config.Secret{}, p
	}
	return d, nil
}

// nameFromURL names a database given by URL: its database name, or its
// file's name without the extension.
func nameFromURL(s string) string {
	name := ""
	if u, err := url.Parse(s); err == nil {
		name = path.Base(u.Path)
		if strings.HasPrefix(u.Scheme, "sqlite") {
			name = strings.TrimSuffix(name, path.Ext(name))
		}
	}
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r == ' ' {
			return '_'
		}
		return r
	}, name)
	name = strings.TrimLeft(name, ".-")
	if name == "" {
		return "db"
	}
	return name
}

// engine builds the dump engine of d, reading its secrets.
func (g *globals) engine(ctx context.Context, d *config.Database) (dump.Engine, error) {
	u, err := d.URL.Get(ctx)
	if err != nil {
		return nil, err
	}
	pw, err := d.Password.Get(ctx)
	if err != nil {
		return nil, err
	}
	engine, p := d.Engine, d.Path
	if engine == "" {
		if engine, err = config.EngineOf(u); err != nil {
			return nil, usagef("database %s: %v", d.Name, err)
		}
	}
	if engine == config.SQLite && p == "" {
		if p, err = config.SQLitePath(u); err != nil {
			return nil, usagef("database %s: %v", d.Name, err)
		}
	}
	var e dump.Engine
	switch engine {
	case config.Postgres:
		var pg *postgres.Postgres
		pg, err = postgres.New(postgres.Config{URL: u, Password: pw, DumpCommand: d.DumpCommand, DumpArgs: d.DumpArgs,
			RestoreCommand: d.RestoreCommand, RestoreArgs: d.RestoreArgs, ClientCommand: d.ClientCommand, Stderr: g.stderr})
		e = pg
		if err == nil && d.Physical {
			e = pg.BaseBackup(d.BaseBackupCommand, time.Now)
		}
	case config.MySQL, config.SQLite:
		if d.Physical {
			return nil, usagef("database %s: physical backups are for PostgreSQL", d.Name)
		}
	}
	switch engine {
	case config.Postgres:
	case config.MySQL:
		e, err = mysql.New(mysql.Config{URL: u, Password: pw, DumpCommand: d.DumpCommand, DumpArgs: d.DumpArgs,
			ClientCommand: d.ClientCommand, RestoreArgs: d.RestoreArgs, Stderr: g.stderr})
	case config.SQLite:
		e, err = sqlite.New(sqlite.Config{Path: p, Command: d.DumpCommand, TempDir: d.TempDir, Stderr: g.stderr})
	default:
		return nil, usagef("database %s: unknown engine %q", d.Name, engine)
	}
	if err != nil {
		return nil, usagef("database %s: %v", d.Name, err)
	}
	return e, nil
}
