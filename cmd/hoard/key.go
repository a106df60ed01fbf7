package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
)

type keyAddOptions struct {
	writeOnly       bool
	recipients      cli.StringSlice
	s2k             string
	newPasswordFile string
}

func keyCommand(g *globals) *cli.Command {
	add := &keyAddOptions{}
	var force bool
	var passwdS2K, passwdFile string
	newPassFlag := func(dest *string) cli.Flag {
		return &cli.StringFlag{Name: "new-password-file", EnvVars: []string{"HOARD_NEW_PASSWORD_FILE"}, Destination: dest,
			Usage: "read the new key file's passphrase from this file (else a prompt)"}
	}
	s2kFlag := func(dest *string) cli.Flag {
		return &cli.StringFlag{Name: "s2k", Value: "argon2", Destination: dest,
			Usage: "passphrase stretching: argon2 (strong; gpg 2.2 cannot open it) or iterated (gpg-compatible)"}
	}
	return &cli.Command{
		Name:  "key",
		Usage: "list, add, remove key files, or change the passphrase",
		Subcommands: []*cli.Command{
			{
				Name:   "list",
				Usage:  "list key files: kind, protection, data key (trusted, signed), creation; * marks the one in use",
				Action: func(c *cli.Context) error { return runKeyList(c.Context, g) },
			},
			{
				Name:  "add",
				Usage: "add a key file protected by a new passphrase or encrypted to GPG public keys",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "write-only", Destination: &add.writeOnly,
						Usage: "the key can back up, list and check structure, but not read the backups' content"},
					&cli.StringSliceFlag{Name: "gpg-recipient", Destination: &add.recipients,
						Usage: "encrypt the key file to the GPG public key(s) in this file (as gpg --export writes it; repeatable)"},
					s2kFlag(&add.s2k), newPassFlag(&add.newPasswordFile),
				},
				Action: func(c *cli.Context) error {
					if c.NArg() != 0 {
						return usagef("key add takes no arguments")
					}
					return runKeyAdd(c.Context, g, add)
				},
			},
			{
				Name:      "remove",
				Usage:     "remove a key file (not the last one that can read content)",
				ArgsUsage: "ID",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Destination: &force,
					Usage: "remove the key file even if it is the one in use"}},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("key remove takes one key ID (or a unique prefix)")
					}
					return runKeyRemove(c.Context, g, c.Args().First(), force)
				},
			},
			{
				Name:  "passwd",
				Usage: "replace the passphrase key file in use with one under a new passphrase",
				Flags: []cli.Flag{s2kFlag(&passwdS2K), newPassFlag(&passwdFile)},
				Action: func(c *cli.Context) error {
					return runKeyPasswd(c.Context, g, passwdS2K, passwdFile)
				},
			},
		},
	}
}

func checkS2KFlag(s string) error {
	if s != string(crypto.S2KArgon2) && s != string(crypto.S2KIterated) {
		return usagef("--s2k must be argon2 or iterated, not %q", s)
	}
	return nil
}

// newPassword reads the passphrase of a new key file.
func newPassword(ctx context.Context, file string) ([]byte, error) {
	pw, err := readSecret(ctx, secretSource{file: file, what: "new passphrase", hint: "set HOARD_NEW_PASSWORD_FILE"}, true)
	if err == nil && len(pw) == 0 {
		err = usagef("the new passphrase is empty")
	}
	return pw, err
}

func runKeyAdd(ctx context.Context, g *globals, o *keyAddOptions) error {
	if err := checkS2KFlag(o.s2k); err != nil {
		return err
	}
	recipients, err := readRecipientFiles(o.recipients.Value(), time.Now())
	if err != nil {
		return err
	}
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true})
	if err != nil {
		return err
	}
	defer done()
	kind := crypto.Full
	if o.writeOnly {
		kind = crypto.WriteOnly
	}
	host, username := hostUser()
	ko := repo.AddKeyOptions{Kind: kind, Recipients: recipients, S2K: crypto.S2K(o.s2k), Host: host, Username: username}
	if len(recipients) == 0 {
		if ko.Passphrase, err = newPassword(ctx, o.newPasswordFile); err != nil {
			return err
		}
	}
	name, err := r.AddKey(ctx, ko)
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(g.stdout, map[string]string{"id": name, "kind": string(kind)})
	}
	fmt.Fprintf(g.stdout, "added %s key %s", kind, name[:8])
	if len(recipients) > 0 {
		fmt.Fprint(g.stdout, ", encrypted to:\n")
		for _, rc := range recipients {
			fmt.Fprintf(g.stdout, "  %s\n", rc)
		}
	} else {
		fmt.Fprintf(g.stdout, ", protected by a passphrase (%s S2K)\n", o.s2k)
	}
	return nil
}

// findKey resolves a key ID prefix among the key files.
func findKey(names []string, ref string) (string, error) {
	var found []string
	for _, n := range names {
		if strings.HasPrefix(n, ref) {
			found = append(found, n)
		}
	}
	switch {
	case ref == "":
		return "", usagef("a key ID is required")
	case len(found) == 0:
		return "", fmt.Errorf("%w: %q", repo.ErrKeyNotFound, ref)
	case len(found) > 1:
		return "", usagef("key ID prefix %q is ambiguous: %d key files match", ref, len(found))
	}
	return found[0], nil
}

func runKeyRemove(ctx context.Context, g *globals, ref string, force bool) error {
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, exclusive: true, skipUntrusted: true})
	if err != nil {
		return err
	}
	defer done()
	names, err := r.KeyNames(ctx)
	if err != nil {
		return err
	}
	name, err := findKey(names, ref)
	if err != nil {
		return err
	}
	if err := r.RemoveKey(ctx, name, force); err != nil {
		return err
	}
	if g.json {
		return printJSON(g.stdout, map[string]string{"removed": name})
	}
	fmt.Fprintf(g.stdout, "removed key %s\n", shortName(name))
	return nil
}

func runKeyPasswd(ctx context.Context, g *globals, s2k, file string) error {
	if err := checkS2KFlag(s2k); err != nil {
		return err
	}
	ctx, r, done, err := g.openRepo(ctx, openOptions{lock: true, exclusive: true})
	if err != nil {
		return err
	}
	defer done()
	old := r.KeyName()
	pw, err := newPassword(ctx, file)
	if err != nil {
		return err
	}
	host, username := hostUser()
	name, err := r.ChangePassphrase(ctx, pw, crypto.S2K(s2k), host, username)
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(g.stdout, map[string]string{"id": name, "removed": old})
	}
	fmt.Fprintf(g.stdout, "changed the passphrase: key %s replaces key %s\n", name[:8], old[:8])
	return nil
}
