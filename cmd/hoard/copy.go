package main

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/config"
	"github.com/hoard-backup/hoard/repo"
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
	target     copyTarget
	targetName string // --target: a [copy.NAME] of the config file
	filter     snapshotFilter
}

// fromConfig returns how to open a [copy.NAME] target.
func fromConfig(t *config.CopyTarget) copyTarget {
	return copyTarget{repo: t.Location, passwordFile: t.PasswordFile, passwordCommand: t.PasswordCommand,
		gpgSecretKey: t.GPGSecretKey, gpgPassphraseFile: t.GPGPassphraseFile, gpgAgent: t.GPGAgent}
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
		Flags: append(append(o.target.flags(), o.filter.flags()...),
			&cli.StringFlag{Name: "target", Destination: &o.targetName, Usage: "copy to the config file's [copy.NAME] instead of --to"}),
		Action: func(c *cli.Context) error {
			if o.targetName != "" {
				if o.target.repo != "" {
					return usagef("give --to or --target, not both")
				}
				cfg, err := g.needConfig()
				if err != nil {
					return err
				}
				t, ok := cfg.Copies[o.targetName]
				if !ok {
					return usagef("%s has no [copy.%s]", cfg.File, o.targetName)
				}
				o.target = fromConfig(t)
			}
			res, err := runCopy(c.Context, g, o, c.Args().Slice())
			if err != nil {
				return err
			}
			return printCopy(g, res)
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

// runCopy copies the selected snapshots and returns what it did; it prints
// a line per snapshot unless --json.
func runCopy(ctx context.Context, g *globals, o *copyOptions, args []string) (*copyResultJSON, error) {
	if o.target.repo == "" {
		return nil, usagef("copy needs --to (or HOARD_TO_REPOSITORY, or --target NAME of the config file): the target repository")
	}
	if o.target.repo == g.repo {
		return nil, usagef("copy: the target is the source repository itself")
	}
	ctx, src, srcDone, err := g.openRepo(ctx, openOptions{lock: true, index: true, read: true})
	if err != nil {
		return nil, err
	}
	defer srcDone()
	tg := o.target.globals(g)
	ctx, dst, dstDone, err := tg.openRepo(ctx, openOptions{lock: true, index: true})
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", o.target.repo, err)
	}
	defer dstDone()
	return copySnapshots(ctx, g, o, src, dst, args)
}

func copySnapshots(ctx context.Context, g *globals, o *copyOptions, src, dst *repo.Repository, args []string) (*copyResultJSON, error) {
	var err error
	all, probs, err := snapshot.List(ctx, src)
	if err != nil {
		return nil, err
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
				return nil, err
			}
			if !seen[sn.ID] {
				seen[sn.ID] = true
				sel = append(sel, sn)
			}
		}
	} else if sel, err = o.filter.apply(all); err != nil {
		return nil, err
	}
	byID := map[id.ID]*snapshot.Snapshot{}
	for _, sn := range all {
		byID[sn.ID] = sn
	}
	dstSns, dprobs, err := snapshot.List(ctx, dst)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", o.target.repo, err)
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
			return nil, err
		}
		copied[copier.OriginOf(sn)] = nsn
		res.Copied = append(res.Copied, copyPairJSON{Source: sn.ID.String(), Target: nsn.ID.String()})
		if !g.json {
			fmt.Fprintf(g.stdout, "copied snapshot %s of %s to %s\n", sn.ID.Str(), sn.Host, nsn.ID.Str())
		}
	}
	res.Stats = cp.Stats()
	res.Stats.Skipped = len(res.Skipped)
	return &res, nil
}

func printCopy(g *globals, res *copyResultJSON) error {
	if g.json {
		return printJSON(g.stdout, res)
	}
	fmt.Fprintf(g.stdout, "%s copied, %d already there; %d new blobs, %s added (%s stored)\n",
		countOf(res.Snapshots, "snapshot", "snapshots"), res.Stats.Skipped, res.BlobsNew,
		formatBytes(res.BytesNew), formatBytes(res.BytesStored))
	return nil
}

// copyAfterRun copies to every [copy.NAME] with after_run (the default),
// for hoard run. A write-only key cannot read what it would copy: that is
// a mistake of the config file, reported as such.
func copyAfterRun(ctx context.Context, g *globals, cfg *config.Config) (map[string]any, error) {
	out := map[string]any{}
	for _, name := range sortedCopyNames(cfg) {
		t := cfg.Copies[name]
		if !t.AfterRun {
			continue
		}
		if !g.json {
			fmt.Fprintf(g.stdout, "copy to [copy.%s] %s:\n", name, t.Location)
		}
		res, err := runCopy(ctx, g, &copyOptions{target: fromConfig(t)}, nil)
		if errors.Is(err, repo.ErrWriteOnly) {
			err = fmt.Errorf("%w: copying needs a key that reads content; run hoard copy --target %s where the full key is, or set after_run = false in [copy.%s]", err, name, name)
		}
		if err != nil {
			return out, fmt.Errorf("copy to [copy.%s]: %w", name, err)
		}
		out[name] = res
		if !g.json {
			if err := printCopy(g, res); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

func sortedCopyNames(cfg *config.Config) []string {
	var names []string
	for n := range cfg.Copies {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
