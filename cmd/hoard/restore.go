package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"sync/atomic"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

type restoreOptions struct {
	target       string
	includes     rawStrings
	ignoreErrors bool
}

func restoreCommand(g *globals) *cli.Command {
	o := &restoreOptions{}
	return &cli.Command{
		Name:      "restore",
		Usage:     "restore a snapshot into a directory",
		ArgsUsage: "SNAPSHOT|latest",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "target", Aliases: []string{"t"}, Destination: &o.target, Usage: "directory to restore into"},
			&cli.GenericFlag{Name: "include", Aliases: []string{"i"}, Value: &o.includes,
				Usage: "restore only paths matching a pattern (repeatable), e.g. /media/uploads or *.jpg"},
			&cli.BoolFlag{Name: "ignore-errors", Destination: &o.ignoreErrors,
				Usage: "go on past damaged files, restore all others, and list the failures at the end"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("restore takes one SNAPSHOT")
			}
			return runRestore(c.Context, g, o, c.Args().First())
		},
	}
}

func runRestore(ctx context.Context, g *globals, o *restoreOptions, ref string) error {
	if o.target == "" {
		return usagef("restore needs --target DIR")
	}
	for _, p := range o.includes.Value() {
		if !snapshot.ValidPattern(p) {
			return usagef("bad include pattern %q: %v", p, filepath.ErrBadPattern)
		}
	}
	// A shared lock: a prune (exclusive) cannot remove the packs being read.
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true, read: true})
	if err != nil {
		return err
	}
	defer done()
	sn, err := findSnapshot(ctx, r, ref)
	if err != nil {
		return err
	}
	pauseAt(g, "restore")
	if err := checkExpansion(ctx, r, sn.Tree); err != nil {
		return err
	}
	var written atomic.Uint64
	var total uint64 // unknown with --include
	if sn.Summary != nil && len(o.includes.Value()) == 0 {
		total = sn.Summary.TotalBytes
	}
	stopProgress := g.startProgress(bytesProgress(written.Load, total))
	st, err := restorer.Restore(ctx, r, sn, o.target, restorer.Options{Includes: o.includes.Value(), IgnoreErrors: o.ignoreErrors,
		Logger: g.log, Progress: &written})
	stopProgress()
	var rerr *restorer.Errors
	if errors.As(err, &rerr) {
		for _, f := range rerr.Failures {
			fmt.Fprintf(g.stderr, "not restored: %s: %v\n", f.Path, f.Err)
		}
	} else if err != nil {
		// Interrupted or failed: no summary of a restore that did not finish.
		return err
	}
	if g.json {
		if jerr := printJSON(g.stdout, map[string]any{"snapshot": sn.ID.String(), "files": st.Files, "dirs": st.Dirs,
			"symlinks": st.Symlinks, "bytes": st.Bytes, "special": st.Special, "special_not_restored": st.NotRestored, "ok": err == nil}); jerr != nil {
			return jerr
		}
	} else {
		fmt.Fprintf(g.stdout, "restored snapshot %s: %d files, %d dirs, %d symlinks, %s to %s\n", sn.ID.Str(), st.Files, st.Dirs,
			st.Symlinks, formatBytes(st.Bytes), o.target)
		if st.NotRestored > 0 {
			fmt.Fprintf(g.stdout, "%s not restored (sockets, or FIFOs and devices that could not be made: see the warnings above)\n", plural(int(st.NotRestored), "special file"))
		}
	}
	return err
}

func dumpCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:      "dump",
		Usage:     "write one file of a snapshot to standard output",
		ArgsUsage: "SNAPSHOT PATH",
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usagef("dump takes SNAPSHOT PATH")
			}
			return runDump(c.Context, g, c.Args().Get(0), c.Args().Get(1))
		},
	}
}

func runDump(ctx context.Context, g *globals, ref, p string) error {
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true, read: true})
	if err != nil {
		return err
	}
	defer done()
	sn, err := findSnapshot(ctx, r, ref)
	if err != nil {
		return err
	}
	n, err := restorer.FindNode(ctx, r, sn, path.Clean("/"+p))
	if err != nil {
		return err
	}
	if n.Type != snapshot.TypeFile {
		return usagef("%s is a %s, not a file", p, n.Type)
	}
	pauseAt(g, "dump")
	w := &progressWriter{w: g.stdout}
	defer g.startProgress(bytesProgress(w.n.Load, n.Size))()
	return restorer.Dump(ctx, r, n, w, 0)
}

// progressWriter counts what goes through it, for a progress display.
type progressWriter struct {
	w io.Writer
	n atomic.Uint64
}

func (c *progressWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(uint64(n))
	return n, err
}
