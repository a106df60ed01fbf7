package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/config"
	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/dump/mysql"
	"github.com/hoard-backup/hoard/dump/postgres"
	"github.com/hoard-backup/hoard/dump/sqlite"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/archiver"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

// refusedError marks a restore that was refused: the target holds data
// and --force was not given, or the snapshot holds another engine's dump.
type refusedError struct{ err error }

func (e refusedError) Error() string { return e.err.Error() }
func (e refusedError) Unwrap() error { return e.err }

// errRestoreStopped tells the snapshot reader that the restore ended.
var errRestoreStopped = errors.New("restore stopped")

// defaultDatabase is the name of the database DATABASE_URL names.
const defaultDatabase = "default"

func dbCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "db",
		Usage: "back up, restore and list databases (PostgreSQL, MySQL/MariaDB, SQLite)",
		Subcommands: []*cli.Command{
			dbBackupCommand(g), dbRestoreCommand(g), dbListCommand(g),
		},
	}
}

type dbBackupOptions struct {
	tags cli.StringSlice
	host string
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
	sn, err := runItems(ctx, g, "database", dbs, nil, o.tags.Value(), o.host)
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
		e, err = postgres.New(postgres.Config{URL: u, Password: pw, DumpCommand: d.DumpCommand, DumpArgs: d.DumpArgs,
			RestoreCommand: d.RestoreCommand, RestoreArgs: d.RestoreArgs, ClientCommand: d.ClientCommand, Stderr: g.stderr})
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

// engineOf names an engine as snapshots record it.
func engineOf(e dump.Engine) string {
	switch e.(type) {
	case *postgres.Postgres:
		return dump.Postgres
	case *mysql.MySQL:
		return dump.MySQL
	case *sqlite.SQLite:
		return dump.SQLite
	}
	return ""
}

// dumpFileName is a database's file in the snapshot, by its dump format.
func dumpFileName(name, format string) string {
	ext := map[string]string{"custom": ".pgdump", "tar": ".tar", "sql": ".sql", "sqlite": ".sqlite"}[format]
	return "db/" + name + ext
}

// runItems backs up databases and media trees into one snapshot of the
// given kind ("database" or "run") and returns it; reportItems prints it.
func runItems(ctx context.Context, g *globals, kind string, dbs []*config.Database, media []*config.Media, tags []string, host string) (*snapshot.Snapshot, error) {
	var items []archiver.Item
	infos := make([]*snapshot.DatabaseInfo, len(dbs))
	for i, d := range dbs {
		eng, err := g.engine(ctx, d)
		if err != nil {
			return nil, err
		}
		file := dumpFileName(d.Name, eng.Format())
		items = append(items, archiver.Item{Name: file, Open: func(ctx context.Context) (io.ReadCloser, error) {
			rc, info, err := eng.Backup(ctx)
			if err != nil {
				return nil, err
			}
			infos[i] = &snapshot.DatabaseInfo{Name: d.Name, Engine: info.Engine, Path: "/" + file, Format: info.Format,
				Database: info.Database, Host: info.Host, ServerVersion: info.ServerVersion, Tool: info.Tool,
				ToolVersion: info.ToolVersion, Options: info.Options, Details: info.Details}
			return rc, nil
		}})
	}
	var paths []string
	for _, m := range media {
		for _, p := range m.Paths {
			items = append(items, archiver.Item{Name: "media/" + m.Name + "/" + rootNameOf(p), Path: p, Excludes: m.Excludes})
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	if host == "" && g.cfg != nil {
		host = g.cfg.Repository.Host
	}
	if host == "" {
		host, _ = os.Hostname()
	}
	meta := archiver.Meta{Host: host, Tags: tags, Paths: paths, Program: "hoard " + version, Source: snapshot.Source{Kind: kind}}
	if u, err := user.Current(); err == nil {
		meta.Username = u.Username
	}
	meta.Commit = func(sn *snapshot.Snapshot) error {
		for _, in := range infos {
			if in == nil {
				return errors.New("db: a database was not dumped")
			}
			sn.Source.Databases = append(sn.Source.Databases, *in)
		}
		return nil
	}

	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true})
	if err != nil {
		return nil, err
	}
	defer done()
	ao := archiver.Options{Logger: g.log, Checkpoint: stallAt(g, os.Getenv("HOARD_TEST_STALL_AT"))}
	sns, _, err := snapshot.List(ctx, r)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(dbs))
	for i, d := range dbs {
		names[i] = d.Name
	}
	ao.Parent = dbParent(sns, host, paths, names)
	sn, err := archiver.New(r, ao).Backup(ctx, items, meta)
	if err != nil {
		if ctx.Err() != nil {
			// Interrupted: the dump tool was stopped, not failing.
			return nil, errors.Join(ctx.Err(), err)
		}
		var te *dump.ToolError
		if errors.As(err, &te) && !errors.Is(err, context.Canceled) {
			return nil, sourceError{fmt.Errorf("%w; no snapshot was made", err)}
		}
		return nil, err
	}
	return sn, nil
}

// rootNameOf is the name a path gets in the snapshot.
func rootNameOf(p string) string {
	if p == "/" {
		return "root"
	}
	return filepath.Base(p)
}

func reportItems(g *globals, sn *snapshot.Snapshot, extra map[string]any) error {
	s := sn.Summary
	if g.json {
		out := map[string]any{"id": sn.ID.String(), "summary": s, "databases": sn.Source.Databases}
		for k, v := range extra {
			out[k] = v
		}
		if err := printJSON(g.stdout, out); err != nil {
			return err
		}
	} else {
		for _, d := range sn.Source.Databases {
			fmt.Fprintf(g.stdout, "database %s: %s %s, %s (%s)\n", d.Name, d.Engine, d.ServerVersion, strings.TrimPrefix(d.Path, "/"), d.ToolVersion)
		}
		if len(sn.Paths) > 0 {
			fmt.Fprintf(g.stdout, "files: %d new, %d changed, %d unmodified; dirs: %d\n", s.FilesNew, s.FilesChanged, s.FilesUnmodified, s.Dirs)
		}
		fmt.Fprintf(g.stdout, "added %s (%s stored) of %s in %s\n", formatBytes(s.BytesAdded), formatBytes(s.BytesStored),
			formatBytes(s.TotalBytes), time.Duration(s.DurationNs).Round(time.Millisecond))
		fmt.Fprintf(g.stdout, "snapshot %s saved\n", sn.ID.Str())
	}
	if s.Errors > 0 {
		return incompleteError{fmt.Sprintf("snapshot %s saved, but %d files could not be read (see the warnings above)", sn.ID.Str(), s.Errors)}
	}
	return nil
}

type dbRestoreOptions struct {
	into  string
	force bool
}

func dbRestoreCommand(g *globals) *cli.Command {
	o := &dbRestoreOptions{}
	return &cli.Command{
		Name:      "restore",
		Usage:     "restore a database from a snapshot (default: the latest that holds it)",
		ArgsUsage: "NAME [SNAPSHOT|latest]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "into", Destination: &o.into,
				Usage: "restore into this database (a name on the same server, or a URL) or SQLite file instead of NAME's own"},
			&cli.BoolFlag{Name: "force", Destination: &o.force, Usage: "replace the target even if it holds data"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usagef("db restore takes NAME [SNAPSHOT|latest]")
			}
			ref := "latest"
			if c.NArg() == 2 {
				ref = c.Args().Get(1)
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
	ctx, r, done, err := g.openRepo(ctx, openOptions{index: true, read: true})
	if err != nil {
		return err
	}
	defer done()
	var sn *snapshot.Snapshot
	if ref == "latest" {
		sns, _, err := snapshot.List(ctx, r)
		if err != nil {
			return err
		}
		for i := len(sns) - 1; i >= 0 && sn == nil; i-- {
			if sns[i].Source.Database(d.Name) != nil {
				sn = sns[i]
			}
		}
		if sn == nil {
			return fmt.Errorf("%w: no snapshot holds database %s", snapshot.ErrNotFound, d.Name)
		}
	} else if sn, err = findSnapshot(ctx, r, ref); err != nil {
		return err
	}
	info := sn.Source.Database(d.Name)
	if info == nil {
		return fmt.Errorf("%w: snapshot %s holds no database %s", snapshot.ErrNotFound, sn.ID.Str(), d.Name)
	}
	engineName := engineOf(eng)
	if info.Engine != engineName {
		return refusedError{fmt.Errorf("snapshot %s holds a %s dump of %s, which cannot be restored into a %s database", sn.ID.Str(), info.Engine, d.Name, engineName)}
	}
	n, err := restorer.FindNode(ctx, r, sn, info.Path)
	if err != nil {
		return err
	}
	if n.Type != snapshot.TypeFile {
		return fmt.Errorf("snapshot %s: %s is a %s, not a dump", sn.ID.Str(), info.Path, n.Type)
	}
	src := &dump.Info{Engine: info.Engine, Database: info.Database, Host: info.Host, ServerVersion: info.ServerVersion,
		Tool: info.Tool, ToolVersion: info.ToolVersion, Options: info.Options, Format: info.Format, Details: info.Details}
	pr, pw := io.Pipe()
	dumped := make(chan error, 1)
	go func() {
		err := restorer.Dump(ctx, r, n, pw, 0)
		pw.CloseWithError(err)
		dumped <- err
	}()
	start := time.Now()
	err = eng.Restore(ctx, pr, dump.Target{Into: into, Force: o.force, Source: src})
	pr.CloseWithError(errRestoreStopped)
	derr := <-dumped
	if err != nil {
		if errors.Is(err, dump.ErrNotEmpty) {
			return refusedError{err}
		}
		if derr != nil && !errors.Is(err, derr) && !errors.Is(derr, errRestoreStopped) {
			return fmt.Errorf("%w (reading the snapshot: %v)", err, derr)
		}
		return err
	}
	target := into
	if target == "" {
		target = info.Database
		if d.Path != "" {
			target = d.Path
		}
	}
	if g.json {
		return printJSON(g.stdout, map[string]any{"snapshot": sn.ID.String(), "database": d.Name, "engine": info.Engine,
			"into": target, "bytes": n.Size, "duration_ns": time.Since(start).Nanoseconds()})
	}
	fmt.Fprintf(g.stdout, "restored database %s (%s, %s) from snapshot %s into %s in %s\n", d.Name, info.Engine, formatBytes(n.Size),
		sn.ID.Str(), target, time.Since(start).Round(time.Millisecond))
	return nil
}

func dbListCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:   "list",
		Usage:  "list the config file's databases and their latest snapshots",
		Action: func(c *cli.Context) error { return runDBList(c.Context, g) },
	}
}

type dbListEntry struct {
	Name   string `json:"name"`
	Engine string `json:"engine"`
	Source string `json:"source"`
	Latest *struct {
		ID   string    `json:"id"`
		Time time.Time `json:"time"`
		Size uint64    `json:"size"`
	} `json:"latest"`
}

func runDBList(ctx context.Context, g *globals) error {
	cfg, err := g.needConfig()
	if err != nil {
		return err
	}
	ctx, r, done, err := g.openRepo(ctx, openOptions{index: true})
	if err != nil {
		return err
	}
	defer done()
	sns, _, err := snapshot.List(ctx, r)
	if err != nil {
		return err
	}
	var out []dbListEntry
	for _, name := range cfg.DatabaseNames() {
		d := cfg.Databases[name]
		e := dbListEntry{Name: name, Engine: d.Engine, Source: describeSource(d)}
		for i := len(sns) - 1; i >= 0; i-- {
			info := sns[i].Source.Database(name)
			if info == nil {
				continue
			}
			e.Latest = &struct {
				ID   string    `json:"id"`
				Time time.Time `json:"time"`
				Size uint64    `json:"size"`
			}{ID: sns[i].ID.String(), Time: sns[i].Time}
			if e.Engine == "" {
				e.Engine = info.Engine
			}
			if n, err := restorer.FindNode(ctx, r, sns[i], info.Path); err == nil {
				e.Latest.Size = n.Size
			}
			break
		}
		out = append(out, e)
	}
	if g.json {
		if out == nil {
			out = []dbListEntry{}
		}
		return printJSON(g.stdout, out)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Name\tEngine\tSource\tLatest\tTime\tSize")
	for _, e := range out {
		if e.Latest == nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\n", e.Name, e.Engine, e.Source)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Engine, e.Source, e.Latest.ID[:8],
			e.Latest.Time.Local().Format(time.DateTime), formatBytes(e.Latest.Size))
	}
	fmt.Fprintf(tw, "%d databases\n", len(out))
	return tw.Flush()
}

// describeSource says where a database is, without secrets.
func describeSource(d *config.Database) string {
	switch {
	case d.Path != "":
		return d.Path
	case d.URL.Value != "":
		if u, err := url.Parse(d.URL.Value); err == nil {
			return u.Redacted()
		}
		return "(url)"
	case d.URL.Env != "":
		return "$" + d.URL.Env
	case d.URL.File != "":
		return "url_file " + d.URL.File
	case d.URL.Command != "":
		return "url_command"
	}
	return ""
}
