package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/pitr"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/wal"
	"github.com/hoard-backup/hoard/snapshot"
)

// walCommand is PostgreSQL's WAL archive: push for archive_command, fetch
// for restore_command (docs/pitr.md).
func walCommand(g *globals) *cli.Command {
	var cluster string
	clusterFlag := &cli.StringFlag{Name: "db", EnvVars: []string{"HOARD_WAL_DB"}, Destination: &cluster,
		Usage: "the database (cluster) the WAL belongs to: its name in the config file, as for hoard db backup NAME --physical"}
	need := func() error {
		if cluster == "" {
			return usagef("no database: give --db NAME (or HOARD_WAL_DB)")
		}
		if err := wal.CheckCluster(cluster); err != nil {
			return usagef("--db: %v", err)
		}
		return nil
	}
	return &cli.Command{
		Name:  "wal",
		Usage: "archive and fetch PostgreSQL WAL (archive_command, restore_command) for point-in-time recovery",
		Subcommands: []*cli.Command{
			{
				Name:      "push",
				Usage:     "archive one WAL file: archive_command = 'hoard wal push --db NAME %p'",
				ArgsUsage: "PATH",
				Flags:     []cli.Flag{clusterFlag},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("wal push takes the WAL file's PATH (%%p)")
					}
					if err := need(); err != nil {
						return err
					}
					return runWALPush(c.Context, g, cluster, c.Args().First())
				},
			},
			{
				Name:      "fetch",
				Usage:     "restore one archived WAL file: restore_command = 'hoard wal fetch --db NAME %f %p'",
				ArgsUsage: "FILE DEST",
				Flags:     []cli.Flag{clusterFlag},
				Action: func(c *cli.Context) error {
					if c.NArg() != 2 {
						return usagef("wal fetch takes the WAL FILE name (%%f) and the DEST path (%%p)")
					}
					if err := need(); err != nil {
						return err
					}
					return runWALFetch(c.Context, g, cluster, c.Args().Get(0), c.Args().Get(1))
				},
			},
			{
				Name:  "list",
				Usage: "show the archived WAL per database and timeline, and its gaps",
				Flags: []cli.Flag{clusterFlag},
				Action: func(c *cli.Context) error {
					return runWALList(c.Context, g, cluster)
				},
			},
		},
	}
}

func runWALPush(ctx context.Context, g *globals, cluster, path string) error {
	start := time.Now()
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true})
	if err != nil {
		return err
	}
	defer done()
	host := ""
	if g.cfg != nil {
		host = g.cfg.Repository.Host
	}
	if host == "" {
		host, _ = os.Hostname()
	}
	res, err := pitr.Push(ctx, r, cluster, path, host, time.Now)
	if errors.Is(err, pitr.ErrConflict) {
		return refusedError{Err: err}
	}
	if err != nil {
		return err
	}
	g.log.Info("wal pushed", "file", res.Entry.File, "already", res.Already, "stored", res.Stored, "took", time.Since(start))
	return nil
}

func runWALFetch(ctx context.Context, g *globals, cluster, file, dest string) error {
	ctx, r, done, err := g.openRepo(ctx, openOptions{})
	if err != nil {
		return err
	}
	defer done()
	return pitr.Fetch(ctx, r, cluster, file, dest)
}

func runWALList(ctx context.Context, g *globals, cluster string) error {
	ctx, r, done, err := g.openRepo(ctx, openOptions{})
	if err != nil {
		return err
	}
	defer done()
	arch, err := pitr.ReadArchive(ctx, r.Backend())
	if err != nil {
		return err
	}
	if sns, _, err := snapshot.List(ctx, r); err == nil {
		for _, c := range arch.Clusters() {
			if bbs := pitr.BaseBackups(sns, c); len(bbs) > 0 {
				arch.SetSegmentSize(c, bbs[0].SegSize)
			}
		}
	}
	var out []pitr.Timeline
	for _, tl := range arch.Timelines() {
		if cluster == "" || tl.Cluster == cluster {
			out = append(out, tl)
		}
	}
	if g.json {
		return printJSON(g.stdout, out)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Database\tTimeline\tFirst\tLast\tSegments\tMissing")
	for _, tl := range out {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\n", tl.Cluster, tl.Timeline, tl.First, tl.Last, tl.Segments, describeGaps(tl.Missing))
	}
	return tw.Flush()
}

func describeGaps(missing []string) string {
	switch len(missing) {
	case 0:
		return "-"
	case 1:
		return missing[0]
	}
	return fmt.Sprintf("%s and %d more", missing[0], len(missing)-1)
}

// expireWAL removes (or, in a dry run, counts) the archived WAL that no
// base backup in the repository needs (pitr.Expired). The caller holds an
// exclusive lock unless dryRun.
func expireWAL(ctx context.Context, r *repo.Repository, dryRun bool) (int, error) {
	arch, err := pitr.ReadArchive(ctx, r.Backend())
	if err != nil || len(arch.Clusters()) == 0 {
		return 0, err
	}
	sns, probs, err := snapshot.List(ctx, r)
	if err != nil {
		return 0, err
	}
	if len(probs) > 0 {
		return 0, nil // prune refuses with the reason below
	}
	expired := pitr.Expired(arch, sns)
	if dryRun {
		n := 0
		for _, items := range expired {
			n += len(items)
		}
		return n, nil
	}
	return pitr.Forget(ctx, r, expired)
}

// checkWAL adds the archived WAL's problems (unreadable entries, missing
// pieces, gaps in a timeline) to a check report.
func checkWAL(ctx context.Context, r *repo.Repository, rep *snapshot.CheckReport) error {
	sns, _, err := snapshot.List(ctx, r)
	if err != nil {
		return err
	}
	probs, err := pitr.Check(ctx, r, sns, rep.BadBlobs)
	if err != nil {
		return err
	}
	for _, p := range probs {
		rep.Problems = append(rep.Problems, snapshot.CheckProblem{File: p.File, Err: p.Err})
	}
	return nil
}

// dbWindow sets the recovery window of a database with physical backups.
func dbWindow(ctx context.Context, r *repo.Repository, sns []*snapshot.Snapshot, e *dbListEntry) error {
	if wal.CheckCluster(e.Name) != nil || len(pitr.BaseBackups(sns, e.Name)) == 0 {
		return nil
	}
	arch, err := pitr.ReadArchive(ctx, r.Backend())
	if err != nil {
		return err
	}
	w, ok, err := pitr.RecoveryWindow(ctx, r, arch, sns, e.Name)
	if err != nil || !ok {
		return err
	}
	e.Window = &w
	return nil
}
