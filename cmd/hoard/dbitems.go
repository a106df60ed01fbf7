package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"

	"github.com/hoard-backup/hoard/config"
	"github.com/hoard-backup/hoard/database"
	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/archiver"
)

// runItems backs up databases and media trees into one snapshot of the
// given kind (snapshot.KindDatabase or KindRun) and returns it;
// reportItems prints it.
func runItems(ctx context.Context, g *globals, kind string, dbs []*config.Database, media []*config.Media, tags []string, host string) (*snapshot.Snapshot, error) {
	o := database.BackupOptions{Kind: kind, Media: media}
	for _, d := range dbs {
		eng, err := g.engine(ctx, d)
		if err != nil {
			return nil, err
		}
		o.Databases = append(o.Databases, database.Database{Name: d.Name, Engine: eng, ChunkProfile: d.ChunkProfile})
	}
	if host == "" && g.cfg != nil {
		host = g.cfg.Repository.Host
	}
	if host == "" {
		host, _ = os.Hostname()
	}
	o.Meta = archiver.Meta{Host: host, Tags: tags, Program: "hoard " + version}
	if u, err := user.Current(); err == nil {
		o.Meta.Username = u.Username
	}

	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true})
	if err != nil {
		return nil, err
	}
	defer done()
	o.Archiver = archiver.Options{Logger: g.log, Checkpoint: testCheckpoint(g), Bases: g.baseCache(r)}
	o.Progress = func(a *archiver.Archiver) func() { return g.startProgress(backupProgress(a)) }
	sn, err := database.Backup(ctx, r, o)
	if err != nil {
		if ctx.Err() != nil {
			// Interrupted: the dump tool was stopped, not failing.
			return nil, errors.Join(ctx.Err(), err)
		}
		var te *dump.ToolError
		if (errors.As(err, &te) || errors.Is(err, dump.ErrSource)) && !errors.Is(err, context.Canceled) {
			return nil, sourceError{fmt.Errorf("%w; no snapshot was made", err)}
		}
		return nil, err
	}
	g.trimBaseCache(o.Archiver.Bases)
	return sn, nil
}

func reportItems(g *globals, sn *snapshot.Snapshot, extra map[string]any) error {
	g.noteSnapshot(sn)
	if g.json {
		out := map[string]any{"id": sn.ID.String(), "summary": sn.Summary, "databases": sn.Source.Databases}
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
		printSummary(g, sn, len(sn.Paths) > 0)
	}
	return incompleteIf(sn)
}
