package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

func lsCommand(g *globals) *cli.Command {
	var long bool
	return &cli.Command{
		Name:      "ls",
		Usage:     "list the files of a snapshot",
		ArgsUsage: "SNAPSHOT [PATH]",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "long", Aliases: []string{"l"}, Destination: &long, Usage: "show mode, size and time"}},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usagef("ls takes SNAPSHOT [PATH]")
			}
			return runLs(c.Context, g, c.Args().Get(0), c.Args().Get(1), long)
		},
	}
}

type lsEntry struct {
	Path  string    `json:"path"`
	Type  string    `json:"type"`
	Mode  string    `json:"mode"`
	Size  uint64    `json:"size"`
	MTime time.Time `json:"mtime"`
}

func runLs(ctx context.Context, g *globals, ref, p string, long bool) error {
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true})
	if err != nil {
		return err
	}
	defer done()
	sn, err := findSnapshot(ctx, r, ref)
	if err != nil {
		return err
	}
	if p == "" {
		p = "/"
	}
	p = path.Clean("/" + p)
	n, err := restorer.FindNode(ctx, r, sn, p)
	if err != nil {
		return err
	}
	var out []lsEntry
	emit := func(p string, n *snapshot.Node) {
		e := lsEntry{Path: p, Type: n.Type, Mode: n.Mode.String(), Size: n.Size, MTime: n.ModTime}
		if g.json {
			out = append(out, e)
		} else if long {
			fmt.Fprintf(g.stdout, "%s %10d %s %s\n", lsMode(n), e.Size, e.MTime.Local().Format(time.DateTime), quotePath(e.Path))
		} else {
			fmt.Fprintln(g.stdout, quotePath(e.Path))
		}
	}
	if n.Type != snapshot.TypeDir {
		emit(p, n)
	} else {
		if err := checkExpansion(ctx, r, *n.Subtree); err != nil {
			return err
		}
		if err := walkTree(ctx, r, *n.Subtree, p, emit); err != nil {
			return err
		}
	}
	if g.json {
		return printJSON(g.stdout, out)
	}
	return nil
}

func walkTree(ctx context.Context, r *repo.Repository, tid id.ID, dir string, fn func(string, *snapshot.Node)) error {
	t, err := snapshot.LoadTree(ctx, r, tid)
	if err != nil {
		return err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := path.Join(dir, n.Name)
		fn(p, n)
		if n.Type == snapshot.TypeDir {
			if err := walkTree(ctx, r, *n.Subtree, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkExpansion refuses, before a walk that visits every path, a tree
// that expands beyond snapshot.MaxEntries entries (the same subtree named
// again and again): such a walk would not end. Other errors (a damaged
// tree) are left to the walk, which reports them where they are.
func checkExpansion(ctx context.Context, r *repo.Repository, tid id.ID) error {
	_, err := snapshot.CheckExpansion(ctx, r, tid, 0)
	if errors.Is(err, snapshot.ErrTooLarge) || ctx.Err() != nil {
		return err
	}
	return nil
}

// lsMode is a node's type and permissions as GNU ls -l prints them
// (drwxr-xr-x, lrwxrwxrwx, -rwsr-x---), not Go's FileMode.String.
func lsMode(n *snapshot.Node) string {
	b := []byte("----------")
	switch n.Type {
	case snapshot.TypeDir:
		b[0] = 'd'
	case snapshot.TypeSymlink:
		b[0] = 'l'
	case snapshot.TypeFifo:
		b[0] = 'p'
	case snapshot.TypeSocket:
		b[0] = 's'
	case snapshot.TypeCharDev:
		b[0] = 'c'
	case snapshot.TypeDev:
		b[0] = 'b'
	}
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if n.Mode&(1<<uint(8-i)) != 0 {
			b[1+i] = rwx[i]
		}
	}
	special := func(pos int, set bool, on, off byte) {
		if !set {
			return
		}
		if b[pos] == 'x' {
			b[pos] = on
		} else {
			b[pos] = off
		}
	}
	special(3, n.Mode&fs.ModeSetuid != 0, 's', 'S')
	special(6, n.Mode&fs.ModeSetgid != 0, 's', 'S')
	special(9, n.Mode&fs.ModeSticky != 0, 't', 'T')
	return string(b)
}
