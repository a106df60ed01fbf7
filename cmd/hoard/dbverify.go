package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/dump/drill"
)

// drillError is a restore drill whose restored database failed an engine
// check or whose row counts differ from the expected ones.
type drillError struct{ msg string }

func (e drillError) Error() string { return e.msg }

func dbVerifyCommand(g *globals) *cli.Command {
	stale := drill.StaleAfter
	return &cli.Command{
		Name:      "verify",
		Usage:     "restore drill: restore a database snapshot into a scratch database, check it and compare row counts",
		ArgsUsage: "NAME [SNAPSHOT|latest]",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "leftovers-older-than", Value: stale, Destination: &stale,
				Usage: "first drop scratch databases of earlier, killed drills older than this"},
		},
		Action: func(c *cli.Context) error {
			if stale < 0 {
				return usagef("--leftovers-older-than must not be negative")
			}
			if c.NArg() < 1 || c.NArg() > 2 {
				return usagef("db verify takes NAME [SNAPSHOT|latest]")
			}
			ref := "latest"
			if c.NArg() == 2 {
				ref = c.Args().Get(1)
			}
			return runDBVerify(c.Context, g, c.Args().First(), ref, stale)
		},
	}
}

// dbVerifyJSON is db verify's --json answer.
type dbVerifyJSON struct {
	Snapshot    string             `json:"snapshot"`
	Database    string             `json:"database"`
	Engine      string             `json:"engine"`
	Scratch     string             `json:"scratch"`
	Passed      bool               `json:"passed"`
	Expected    string             `json:"expected"` // where the expected row counts come from: "fingerprint" (recorded at backup time) or "live" (the database, counted now)
	Notes       []string           `json:"notes,omitempty"`
	Checks      []dump.CheckResult `json:"checks"`
	Tables      []drill.Table      `json:"tables"`
	Failures    []string           `json:"failures,omitempty"`
	Leftovers   []string           `json:"leftovers_dropped,omitempty"`
	Bytes       uint64             `json:"bytes"`
	RestoreNS   int64              `json:"restore_ns"`
	CheckNS     int64              `json:"check_ns"`
	ScratchGone bool               `json:"scratch_dropped"`
}

// expectedFrom says where a drill's expected row counts came from.
var expectedFrom = map[string]string{"fingerprint": "the fingerprint recorded at backup time", "live": "the live database's"}

func runDBVerify(ctx context.Context, g *globals, name, ref string, stale time.Duration) (err error) {
	d, err := g.database(name)
	if err != nil {
		return err
	}
	eng, err := g.engine(ctx, d)
	if err != nil {
		return err
	}
	ck, ok := eng.(dump.Checker)
	if !ok || d.Physical {
		return usagef("database %s: a restore drill needs a logical dump (pg_dump, mariadb-dump or an SQLite copy)", d.Name)
	}
	out := dbVerifyJSON{Database: d.Name, Engine: engineOf(eng)}
	now := time.Now()
	sqlite := out.Engine == dump.SQLite
	// Leftovers of a drill that was killed.
	if sqlite {
		for _, f := range drill.StaleFiles(drill.TempDir(d.TempDir), now, stale) {
			if err := ck.Drop(ctx, f); err != nil {
				return fmt.Errorf("removing the leftover scratch file %s: %w", f, err)
			}
			out.Leftovers = append(out.Leftovers, f)
		}
	} else if out.Leftovers, err = drill.DropStale(ctx, ck, now, stale); err != nil {
		return err
	}
	for _, l := range out.Leftovers {
		fmt.Fprintf(g.stderr, "hoard: dropped the leftover scratch database %s\n", l)
	}

	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, index: true, read: true})
	if err != nil {
		return err
	}
	defer done()
	sn, info, err := findDBSnapshot(ctx, r, d.Name, ref)
	if err != nil {
		return err
	}
	out.Snapshot = sn.ID.String()
	if out.Scratch, err = drill.ScratchName(d.Name, now); err != nil {
		return err
	}
	if sqlite {
		out.Scratch = filepath.Join(drill.TempDir(d.TempDir), out.Scratch+".sqlite")
	}
	defer func() {
		// ctx may be cancelled (Ctrl-C): drop the scratch database anyway.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if derr := ck.Drop(dctx, out.Scratch); derr != nil {
			err = errors.Join(err, fmt.Errorf("dropping the scratch database %s: %w", out.Scratch, derr))
		}
	}()

	start := time.Now()
	out.Bytes, err = loadDump(ctx, g, r, sn, info, eng, dump.Target{Into: out.Scratch})
	if err != nil {
		return fmt.Errorf("restore drill of %s, snapshot %s: restoring into %s: %w", d.Name, sn.ID.Str(), out.Scratch, err)
	}
	out.RestoreNS = time.Since(start).Nanoseconds()
	start = time.Now()
	if out.Checks, err = ck.Check(ctx, out.Scratch); err != nil {
		return err
	}
	restored, err := ck.Tables(ctx, out.Scratch)
	if err != nil {
		return err
	}
	// The fingerprint recorded at backup time says what the dump held;
	// snapshots without one are compared with the live database, counted
	// now (which may have changed since).
	out.Expected = "fingerprint"
	expected, ok := drill.Expected(info.Fingerprint, restored)
	if !ok {
		out.Expected = "live"
		out.Notes = append(out.Notes, "no fingerprint recorded: row counts compared with the live database's")
		fmt.Fprintf(g.stderr, "hoard: snapshot %s records no fingerprint of %s: comparing row counts with the live database\n", sn.ID.Str(), d.Name)
		if expected, err = ck.Tables(ctx, ""); err != nil {
			return fmt.Errorf("counting the rows of the live database %s: %w", d.Name, err)
		}
	}
	out.Tables = drill.Compare(expected, restored)
	out.CheckNS = time.Since(start).Nanoseconds()
	out.Failures = drill.Failures(out.Checks, out.Tables)
	out.Passed = len(out.Failures) == 0
	out.ScratchGone = true // by the deferred drop; an error there is returned
	if g.json {
		if err := printJSON(g.stdout, out); err != nil {
			return err
		}
	} else if out.Passed {
		fmt.Fprintf(g.stdout, "restore drill of %s (%s) from snapshot %s passed: %d checks, %d tables (row counts as %s), restore %s, checks %s\n",
			d.Name, out.Engine, sn.ID.Str(), len(out.Checks), len(out.Tables), expectedFrom[out.Expected],
			time.Duration(out.RestoreNS).Round(time.Millisecond), time.Duration(out.CheckNS).Round(time.Millisecond))
	}
	if !out.Passed {
		return drillError{fmt.Sprintf("restore drill of %s from snapshot %s failed (row counts expected as %s):\n  %s",
			d.Name, sn.ID.Str(), expectedFrom[out.Expected], strings.Join(out.Failures, "\n  "))}
	}
	return nil
}
