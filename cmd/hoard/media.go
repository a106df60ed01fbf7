package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/config"
	"github.com/hoard-backup/hoard/database"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/spotcheck"
)

// spotError is a spot check that found files differing from the snapshot
// (exit 19, as a failed restore drill); corrupt marks content that differs
// behind an unchanged size and mtime (exit 20).
type spotError struct {
	msg     string
	corrupt bool
}

func (e spotError) Error() string { return e.msg }

func mediaCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:        "media",
		Usage:       "check the media trees the config file names",
		Subcommands: []*cli.Command{mediaVerifyCommand(g)},
	}
}

// defaultSpotSample is how much of a tree media verify samples unless told.
const defaultSpotSample = "5%"

func mediaVerifyCommand(g *globals) *cli.Command {
	var sample string
	var seed uint64
	return &cli.Command{
		Name: "verify",
		Usage: "spot check: compare a random sample of a media tree's files in a snapshot with the live files " +
			"(content, size, mtime, mode); never writes to the live tree",
		ArgsUsage: "NAME [SNAPSHOT|latest]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "sample", Value: defaultSpotSample, Destination: &sample,
				Usage: "how many files: a number, or `P%` of the tree's files"},
			&cli.Uint64Flag{Name: "seed", Destination: &seed,
				Usage: "choose the sample with this seed (the output names the seed of each run; the same seed repeats the sample)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usagef("media verify takes NAME [SNAPSHOT|latest]")
			}
			s, err := spotcheck.ParseSample(sample)
			if err != nil {
				return usagef("--sample: %v", err)
			}
			if !c.IsSet("seed") {
				seed = rand.Uint64()
			}
			ref := "latest"
			if c.NArg() == 2 {
				ref = c.Args().Get(1)
			}
			return runMediaVerify(c.Context, g, c.Args().First(), ref, spotcheck.Options{Sample: s, Seed: seed})
		},
	}
}

// media returns the media tree the config file names name.
func (g *globals) media(name string) (*config.Media, error) {
	cfg, err := g.needConfig()
	if err != nil {
		return nil, err
	}
	m := cfg.Media[name]
	if m == nil {
		return nil, usagef("no media tree %q in %s (it has: %s)", name, cfg.File, strings.Join(cfg.MediaNames(), ", "))
	}
	return m, nil
}

func runMediaVerify(ctx context.Context, g *globals, name, ref string, o spotcheck.Options) error {
	m, err := g.media(name)
	if err != nil {
		return err
	}
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true, read: true})
	if err != nil {
		return err
	}
	defer done()
	sn, err := findMediaSnapshot(ctx, g, r, m, ref)
	if err != nil {
		return err
	}
	rep, err := spotCheck(ctx, g, r, sn, m, o)
	if err != nil {
		return err
	}
	if g.json {
		if err := printJSON(g.stdout, spotJSON(m.Name, sn, o.Sample, rep)); err != nil {
			return err
		}
	} else {
		printSpot(g.stdout, m.Name, sn, o.Sample, rep)
	}
	return spotResult(m.Name, sn, rep)
}

// findMediaSnapshot returns the snapshot ref names, or for "latest" the
// newest snapshot of this host that holds every path of media tree m.
func findMediaSnapshot(ctx context.Context, g *globals, r *repo.Repository, m *config.Media, ref string) (*snapshot.Snapshot, error) {
	if !strings.EqualFold(ref, "latest") {
		return findSnapshot(ctx, r, ref)
	}
	host := ""
	if g.cfg != nil {
		host = g.cfg.Repository.Host
	}
	if host == "" {
		host, _ = os.Hostname()
	}
	sns, _, err := snapshot.List(ctx, r)
	if err != nil {
		return nil, err
	}
	for i := len(sns) - 1; i >= 0; i-- {
		sn := sns[i]
		if sn.Host != host {
			continue
		}
		holds := true
		for _, p := range m.Paths {
			holds = holds && slices.Contains(sn.Paths, p)
		}
		if holds {
			return sn, nil
		}
	}
	return nil, fmt.Errorf("%w: no snapshot of host %s holds media tree %s", snapshot.ErrNotFound, host, m.Name)
}

// spotCheck runs the spot check of media tree m in sn: each of its paths
// is the folder media/NAME/BASE of the snapshot (as hoard run stores it).
func spotCheck(ctx context.Context, g *globals, r *repo.Repository, sn *snapshot.Snapshot, m *config.Media, o spotcheck.Options) (*spotcheck.Report, error) {
	var roots []spotcheck.Root
	for _, p := range m.Paths {
		roots = append(roots, spotcheck.Root{Snap: "media/" + m.Name + "/" + database.RootName(p), Live: p})
	}
	start := time.Now()
	rep, err := spotcheck.Run(ctx, r, sn, roots, o)
	if err == nil {
		g.log.Debug("spot check done", "media", m.Name, "files", len(rep.Results), "took", time.Since(start))
	}
	return rep, err
}

// spotResult is the error (and so the exit code) a spot check's report
// makes: nil when nothing failed.
func spotResult(name string, sn *snapshot.Snapshot, rep *spotcheck.Report) error {
	failed := rep.Failed()
	switch {
	case rep.Corrupt() > 0:
		return spotError{fmt.Sprintf("spot check of media %s against snapshot %s: %d files differ in content while their size and mtime are as in the snapshot (corrupted or tampered with)",
			name, sn.ID.Str(), rep.Corrupt()), true}
	case rep.RepoErrors() > 0:
		return damagedError{fmt.Sprintf("spot check of media %s: %d files could not be read from snapshot %s", name, rep.RepoErrors(), sn.ID.Str())}
	case failed > 0:
		return spotError{msg: fmt.Sprintf("spot check of media %s against snapshot %s: %d of %d files failed", name, sn.ID.Str(), failed, len(rep.Results))}
	}
	return nil
}

// spotFileJSON is one file of media verify's --json answer.
type spotFileJSON struct {
	Path        string    `json:"path"`
	PathRaw     []byte    `json:"path_raw,omitempty"` // the path's bytes, when it is not UTF-8
	Live        string    `json:"live"`
	LiveRaw     []byte    `json:"live_raw,omitempty"`
	Status      string    `json:"status"`
	Failed      bool      `json:"failed"`
	Differs     []string  `json:"differs,omitempty"`
	Corrupt     bool      `json:"corrupt,omitempty"`
	AfterBackup bool      `json:"after_backup,omitempty"`
	Size        uint64    `json:"size"`
	LiveSize    *uint64   `json:"live_size,omitempty"`
	Mtime       time.Time `json:"mtime"`
	LiveMtime   time.Time `json:"live_mtime,omitzero"`
	Mode        string    `json:"mode"`
	LiveMode    string    `json:"live_mode,omitempty"`
	Error       string    `json:"error,omitempty"`
}

// spotReportJSON is media verify's --json answer.
type spotReportJSON struct {
	Media    string         `json:"media"`
	Snapshot string         `json:"snapshot"`
	Time     time.Time      `json:"snapshot_time"`
	Sample   string         `json:"sample"`
	Seed     uint64         `json:"seed"`
	Files    int            `json:"files"`
	Checked  int            `json:"checked"`
	Counts   map[string]int `json:"counts"`
	Failed   int            `json:"failed"`
	Corrupt  int            `json:"corrupt"`
	Passed   bool           `json:"passed"`
	Results  []spotFileJSON `json:"results"`
}

func rawIfNotUTF8(s string) []byte {
	if utf8.ValidString(s) {
		return nil
	}
	return []byte(s)
}

func spotJSON(name string, sn *snapshot.Snapshot, s spotcheck.Sample, rep *spotcheck.Report) spotReportJSON {
	out := spotReportJSON{Media: name, Snapshot: sn.ID.String(), Time: sn.Time, Sample: s.String(), Seed: rep.Seed,
		Files: rep.Files, Checked: len(rep.Results), Counts: map[string]int{}, Failed: rep.Failed(), Corrupt: rep.Corrupt(),
		Results: []spotFileJSON{}}
	out.Passed = out.Failed == 0
	for _, st := range []spotcheck.Status{spotcheck.Same, spotcheck.Differs, spotcheck.Missing, spotcheck.Changed, spotcheck.Error} {
		out.Counts[string(st)] = rep.Count(st)
	}
	for i := range rep.Results {
		res := &rep.Results[i]
		f := spotFileJSON{Path: res.Path, PathRaw: rawIfNotUTF8(res.Path), Live: res.Live, LiveRaw: rawIfNotUTF8(res.Live),
			Status: string(res.Status), Failed: res.Failed(), Differs: res.Diffs, Corrupt: res.Corrupt, AfterBackup: res.AfterBackup,
			Size: res.Size, Mtime: res.Mtime, Mode: res.Mode.String()}
		if !res.LiveMtime.IsZero() {
			f.LiveMtime, f.LiveMode = res.LiveMtime, res.LiveMode.String()
			if res.LiveMode.IsRegular() {
				f.LiveSize = &res.LiveSize
			}
		}
		if res.Err != nil {
			f.Error = res.Err.Error()
		}
		out.Results = append(out.Results, f)
	}
	return out
}

// printSpot writes the spot check as text: a header, one line per file
// (names quoted when they hold line breaks, control characters or bytes
// that are not UTF-8), and a summary.
func printSpot(w io.Writer, name string, sn *snapshot.Snapshot, s spotcheck.Sample, rep *spotcheck.Report) {
	fmt.Fprintf(w, "spot check of media %s against snapshot %s (%s): %d of %d files (sample %s, --seed %d)\n",
		name, sn.ID.Str(), sn.Time.Local().Format("2006-01-02 15:04:05"), len(rep.Results), rep.Files, s, rep.Seed)
	for i := range rep.Results {
		res := &rep.Results[i]
		line := fmt.Sprintf("%-8s %s", res.Status, quotePath(res.Live))
		switch res.Status {
		case spotcheck.Differs:
			line += ": " + strings.Join(res.Diffs, ", ")
			if d := differsDetail(res); d != "" {
				line += " " + d
			}
			if res.Corrupt {
				line += " (size and mtime as in the snapshot: corrupted or tampered with)"
			}
		case spotcheck.Changed:
			line += ": " + strings.Join(res.Diffs, ", ") + " (modified after the backup; not a failure)"
		case spotcheck.Missing:
			if res.AfterBackup {
				line += " (its folder changed after the backup: deleted since; not a failure)"
			}
		case spotcheck.Error:
			line += ": " + res.Err.Error()
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "%d same, %d differ, %d missing, %d changed since the backup, %d errors; ",
		rep.Count(spotcheck.Same), rep.Count(spotcheck.Differs), rep.Count(spotcheck.Missing), rep.Count(spotcheck.Changed), rep.Count(spotcheck.Error))
	if f := rep.Failed(); f > 0 {
		fmt.Fprintf(w, "%d failed\n", f)
	} else {
		fmt.Fprintln(w, "passed")
	}
}

// differsDetail shows the snapshot's and the live values of what differs
// in metadata.
func differsDetail(res *spotcheck.Result) string {
	var parts []string
	for _, d := range res.Diffs {
		switch d {
		case spotcheck.DiffSize:
			parts = append(parts, fmt.Sprintf("size %d -> %d", res.Size, res.LiveSize))
		case spotcheck.DiffMtime:
			parts = append(parts, fmt.Sprintf("mtime %s -> %s", res.Mtime.Format(time.RFC3339Nano), res.LiveMtime.Format(time.RFC3339Nano)))
		case spotcheck.DiffMode:
			parts = append(parts, fmt.Sprintf("mode %s -> %s", res.Mode, res.LiveMode))
		case spotcheck.DiffType:
			parts = append(parts, "now a "+res.LiveMode.Type().String())
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// spotChecksAfterRun spot checks, in snapshot sn just made by hoard run,
// each media tree whose config sets spot_check, printing each report as
// text (without --json). It returns the reports for --json, and an error
// naming what failed.
func spotChecksAfterRun(ctx context.Context, g *globals, sn *snapshot.Snapshot, media []*config.Media) (map[string]spotReportJSON, error) {
	var todo []*config.Media
	for _, m := range media {
		if m.SpotCheck != "" {
			todo = append(todo, m)
		}
	}
	if len(todo) == 0 {
		return nil, nil
	}
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true, read: true})
	if err != nil {
		return nil, fmt.Errorf("spot_check: %w", err)
	}
	defer done()
	out := map[string]spotReportJSON{}
	var errs []error
	for _, m := range todo {
		s, err := spotcheck.ParseSample(m.SpotCheck)
		if err != nil {
			return out, usagef("%s: media.%s.spot_check: %v", g.cfg.File, m.Name, err)
		}
		rep, err := spotCheck(ctx, g, r, sn, m, spotcheck.Options{Sample: s, Seed: rand.Uint64()})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[m.Name] = spotJSON(m.Name, sn, s, rep)
		if !g.json {
			printSpot(g.stdout, m.Name, sn, s, rep)
		}
		if err := spotResult(m.Name, sn, rep); err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}
