package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/report"
	"github.com/hoard-backup/hoard/snapshot"
)

// monitorFlags are the global flags of monitoring; the config file's
// [monitoring] fills what they leave empty.
func monitorFlags(m *monitorOptions) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "metrics-file", EnvVars: []string{"HOARD_METRICS_FILE"}, Destination: &m.textfile,
			Usage: "record commands that change the repository in this Prometheus textfile (node_exporter)"},
		&cli.StringFlag{Name: "ping-url", EnvVars: []string{"HOARD_PING_URL"}, Destination: &m.pingURL,
			Usage: "signal start, success and failure to this URL (healthchecks.io conventions)"},
		&cli.StringFlag{Name: "on-failure", EnvVars: []string{"HOARD_ON_FAILURE"}, Destination: &m.onFailure,
			Usage: "run this shell command when a command that changes the repository fails"},
	}
}

// monitorOptions say where a command's outcome is reported.
type monitorOptions struct {
	textfile, pingURL, onFailure string
}

// monitored are the commands whose runs are reported: those that change
// the repository's contents.
var monitored = map[string]bool{
	"backup": true, "run": true, "db backup": true, "forget": true, "prune": true, "copy": true,
}

// monitorCommands wraps the Action of every monitored command (at any
// depth) so that its outcome is reported.
func monitorCommands(g *globals, cmds []*cli.Command, parent string) {
	for _, cmd := range cmds {
		name := strings.TrimSpace(parent + " " + cmd.Name)
		monitorCommands(g, cmd.Subcommands, name)
		if !monitored[name] || cmd.Action == nil {
			continue
		}
		action := cmd.Action
		cmd.Action = func(c *cli.Context) error {
			return g.monitor(c.Context, name, func() error { return action(c) })
		}
	}
}

// runFacts is what a monitored command learnt that the report wants: its
// snapshot, and the repository's figures when it closed it.
type runFacts struct {
	snapshot  *snapshot.Snapshot
	snapshots int   // snapshot files in the repository; -1 unknown
	packBytes int64 // bytes of indexed packs; -1 unknown
	removed   int   // snapshots forget removed
}

// monitor runs fn and reports its outcome as the flags and the config file
// ask. Monitoring never changes the command's result: its failures are
// warnings.
func (g *globals) monitor(ctx context.Context, name string, fn func() error) error {
	m := g.monitorOpts
	if g.cfg != nil {
		cm := g.cfg.Monitoring
		if m.textfile == "" {
			m.textfile = cm.Textfile
		}
		if m.pingURL == "" {
			m.pingURL = cm.PingURL
		}
		if m.onFailure == "" {
			m.onFailure = cm.OnFailure
		}
	}
	if m.textfile == "" && m.pingURL == "" && m.onFailure == "" {
		return fn()
	}
	tail := report.NewTail(64 << 10)
	g.stderr = io.MultiWriter(g.stderr, tail)
	g.log = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: g.logLevel}))
	g.facts = &runFacts{snapshots: -1, packBytes: -1}
	// Reports go out even when the command was interrupted: the ping tells
	// the service it failed, within a few seconds.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var pinger *report.Pinger
	if m.pingURL != "" {
		pinger = report.NewPinger(m.pingURL)
		if err := pinger.Start(rctx); err != nil {
			g.log.Warn("monitoring: start ping failed", "error", err)
		}
	}
	run := report.Run{Command: name, Host: g.hostName(), Start: time.Now()}
	err := fn()
	run.End, run.Err = time.Now(), err
	f := g.facts
	run.Values = map[string]float64{}
	if sn := f.snapshot; sn != nil {
		run.Host, run.Source = sn.Host, sourceLabel(sn)
		if s := sn.Summary; s != nil {
			for k, v := range map[string]uint64{"bytes_read": s.BytesRead, "bytes_added": s.BytesAdded, "bytes_stored": s.BytesStored,
				"files_new": s.FilesNew, "files_changed": s.FilesChanged, "files_unmodified": s.FilesUnmodified,
				"errors": s.Errors, "total_bytes": s.TotalBytes} {
				run.Values[k] = float64(v)
			}
		}
	}
	if f.snapshots >= 0 {
		run.Values["snapshots"] = float64(f.snapshots)
	}
	if f.packBytes >= 0 {
		run.Values["repository_bytes"] = float64(f.packBytes)
	}
	if name == "forget" {
		run.Values["snapshots_removed"] = float64(f.removed)
	}
	if m.textfile != "" {
		if werr := report.WriteTextfile(m.textfile, run); werr != nil {
			g.log.Warn("monitoring: textfile not written", "error", werr)
		}
	}
	if err != nil && m.onFailure != "" {
		if herr := report.RunHook(rctx, m.onFailure, run, g.stderr, 5*time.Minute); herr != nil {
			g.log.Warn("monitoring: on-failure command failed", "error", herr)
		}
	}
	if pinger != nil {
		var perr error
		if err != nil {
			body := append(tail.Bytes(), []byte("hoard: "+err.Error()+"\n")...)
			perr = pinger.Fail(rctx, body)
		} else {
			perr = pinger.Success(rctx, tail.Bytes())
		}
		if perr != nil {
			g.log.Warn("monitoring: end ping failed", "error", perr)
		}
	}
	return err
}

// noteRepository records, for the report, the repository's snapshot count
// and pack bytes before a monitored command closes it.
func (g *globals) noteRepository(ctx context.Context, r *repo.Repository) {
	if g.facts == nil {
		return
	}
	if names, err := r.List(ctx, backends.SnapshotFile); err == nil {
		g.facts.snapshots = len(names)
	}
	if r.Index().Len() > 0 {
		var n int64
		for _, p := range r.Index().Packs() {
			n += int64(p.Size)
		}
		g.facts.packBytes = n
	}
}

// noteSnapshot records the snapshot a monitored command saved.
func (g *globals) noteSnapshot(sn *snapshot.Snapshot) {
	if g.facts != nil {
		g.facts.snapshot = sn
	}
}

// hostName is the host a report names when the command saved no snapshot.
func (g *globals) hostName() string {
	if g.cfg != nil && g.cfg.Repository.Host != "" {
		return g.cfg.Repository.Host
	}
	h, _ := os.Hostname()
	return h
}

// sourceLabel names what a snapshot backed up, for the source label.
func sourceLabel(sn *snapshot.Snapshot) string {
	switch {
	case len(sn.Source.Databases) > 0 && len(sn.Paths) == 0:
		var names []string
		for _, d := range sn.Source.Databases {
			names = append(names, d.Name)
		}
		return strings.Join(names, ",")
	case sn.Source.Kind == snapshot.KindRun:
		return "run"
	case sn.Source.Filename != "":
		return sn.Source.Filename
	}
	return strings.Join(sn.Paths, ",")
}
