package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/copier"
)

// copyTarget is the target repository of copy and how to open it: the same
// choices as the source's global flags, under --to-*.
type copyTarget struct {
	repo, passwordFile, passwordCommand string
	gpgSecretKey, gpgPassphraseFile     string
	gpgAgent                            bool
}

func (t *copyTarget) flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "to", EnvVars: []string{"HOARD_TO_REPOSITORY"}, Destination: &t.repo,
			Usage: "the target repository (any location --repo takes)"},
		&cli.StringFlag{Name: "to-password-file", EnvVars: []string{"HOARD_TO_PASSWORD_FILE"}, Destination: &t.passwordFile,
			Usage: "read the target's passphrase from this file"},
		&cli.StringFlag{Name: "to-password-command", EnvVars: []string{"HOARD_TO_PASSWORD_COMMAND"}, Destination: &t.passwordCommand,
			Usage: "run this shell command and read the target's passphrase from its output"},
		&cli.StringFlag{Name: "to-gpg-secret-key", EnvVars: []string{"HOARD_TO_GPG_SECRET_KEY"}, Destination: &t.gpgSecretKey,
			Usage: "open the target's key files with this GPG secret key"},
		&cli.StringFlag{Name: "to-gpg-passphrase-file", EnvVars: []string{"HOARD_TO_GPG_PASSPHRASE_FILE"}, Destination: &t.gpgPassphraseFile,
			Usage: "read the passphrase of --to-gpg-secret-key from this file"},
		&cli.BoolFlag{Name: "to-gpg-agent", EnvVars: []string{"HOARD_TO_GPG_AGENT"}, Destination: &t.gpgAgent,
			Usage: "open the target's key files through gpg and its agent"},
	}
}

// globals returns g with the repository and key options of the target.
func (t *copyTarget) globals(g *globals) *globals {
	tg := *g
	tg.repo, tg.passwordFile, tg.passwordCommand = t.repo, t.passwordFile, t.passwordCommand
	tg.gpgSecretKey, tg.gpgPassphraseFile, tg.gpgAgent = t.gpgSecretKey, t.gpgPassphraseFile, t.gpgAgent
	return &tg
}

type copyOptions struct {
	target copyTarget
	filter snapshotFilter
}

func copyCommand(g *globals) *cli.Command {
	o := &copyOptions{}
	return &cli.Command{
		Name:  "copy",
		Usage: "copy snapshots to another repository",
		Description: "Copies the given snapshots (all, or those --host/--tag/--path select) from the repository (-r) to\n" +
			"the one named by --to, re-encrypted under the target's keys. Blobs the target holds are not sent\n" +
			"again, and snapshots copied before are recognised and skipped, so a nightly copy is cheap and an\n" +
			"interrupted one resumes. The target's key may be write-only; the source's must read content.",
		ArgsUsage: "[SNAPSHOT...]",
		Flags:     append(o.target.flags(), o.filter.flags()...),
		Action: func(c *cli.Context) error {
			return runCopy(c.Context, g, o, c.Args().Slice())
		},
	}
}

type copyResultJSON struct {
	Copied  []copyPairJSON `json:"copied"`
	Skipped []copyPairJSON `json:"skipped"`
	copier.Stats
}

type copyPairJSON struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

func runCopy(ctx context.Context, g *globals, o *copyOptions, args []string) error {
	if o.target.repo == "" {
		return usagef("copy needs --to (or HOARD_TO_REPOSITORY): the target repository")
	}
	if o.target.repo == g.repo {
		return usagef("copy: --to names the source repository itself")
	}
	ctx, src, srcDone, err := g.openRepo(ctx, openOptions{lock: true, index: true, read: true})
	if err != nil {
		return err
	}
	defer srcDone()
	tg := o.target.globals(g)
	ctx, dst, dstDone, err := tg.openRepo(ctx, openOptions{lock: true, index: true})
	if err != nil {
		return fmt.Errorf("target %s: %w", o.target.repo, err)
	}
	defer dstDone()

	all, probs, err := snapshot.List(ctx, src)
	if err != nil {
		return err
	}
	for _, p := range probs {
		g.log.Warn("snapshot file unreadable; not copied", "file", "snapshots/"+p.ID.String(), "error", p.Err)
	}
	var sel []*snapshot.Snapshot
	if len(args) > 0 {
		seen := map[id.ID]bool{}
		for _, a := range args {
			sn, err := findSnapshot(ctx, src, a)
			if err != nil {
				return err
			}
			if !seen[sn.ID] {
				seen[sn.ID] = true
				sel = append(sel, sn)
			}
		}
	} else if sel, err = o.filter.apply(all); err != nil {
		return err
	}
	byID := map[id.ID]*snapshot.Snapshot{}
	for _, sn := range all {
		byID[sn.ID] = sn
	}
	dstSns, dprobs, err := snapshot.List(ctx, dst)
	if err != nil {
		return fmt.Errorf("target %s: %w", o.target.repo, err)
	}
	for _, p := range dprobs {
		g.log.Warn("target snapshot file unreadable", "file", "snapshots/"+p.ID.String(), "error", p.Err)
	}
	copied := copier.Copied(dstSns)
	cp := copier.New(src, dst, copier.Options{})
	res := copyResultJSON{Copied: []copyPairJSON{}, Skipped: []copyPairJSON{}}
	for _, sn := range sel {
		if have, ok := copied[copier.OriginOf(sn)]; ok {
			res.Skipped = append(res.Skipped, copyPairJSON{Source: sn.ID.String(), Target: have.ID.String()})
			if !g.json {
				fmt.Fprintf(g.stdout, "snapshot %s is in the target already as %s\n", sn.ID.Str(), have.ID.Str())
			}
			continue
		}
		var parent *id.ID
		if sn.Parent != nil {
			if p, ok := byID[*sn.Parent]; ok {
				if tp, ok := copied[copier.OriginOf(p)]; ok {
					pid := tp.ID
					parent = &pid
				}
			}
		}
		nsn, err := cp.Copy(ctx, sn, parent)
		if err != nil {
			return err
		}
		copied[copier.OriginOf(sn)] = nsn
		res.Copied = append(res.Copied, copyPairJSON{Source: sn.ID.String(), Target: nsn.ID.String()})
		if !g.json {
			fmt.Fprintf(g.stdout, "copied snapshot %s of %s to %s\n", sn.ID.Str(), sn.Host, nsn.ID.Str())
		}
	}
	res.Stats = cp.Stats()
	res.Stats.Skipped = len(res.Skipped)
	if g.json {
		return printJSON(g.stdout, res)
	}
	fmt.Fprintf(g.stdout, "%s copied, %d already there; %d new blobs, %s added (%s stored)\n",
		plural(res.Snapshots, "snapshot", "snapshots"), res.Stats.Skipped, res.BlobsNew,
		formatBytes(res.BytesNew), formatBytes(res.BytesStored))
	return nil
}
