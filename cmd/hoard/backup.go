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
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/chunk"
	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/archiver"
)

type backupOptions struct {
	tags          cli.StringSlice
	host          string
	excludes      rawStrings
	excludeFiles  cli.StringSlice
	excludeCaches bool
	ifPresent     cli.StringSlice
	stdin         bool
	stdinFilename string
	fromCommand   bool
	force         bool
	parent        string
	chunkProfile  string
}

func backupCommand(g *globals) *cli.Command {
	o := &backupOptions{}
	return &cli.Command{
		Name:      "backup",
		Usage:     "back up paths, standard input, or the output of a command",
		ArgsUsage: "PATH... | --stdin | --stdin-from-command -- CMD ARGS...",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "tag", Destination: &o.tags, Usage: "add a tag (repeatable)"},
			&cli.StringFlag{Name: "host", Destination: &o.host, Usage: "record this host name instead of the machine's"},
			&cli.GenericFlag{Name: "exclude", Aliases: []string{"e"}, Value: &o.excludes,
				Usage: "exclude paths matching a pattern (repeatable); without a slash it matches any name; ** matches any number of directories"},
			&cli.StringSliceFlag{Name: "exclude-file", Destination: &o.excludeFiles,
				Usage: "read exclude patterns from a file, one per line; blank lines and lines starting with # are ignored (repeatable)"},
			&cli.BoolFlag{Name: "exclude-caches", Destination: &o.excludeCaches,
				Usage: "back up only the CACHEDIR.TAG of directories that hold a valid one"},
			&cli.StringSliceFlag{Name: "exclude-if-present", Destination: &o.ifPresent,
				Usage: "back up only `FILE[:HEADER]` of directories that hold FILE (beginning with HEADER) (repeatable)"},
			&cli.BoolFlag{Name: "stdin", Destination: &o.stdin, Usage: "back up standard input"},
			&cli.StringFlag{Name: "stdin-filename", Value: "stdin", Destination: &o.stdinFilename,
				Usage: "file name for --stdin and --stdin-from-command"},
			&cli.BoolFlag{Name: "stdin-from-command", Destination: &o.fromCommand,
				Usage: "run the command after -- and back up its output; no snapshot unless it exits 0"},
			&cli.BoolFlag{Name: "force", Destination: &o.force, Usage: "read every file and search every chunk, ignoring the parent snapshot"},
			&cli.StringFlag{Name: "parent", Destination: &o.parent, Usage: "use this snapshot as parent instead of the latest"},
			&cli.StringFlag{Name: "chunk-profile", Destination: &o.chunkProfile,
				Usage: "chunk sizes: dump (~128 KiB) or large (~1 MiB); default: what the parent snapshot used, else the repository's"},
		},
		Action: func(c *cli.Context) error { return runBackup(c.Context, g, o, c.Args().Slice()) },
	}
}

func runBackup(ctx context.Context, g *globals, o *backupOptions, args []string) error {
	switch {
	case o.stdin && o.fromCommand:
		return usagef("--stdin and --stdin-from-command exclude each other")
	case o.stdin && len(args) > 0:
		return usagef("--stdin takes no paths")
	case o.fromCommand && len(args) == 0:
		return usagef("--stdin-from-command needs a command after --")
	case !o.stdin && !o.fromCommand && len(args) == 0:
		return usagef("nothing to back up: give paths, --stdin or --stdin-from-command")
	}
	excludes := o.excludes.Value()
	for _, f := range o.excludeFiles.Value() {
		pats, err := readPatternFile(f)
		if err != nil {
			return err
		}
		excludes = append(excludes, pats...)
	}
	if err := archiver.ValidatePatterns(excludes); err != nil {
		return usageError{err.Error()}
	}
	if o.chunkProfile != "" {
		if _, err := chunk.Profile(o.chunkProfile); err != nil {
			return usageError{err.Error()}
		}
	}
	ifPresent := o.ifPresent.Value()
	if o.excludeCaches {
		ifPresent = append(ifPresent, archiver.CacheDirTag)
	}
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true})
	if err != nil {
		return err
	}
	defer done()
	meta := archiver.Meta{Host: o.host, Tags: o.tags.Value(), Program: "hoard " + version}
	if meta.Host == "" {
		meta.Host, _ = os.Hostname()
	}
	if u, err := user.Current(); err == nil {
		meta.Username = u.Username
	}
	ao := archiver.Options{Excludes: excludes, ExcludeIfPresent: ifPresent, Logger: g.log, Checkpoint: testCheckpoint(g),
		ChunkProfile: o.chunkProfile}
	var sn *snapshot.Snapshot
	var abs []string
	if !o.stdin && !o.fromCommand {
		abs = make([]string, len(args))
		for i, a := range args {
			if abs[i], err = filepath.Abs(a); err != nil {
				return err
			}
		}
		sort.Strings(abs)
	}
	// The parent: of paths, the newest snapshot of the same paths; of a
	// stream, the newest of the same file name (parent.go).
	if !o.force {
		if o.parent != "" {
			ao.Parent, err = findSnapshot(ctx, r, o.parent)
		} else {
			var sns []*snapshot.Snapshot
			sns, _, err = snapshot.List(ctx, r)
			if abs != nil {
				ao.Parent = fileParent(r, sns, snapshot.Filter{Host: meta.Host, Paths: abs}, g.log)
			} else {
				ao.Parent = streamParent(sns, meta.Host, o.stdinFilename)
			}
		}
		if err != nil {
			return err
		}
	}
	ao.Bases = g.baseCache(r)
	a := archiver.New(r, ao)
	stopProgress := g.startProgress(backupProgress(a))
	defer stopProgress()
	switch {
	case o.stdin:
		meta.Source = snapshot.Source{Kind: snapshot.KindStdin, Filename: o.stdinFilename}
		sn, err = a.BackupReader(ctx, g.stdin, o.stdinFilename, meta, nil)
	case o.fromCommand:
		// Snapshots are readable by write-only keys: no passwords in them.
		meta.Source = snapshot.Source{Kind: snapshot.KindCommand, Filename: o.stdinFilename, Command: dump.Redacted(args)}
		sn, err = backupCommandOutput(ctx, g, a, args, o.stdinFilename, meta)
	default:
		meta.Source = snapshot.Source{Kind: snapshot.KindFiles}
		sn, err = a.BackupPaths(ctx, abs, meta)
	}
	stopProgress()
	if err != nil {
		return err
	}
	g.trimBaseCache(ao.Bases)
	return reportBackup(g, sn)
}

// backupCommandOutput runs argv and backs up its standard output, through
// the same runner as the database dumps (dump.Command): its standard error
// goes to ours as it runs, and a command that fails or is killed leaves no
// snapshot and an error carrying the end of its standard error.
func backupCommandOutput(ctx context.Context, g *globals, a *archiver.Archiver, argv []string, name string, meta archiver.Meta) (*snapshot.Snapshot, error) {
	c := dump.Command{Path: argv[0], Args: argv[1:], Stderr: g.stderr}
	sn, err := a.Backup(ctx, []archiver.Item{{Name: name, Open: func(ctx context.Context) (io.ReadCloser, error) {
		return c.Start(ctx)
	}}}, meta)
	var te *dump.ToolError
	if errors.As(err, &te) {
		return nil, sourceError{fmt.Errorf("command %q: %w; no snapshot was made", strings.Join(dump.Redacted(argv), " "), te)}
	}
	return sn, err
}

func reportBackup(g *globals, sn *snapshot.Snapshot) error {
	g.noteSnapshot(sn)
	if g.json {
		if err := printJSON(g.stdout, map[string]any{"id": sn.ID.String(), "summary": sn.Summary}); err != nil {
			return err
		}
	} else {
		printSummary(g, sn, true)
	}
	return incompleteIf(sn)
}

// printSummary prints what a backup did: files (unless files is false, for
// a snapshot of streams only), bytes, and the snapshot's ID.
func printSummary(g *globals, sn *snapshot.Snapshot, files bool) {
	s := sn.Summary
	if files {
		fmt.Fprintf(g.stdout, "files: %d new, %d changed, %d unmodified; dirs: %d\n", s.FilesNew, s.FilesChanged, s.FilesUnmodified, s.Dirs)
	}
	fmt.Fprintf(g.stdout, "added %s (%s stored) of %s in %s\n", formatBytes(s.BytesAdded), formatBytes(s.BytesStored),
		formatBytes(s.TotalBytes), time.Duration(s.DurationNs).Round(time.Millisecond))
	fmt.Fprintf(g.stdout, "snapshot %s saved\n", sn.ID.Str())
}

// incompleteIf is the error of a snapshot saved without some files.
func incompleteIf(sn *snapshot.Snapshot) error {
	if n := sn.Summary.Errors; n > 0 {
		return incompleteError{fmt.Sprintf("snapshot %s saved, but %d files could not be read or changed while being read (see the warnings above)", sn.ID.Str(), n)}
	}
	return nil
}

// readPatternFile reads --exclude-file: one pattern a line; blank lines
// and lines starting with # are skipped, surrounding spaces trimmed (as
// restic's).
func readPatternFile(name string) ([]string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, usagef("--exclude-file: %v", err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}
