package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/chunk"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
)

type initOptions struct {
	s2k          string
	recipients   cli.StringSlice
	writeOnlyKey bool
	chunkProfile string
}

func initCommand(g *globals) *cli.Command {
	o := &initOptions{}
	return &cli.Command{
		Name:  "init",
		Usage: "create a new repository",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "chunk-profile", Value: "dump", Destination: &o.chunkProfile,
				Usage: "chunk sizes: dump (about 128 KiB: stores a third of what 1 MiB chunks store of daily database dumps) or large (about 1 MiB, as restic: fewer blobs for repositories of many large files); docs/databases.md"},
			&cli.StringFlag{Name: "s2k", Value: "argon2", Destination: &o.s2k,
				Usage: "passphrase stretching of the key file: argon2 (strong; gpg 2.2 cannot open it) or iterated (gpg-compatible)"},
			&cli.StringSliceFlag{Name: "gpg-recipient", Destination: &o.recipients,
				Usage: "encrypt the full key file to the GPG public key(s) in this file (as gpg --export writes it; repeatable) instead of a passphrase"},
			&cli.BoolFlag{Name: "write-only-key", Destination: &o.writeOnlyKey,
				Usage: "with --gpg-recipient: also add a write-only key file protected by the repository passphrase, for this host's backups"},
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
	chunkParams, err := chunk.Profile(o.chunkProfile)
	if err != nil {
		return usagef("--chunk-profile: %v", err)
	}
	if o.writeOnlyKey && len(o.recipients.Value()) == 0 {
		return usagef("--write-only-key needs --gpg-recipient: the full key goes to the GPG key, the write-only key to the passphrase")
	}
	// Check the keys before anything is written.
	recipients, err := readRecipientFiles(o.recipients.Value(), time.Now())
	if err != nil {
		return err
	}
	var pw []byte
	if len(recipients) == 0 || o.writeOnlyKey {
		if pw, err = g.password(ctx, true); err != nil {
			return err
		}
	}
	be, err := registry(g.log).Open(ctx, g.repo)
	if err != nil {
		return err
	}
	defer be.Close()
	host, username := hostUser()
	iopts := repo.InitOptions{Options: repo.Options{Logger: g.log}, S2K: crypto.S2K(o.s2k), Recipients: recipients, Host: host, Username: username}
	// Tests that measure deduplication need the same cut points every run
	// (only in a test build: a random polynomial hides content sizes).
	if p, ok, err := testPolynomial(); err != nil {
		return usagef("%v", err)
	} else if ok {
		iopts.Polynomial = p
	}
	iopts.Chunker = &chunkParams
	if len(recipients) == 0 {
		iopts.Passphrase = pw
	}
	r, err := repo.Init(ctx, be, iopts)
	if err != nil {
		return err
	}
	if err := g.pinDataKey(r, knownKey{}, false); err != nil {
		return fmt.Errorf("repository %s created, but: %w", r.Config().ID[:10], err)
	}
	out := map[string]any{"id": r.Config().ID, "location": be.Location(), "key": r.KeyName(), "data_key_fingerprint": r.DataKeyFingerprint()}
	var woName string
	if o.writeOnlyKey {
		woName, err = r.AddKey(ctx, repo.AddKeyOptions{Kind: crypto.WriteOnly, Passphrase: pw, S2K: crypto.S2K(o.s2k), Host: host, Username: username})
		if err != nil {
			return fmt.Errorf("repository %s created, but its write-only key was not: %w", r.Config().ID[:10], err)
		}
		out["write_only_key"] = woName
	}
	if g.json {
		if len(recipients) > 0 {
			var fprs []string
			for _, rc := range recipients {
				fprs = append(fprs, rc.Fingerprint())
			}
			out["recipients"] = fprs
		}
		return printJSON(g.stdout, out)
	}
	fmt.Fprintf(g.stdout, "created repository %s at %s\n", r.Config().ID[:10], be.Location())
	fmt.Fprintf(g.stdout, "data key fingerprint: %s\n", r.DataKeyFingerprint())
	fmt.Fprintln(g.stdout, "(pinned on this machine; on another machine, give it the first time with --data-key-fingerprint or HOARD_DATA_KEY_FINGERPRINT)")
	if len(recipients) == 0 {
		fmt.Fprintln(g.stdout, "Keep the passphrase safe: without it the repository cannot be opened.")
		return nil
	}
	fmt.Fprintf(g.stdout, "full key %s is encrypted to:\n", r.KeyName()[:8])
	for _, rc := range recipients {
		fmt.Fprintf(g.stdout, "  %s\n", rc)
	}
	if woName != "" {
		fmt.Fprintf(g.stdout, "write-only key %s is protected by the passphrase: this host can back up but not read the backups.\n", woName[:8])
	}
	fmt.Fprintln(g.stdout, "Keep the GPG secret key safe: without it the backups cannot be restored.")
	return nil
}

// readRecipientFiles reads and checks the GPG public keys in the files.
func readRecipientFiles(paths []string, now time.Time) ([]*crypto.Recipient, error) {
	var out []*crypto.Recipient
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("--gpg-recipient: %w", err)
		}
		rs, err := crypto.ReadRecipients(data, now)
		if err != nil {
			return nil, fmt.Errorf("--gpg-recipient %s: %w", p, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// hostUser returns the host and user name recorded in key files.
func hostUser() (string, string) {
	host, _ := os.Hostname()
	username := ""
	if u, err := user.Current(); err == nil {
		username = u.Username
	}
	return host, username
}
