package main

import (
	"context"
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/config"
	"github.com/hoard-backup/hoard/pitr"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

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
	// Window is the span a physical backup and the archived WAL can be
	// restored to (docs/pitr.md).
	Window *pitr.Window `json:"recovery_window,omitempty"`
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
		if err := dbWindow(ctx, r, sns, &e); err != nil { // wal.go
			return err
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
		if w := e.Window; w != nil {
			fmt.Fprintf(tw, "  recoverable from %s to %s (WAL %s", w.From.Local().Format(time.DateTime), w.To.Local().Format(time.DateTime), w.Last)
			if w.Gap != "" {
				fmt.Fprintf(tw, "; segment %s is missing: recovery stops before it", w.Gap)
			}
			fmt.Fprintln(tw, ")")
		}
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
