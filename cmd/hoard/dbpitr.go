package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/pitr"
	"github.com/hoard-backup/hoard/repo/wal"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

// pitrOptions are db restore's flags for a physical backup.
type pitrOptions struct {
	toTime, toLSN, toName string
	toEnd                 bool
	dataDir               string
	start                 bool
	port                  int
	binDir                string
	timeout               time.Duration
	noArchive             bool
}

func (o *pitrOptions) wanted() bool {
	return o.toTime != "" || o.toLSN != "" || o.toName != "" || o.toEnd || o.dataDir != ""
}

func pitrFlags(o *pitrOptions) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "to-time", Destination: &o.toTime,
			Usage: "point-in-time recovery: replay WAL up to this time ('2026-12-01 14:03:00+00', RFC 3339 also accepted)"},
		&cli.StringFlag{Name: "to-lsn", Destination: &o.toLSN, Usage: "point-in-time recovery: replay WAL up to this LSN (0/16B3748)"},
		&cli.StringFlag{Name: "to-name", Destination: &o.toName, Usage: "point-in-time recovery: replay WAL up to this restore point (pg_create_restore_point)"},
		&cli.BoolFlag{Name: "to-end", Destination: &o.toEnd, Usage: "point-in-time recovery: replay all archived WAL"},
		&cli.StringFlag{Name: "data-dir", Destination: &o.dataDir, Usage: "restore a physical backup into this (empty) PostgreSQL data directory"},
		&cli.BoolFlag{Name: "start", Destination: &o.start, Usage: "start the restored server and wait until recovery reaches the target"},
		&cli.IntFlag{Name: "port", Destination: &o.port, Value: 5433, Usage: "with --start: the port (on 127.0.0.1) the restored server listens on"},
		&cli.StringFlag{Name: "pg-bindir", Destination: &o.binDir, Usage: "with --start: where pg_ctl and psql are (default: PATH)"},
		&cli.BoolFlag{Name: "no-archive", Destination: &o.noArchive,
			Usage: "the restored server does not archive WAL (a trial restore: its new timeline stays out of the archive)"},
		&cli.DurationFlag{Name: "timeout", Destination: &o.timeout, Value: time.Hour, Usage: "with --start: how long recovery may take"},
	}
}

// target parses the --to-* flags.
func (o *pitrOptions) target() (pitr.Target, error) {
	n := 0
	for _, set := range []bool{o.toTime != "", o.toLSN != "", o.toName != "", o.toEnd} {
		if set {
			n++
		}
	}
	if n != 1 {
		return pitr.Target{}, usagef("give one of --to-time, --to-lsn, --to-name, --to-end")
	}
	if o.dataDir == "" {
		return pitr.Target{}, usagef("a physical restore needs --data-dir DIR")
	}
	var t pitr.Target
	switch {
	case o.toTime != "":
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999-0700"} {
			if tm, err := time.Parse(layout, o.toTime); err == nil {
				t.Time = tm
				break
			}
		}
		if t.Time.IsZero() {
			return t, usagef("--to-time %q: give a time with its zone, e.g. '2026-12-01 14:03:00+00'", o.toTime)
		}
	case o.toLSN != "":
		if _, err := pitr.ParseLSN(o.toLSN); err != nil {
			return t, usagef("--to-lsn: %v", err)
		}
		t.LSN = o.toLSN
	case o.toName != "":
		t.Name = o.toName
	}
	return t, nil
}

func runPITRRestore(ctx context.Context, g *globals, o *dbRestoreOptions, name, ref string) error {
	t, err := o.pitr.target()
	if err != nil {
		return err
	}
	if o.into != "" {
		return usagef("--into is for dumps; a physical backup is restored with --data-dir")
	}
	if err := wal.CheckCluster(name); err != nil {
		return usagef("%v", err)
	}
	dir, err := filepath.Abs(o.pitr.dataDir)
	if err != nil {
		return err
	}
	restoreCmd, err := g.restoreCommand(name)
	if err != nil {
		return err
	}
	ctx, r, done, err := g.openRepo(ctx, openOptions{index: true, read: true})
	if err != nil {
		return err
	}
	defer done()
	sns, _, err := snapshot.List(ctx, r)
	if err != nil {
		return err
	}
	bbs := pitr.BaseBackups(sns, name)
	var bb pitr.BaseBackup
	if ref == "latest" {
		if bb, err = pitr.Choose(bbs, t); err != nil {
			return err
		}
	} else {
		sn, err := findSnapshot(ctx, r, ref)
		if err != nil {
			return err
		}
		found := false
		for _, b := range bbs {
			if b.Snapshot.ID == sn.ID {
				bb, found = b, true
			}
		}
		if !found {
			return refusedError{Err: fmt.Errorf("snapshot %s holds no physical backup of %s", sn.ID.Str(), name)}
		}
	}
	arch, err := pitr.ReadArchive(ctx, r.Backend())
	if err != nil {
		return err
	}
	if err := pitr.CheckWAL(ctx, r, arch, name, bb, t); err != nil {
		var me *pitr.MissingError
		if errors.As(err, &me) {
			return damagedError{err.Error()}
		}
		return err
	}
	if err := pitr.PrepareDir(dir, o.force); err != nil {
		if errors.Is(err, pitr.ErrNotEmpty) {
			return refusedError{Err: err}
		}
		return err
	}
	n, err := restorer.FindNode(ctx, r, bb.Snapshot, bb.DB.Path)
	if err != nil {
		return err
	}
	start := time.Now()
	pr, pw := io.Pipe()
	dumped := make(chan error, 1)
	go func() {
		err := restorer.Dump(ctx, r, n, pw, 0)
		pw.CloseWithError(err)
		dumped <- err
	}()
	err = pitr.Extract(pr, dir)
	pr.CloseWithError(errRestoreStopped)
	if derr := <-dumped; err == nil && derr != nil {
		err = derr
	}
	if err != nil {
		return err
	}
	if err := pitr.WriteRecovery(dir, restoreCmd, t, o.pitr.noArchive); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "restored base backup %s of %s (%s, started at WAL %s, LSN %s to %s, timeline %d) into %s in %s\n",
		bb.Snapshot.ID.Str(), name, formatBytes(n.Size), bb.StartWAL.File, bb.DB.Details["start_lsn"], bb.DB.Details["stop_lsn"],
		bb.Timeline, dir, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(g.stdout, "recovery replays archived WAL to %s (recovery.signal and postgresql.auto.conf written)\n", t)
	if !o.pitr.start {
		fmt.Fprintf(g.stdout, "start it with: pg_ctl -D %s start\n", dir)
		return nil
	}
	rec, err := pitr.Start(ctx, dir, pitr.StartOptions{BinDir: o.pitr.binDir, Port: o.pitr.port, Timeout: o.pitr.timeout})
	if rec != nil {
		for _, l := range rec.Lines {
			fmt.Fprintln(g.stdout, "  "+l)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "recovery ended after %s; the server runs on 127.0.0.1:%d (stop it with pg_ctl -D %s stop)\n",
		time.Since(start).Round(time.Millisecond), o.pitr.port, dir)
	return nil
}

// restoreCommand is the restore_command a restored server runs: this
// binary's wal fetch with the repository and the ways to open it. Only
// file names and commands go into it, never a secret: a passphrase, a
// key or a URL with a password in it is refused.
func (g *globals) restoreCommand(cluster string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if u, err := url.Parse(g.repo); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return "", usagef("the repository URL holds a password, which restore_command would show in postgresql.auto.conf: put it in the config file")
		}
	}
	var env []string
	add := func(k, v string) {
		if v != "" {
			env = append(env, k+"="+shellQuote(v))
		}
	}
	abs := func(p string) string {
		if p == "" {
			return ""
		}
		a, err := filepath.Abs(p)
		if err != nil {
			return p
		}
		return a
	}
	repoArg := g.repo
	if !strings.Contains(repoArg, "://") {
		repoArg = abs(repoArg)
	}
	add("HOARD_REPOSITORY", repoArg)
	add("HOARD_PASSWORD_FILE", abs(g.passwordFile))
	add("HOARD_PASSWORD_COMMAND", g.passwordCommand)
	add("HOARD_GPG_SECRET_KEY", abs(g.gpgSecretKey))
	add("HOARD_GPG_PASSPHRASE_FILE", abs(g.gpgPassphraseFile))
	if g.gpgAgent {
		add("HOARD_GPG_AGENT", "1")
	}
	if g.cfg != nil {
		add("HOARD_CONFIG", abs(g.cfg.File))
	}
	return "env " + strings.Join(env, " ") + " " + shellQuote(exe) + " wal fetch --db " + shellQuote(cluster) + " %f %p", nil
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
