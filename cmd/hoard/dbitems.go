package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hoard-backup/hoard/config"
	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/archiver"
)

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
		items = append(items, archiver.Item{Name: file, ChunkProfile: d.ChunkProfile, Open: func(ctx context.Context) (io.ReadCloser, error) {
			rc, info, err := eng.Backup(ctx)
			if err != nil {
				return nil, err
			}
			infos[i] = &snapshot.DatabaseInfo{Name: d.Name, Engine: info.Engine, Path: "/" + file, Format: info.Format,
				Database: info.Database, Host: info.Host, ServerVersion: info.ServerVersion, Tool: info.Tool,
				ToolVersion: info.ToolVersion, Options: info.Options, Details: info.Details}
			rc, infos[i].Fingerprint = dump.Fingerprinted(rc, info)
			return rc, nil
		}})
	}
	var paths []string
	for _, m := range media {
		for _, p := range m.Paths {
			items = append(items, archiver.Item{Name: "media/" + m.Name + "/" + rootNameOf(p), Path: p, Excludes: m.Excludes,
				ChunkProfile: m.ChunkProfile, DefaultChunkProfile: "large"})
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
	ao := archiver.Options{Logger: g.log, Checkpoint: testCheckpoint(g)}
	sns, _, err := snapshot.List(ctx, r)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(dbs))
	for i, d := range dbs {
		names[i] = d.Name
	}
	if len(paths) > 0 {
		sns = ownFirst(r, sns)
	}
	ao.Parent = dbParent(sns, host, paths, names)
	ao.Bases = g.baseCache(r)
	a := archiver.New(r, ao)
	stopProgress := g.startProgress(backupProgress(a))
	sn, err := a.Backup(ctx, items, meta)
	stopProgress()
	if err == nil {
		g.trimBaseCache(ao.Bases)
	}
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
