package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/archiver"
)

type backupOptions struct {
	tags          cli.StringSlice
	host          string
	excludes      cli.StringSlice
	stdin         bool
	stdinFilename string
	fromCommand   bool
	force         bool
	parent        string
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
			&cli.StringSliceFlag{Name: "exclude", Aliases: []string{"e"}, Destination: &o.excludes,
				Usage: "exclude paths matching a pattern (repeatable); without a slash it matches any name"},
			&cli.BoolFlag{Name: "stdin", Destination: &o.stdin, Usage: "back up standard input"},
			&cli.StringFlag{Name: "stdin-filename", Value: "stdin", Destination: &o.stdinFilename,
				Usage: "file name for --stdin and --stdin-from-command"},
			&cli.BoolFlag{Name: "stdin-from-command", Destination: &o.fromCommand,
				Usage: "run the command after -- and back up its output; no snapshot unless it exits 0"},
			&cli.BoolFlag{Name: "force", Destination: &o.force, Usage: "read every file, ignoring the parent snapshot"},
			&cli.StringFlag{Name: "parent", Destination: &o.parent, Usage: "use this snapshot as parent instead of the latest"},
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
	if err := archiver.ValidatePatterns(o.excludes.Value()); err != nil {
		return usageError{err.Error()}
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
	ao := archiver.Options{Excludes: o.excludes.Value(), Logger: g.log, Checkpoint: stallAt(g, os.Getenv("HOARD_TEST_STALL_AT"))}
	var sn *snapshot.Snapshot
	switch {
	case o.stdin:
		meta.Source = snapshot.Source{Kind: "stdin", Filename: o.stdinFilename}
		sn, err = archiver.New(r, ao).BackupReader(ctx, g.stdin, o.stdinFilename, meta, nil)
	case o.fromCommand:
		meta.Source = snapshot.Source{Kind: "command", Filename: o.stdinFilename, Command: args}
		sn, err = backupCommandOutput(ctx, g, archiver.New(r, ao), args, o.stdinFilename, meta)
	default:
		abs := make([]string, len(args))
		for i, a := range args {
			if abs[i], err = filepath.Abs(a); err != nil {
				return err
			}
		}
		sort.Strings(abs)
		if !o.force {
			if o.parent != "" {
				ao.Parent, err = findSnapshot(ctx, r, o.parent)
			} else {
				var sns []*snapshot.Snapshot
				sns, _, err = snapshot.List(ctx, r)
				ao.Parent = snapshot.Latest(sns, snapshot.Filter{Host: meta.Host, Paths: abs})
			}
			if err != nil {
				return err
			}
		}
		meta.Source = snapshot.Source{Kind: "files"}
		sn, err = archiver.New(r, ao).BackupPaths(ctx, abs, meta)
	}
	if err != nil {
		return err
	}
	return reportBackup(g, sn)
}

// backupCommandOutput runs argv and backs up its standard output. Its
// standard error goes to ours and its tail is kept for the error message.
func backupCommandOutput(ctx context.Context, g *globals, a *archiver.Archiver, argv []string, name string, meta archiver.Meta) (*snapshot.Snapshot, error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	tail := &tailBuffer{max: 4096}
	cmd.Stderr = io.MultiWriter(g.stderr, tail)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, sourceError{fmt.Errorf("cannot start %s: %w", argv[0], err)}
	}
	waited := false
	wait := func() error {
		waited = true
		if err := cmd.Wait(); err != nil {
			msg := strings.TrimSpace(tail.String())
			if msg != "" {
				msg = ": " + msg
			}
			return sourceError{fmt.Errorf("command %q failed (%v)%s; no snapshot was made", strings.Join(argv, " "), err, msg)}
		}
		return nil
	}
	sn, err := a.BackupReader(ctx, out, name, meta, wait)
	if !waited {
		cancel()
		werr := wait()
		var se sourceError
		if err != nil && errors.As(werr, &se) && !errors.Is(err, context.Canceled) {
			// The command's failure is the cause most worth telling.
			return nil, fmt.Errorf("%w (%v)", werr, err)
		}
	}
	return sn, err
}

type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if t.buf.Len() > 2*t.max {
		b := t.buf.Bytes()
		keep := append([]byte(nil), b[len(b)-t.max:]...)
		t.buf.Reset()
		t.buf.Write(keep)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf.Bytes()
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	return string(b)
}

func reportBackup(g *globals, sn *snapshot.Snapshot) error {
	s := sn.Summary
	if g.json {
		if err := printJSON(g.stdout, map[string]any{"id": sn.ID.String(), "summary": s}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(g.stdout, "files: %d new, %d changed, %d unmodified; dirs: %d\n", s.FilesNew, s.FilesChanged, s.FilesUnmodified, s.Dirs)
		fmt.Fprintf(g.stdout, "added %s (%s stored) of %s in %s\n", formatBytes(s.BytesAdded), formatBytes(s.BytesStored),
			formatBytes(s.TotalBytes), time.Duration(s.DurationNs).Round(time.Millisecond))
		fmt.Fprintf(g.stdout, "snapshot %s saved\n", sn.ID.Str())
	}
	if s.Errors > 0 {
		return incompleteError{fmt.Sprintf("snapshot %s saved, but %d files could not be read (see the warnings above)", sn.ID.Str(), s.Errors)}
	}
	return nil
}

// stallAt returns a checkpoint hook that, at the named point, says so on
// standard error and waits to be killed. Only the crash tests set
// HOARD_TEST_STALL_AT; it is not a user-facing option.
func stallAt(g *globals, point string) func(string) {
	if point == "" {
		return nil
	}
	var once sync.Once
	return func(p string) {
		if p != point {
			return
		}
		once.Do(func() {
			fmt.Fprintf(g.stderr, "hoard-test: stalled at %s\n", p)
			for {
				time.Sleep(time.Hour)
			}
		})
	}
}
