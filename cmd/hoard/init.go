package main

import (
	"context"
	"fmt"
	"os"
	"os/user"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
)

type initOptions struct {
	s2k string
}

func initCommand(g *globals) *cli.Command {
	o := &initOptions{}
	return &cli.Command{
		Name:  "init",
		Usage: "create a new repository",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "s2k", Value: "argon2", Destination: &o.s2k,
				Usage: "passphrase stretching of the key file: argon2 (strong; gpg 2.2 cannot open it) or iterated (gpg-compatible)"},
		},
		Action: func(c *cli.Context) error { return runInit(c.Context, g, o) },
	}
}

func runInit(ctx context.Context, g *globals, o *initOptions) error {
	if g.repo == "" {
		return usagef("no repository given: use -r/--repo or HOARD_REPOSITORY")
	}
	if o.s2k != string(crypto.S2KArgon2) && o.s2k != string(crypto.S2KIterated) {
		return usagef("--s2k must be argon2 or iterated, not %q", o.s2k)
	}
	be, err := registry().Open(ctx, g.repo)
	if err != nil {
		return err
	}
	defer be.Close()
	pw, err := g.password(ctx, true)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	username := ""
	if u, err := user.Current(); err == nil {
		username = u.Username
	}
	r, err := repo.Init(ctx, be, repo.InitOptions{Options: repo.Options{Passphrase: pw, Logger: g.log},
		S2K: crypto.S2K(o.s2k), Host: host, Username: username})
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(g.stdout, map[string]string{"id": r.Config().ID, "location": be.Location(), "key": r.KeyName()})
	}
	fmt.Fprintf(g.stdout, "created repository %s at %s\n", r.Config().ID[:10], be.Location())
	fmt.Fprintln(g.stdout, "Keep the passphrase safe: without it the repository cannot be opened.")
	return nil
}
