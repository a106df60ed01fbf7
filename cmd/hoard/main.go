// Command hoard is a deduplicating, encrypted backup archiver for databases
// and media trees. This package parses flags and calls the libraries.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/config"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/lock"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit codes; README.md documents them.
const (
	exitOK           = 0
	exitFailure      = 1
	exitUsage        = 2
	exitIncomplete   = 3
	exitNoRepository = 10
	exitLocked       = 11
	exitWrongKey     = 12
	exitVersion      = 13
	exitDamaged      = 14
	exitWriteOnly    = 15
	exitSource       = 16
	exitRefused      = 17
	exitUntrusted    = 18
	exitDrill        = 19
	exitSpotCorrupt  = 20
	exitInterrupted  = 130
)

// usageError marks bad command lines.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// sourceError marks a failed backup source (a command that failed).
type sourceError struct{ err error }

func (e sourceError) Error() string { return e.err.Error() }
func (e sourceError) Unwrap() error { return e.err }

// incompleteError marks a run that finished but skipped some files.
type incompleteError struct{ msg string }

func (e incompleteError) Error() string { return e.msg }

// damagedError marks a check that found damage.
type damagedError struct{ msg string }

func (e damagedError) Error() string { return e.msg }

func exitCode(err error) int {
	var (
		ue  usageError
		se  sourceError
		ie  incompleteError
		de  damagedError
		spe spotError
		re  *restorer.Errors
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.Is(err, snapshot.ErrBadRef), errors.Is(err, backends.ErrUnknownScheme):
		return exitUsage
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &se):
		return exitSource
	case errors.As(err, new(refusedError)):
		return exitRefused
	case corruptSpot(err):
		return exitSpotCorrupt // before a failed drill: silent corruption wins
	case errors.As(err, new(drillError)), errors.As(err, &spe):
		return exitDrill
	case errors.Is(err, repo.ErrUntrusted):
		return exitUntrusted
	case errors.Is(err, repo.ErrNoRepository):
		return exitNoRepository
	case errors.Is(err, lock.ErrLocked):
		return exitLocked
	case errors.Is(err, repo.ErrWrongPassword):
		return exitWrongKey
	case errors.Is(err, repo.ErrVersion):
		return exitVersion
	case errors.Is(err, repo.ErrWriteOnly):
		return exitWriteOnly
	case errors.As(err, &de), errors.Is(err, repo.ErrInvalidData), errors.Is(err, repo.ErrBlobNotFound),
		errors.Is(err, snapshot.ErrInvalidTree), errors.Is(err, crypto.ErrKeyFileDamaged):
		return exitDamaged
	case errors.As(err, &re):
		for _, f := range re.Failures {
			if errors.Is(f.Err, repo.ErrInvalidData) || errors.Is(f.Err, repo.ErrBlobNotFound) || errors.Is(f.Err, snapshot.ErrInvalidTree) {
				return exitDamaged
			}
		}
		return exitIncomplete
	case errors.As(err, &ie):
		return exitIncomplete
	}
	return exitFailure
}

func main() {
	// Most of hoard's heap is large pointer-free buffers (chunks, packs),
	// which the collector scans for free: a low GOGC keeps peak memory near
	// the live set at little CPU cost. GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
	ctx, stop := interruptContext(os.Stderr)
	defer stop()
	app := newApp(os.Stdin, os.Stdout, os.Stderr)
	stopProfile := startProfile()
	err := app.RunContext(ctx, reorderArgs(app, os.Args))
	stopProfile()
	code := exitCode(err)
	if err != nil && (ctx.Err() != nil || code == exitInterrupted) {
		// Stopped by a signal: whatever failed on the way out (a killed
		// dump tool, a cancelled upload) is a consequence, not a cause.
		// Say it once.
		fmt.Fprintln(os.Stderr, "hoard: interrupted")
		code = exitInterrupted
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "hoard: "+err.Error())
	}
	os.Exit(code)
}

// globals are the options every command shares.
type globals struct {
	repo            string
	passwordFile    string
	passwordCommand string
	// Unlocking with GPG keys instead of the passphrase.
	gpgSecretKey      string
	gpgPassphraseFile string
	gpgAgent          bool
	configFile        string         // --config, HOARD_CONFIG
	cfg               *config.Config // the config file, if any (cfgfile.go)
	json              bool
	stdin             io.Reader
	stdout, stderr    io.Writer
	status            *statusLine // stderr, when it shows progress (progress.go)
	log               *slog.Logger
	logLevel          slog.Level
	monitorOpts       monitorOptions // --metrics-file, --ping-url, --on-failure (monitor.go)
	facts             *runFacts      // what a monitored command learnt, for its report

	// dataKeyFingerprint is the data key the repository must have
	// (--data-key-fingerprint), checked instead of the pinned one.
	dataKeyFingerprint string
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	app := &cli.App{
		Name:      "hoard",
		Usage:     "deduplicating, encrypted backups of databases and media trees",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "repo", Aliases: []string{"r"}, EnvVars: []string{"HOARD_REPOSITORY"}, Destination: &g.repo,
				Usage: "repository location: a local path, s3://, sftp://, ftp://, ftps:// or dropbox:// (docs/backends.md)"},
			&cli.StringFlag{Name: "password-file", EnvVars: []string{"HOARD_PASSWORD_FILE"}, Destination: &g.passwordFile,
				Usage: "read the passphrase from this file"},
			&cli.StringFlag{Name: "password-command", EnvVars: []string{"HOARD_PASSWORD_COMMAND"}, Destination: &g.passwordCommand,
				Usage: "run this shell command and read the passphrase from its output"},
			&cli.StringFlag{Name: "gpg-secret-key", EnvVars: []string{"HOARD_GPG_SECRET_KEY"}, Destination: &g.gpgSecretKey,
				Usage: "open key files encrypted to this GPG secret key (a file as gpg --export-secret-keys writes it)"},
			&cli.StringFlag{Name: "gpg-passphrase-file", EnvVars: []string{"HOARD_GPG_PASSPHRASE_FILE"}, Destination: &g.gpgPassphraseFile,
				Usage: "read the passphrase of the --gpg-secret-key from this file (else a prompt)"},
			&cli.BoolFlag{Name: "gpg-agent", EnvVars: []string{"HOARD_GPG_AGENT"}, Destination: &g.gpgAgent,
				Usage: "open key files with gpg --decrypt and its agent (smartcards, keys held by gpg-agent; uses GNUPGHOME)"},
			&cli.StringFlag{Name: "data-key-fingerprint", EnvVars: []string{"HOARD_DATA_KEY_FINGERPRINT"}, Destination: &g.dataKeyFingerprint,
				Usage: "trust only this data key (as init and key list print it); else the one pinned on this machine at first use (docs/gpg.md)"},
			&cli.StringFlag{Name: "config", EnvVars: []string{"HOARD_CONFIG"}, Destination: &g.configFile,
				Usage: "read this config file (default: ./hoard.toml if it exists)"},
			&cli.BoolFlag{Name: "json", Destination: &g.json, Usage: "print machine-readable JSON"},
			&cli.BoolFlag{Name: "verbose", Usage: "print more"},
		},
		Before: func(c *cli.Context) error {
			if name := c.Args().First(); name != "" && c.App.Command(name) == nil {
				return usagef("unknown command %q (see hoard --help)", name)
			}
			level := slog.LevelWarn
			if c.Bool("verbose") {
				level = slog.LevelInfo
			}
			if s := newStatusLine(stderr, g.json); s != nil {
				g.status, g.stderr = s, s
			}
			g.logLevel = level
			g.log = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
			if name := c.Args().First(); name != "" && name != "help" {
				if err := g.loadConfig(); err != nil {
					return err
				}
			}
			return nil
		},
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return usageError{err.Error()}
		},
		Commands: []*cli.Command{
			initCommand(g), backupCommand(g), snapshotsCommand(g), lsCommand(g), restoreCommand(g),
			dumpCommand(g), catCommand(g), checkCommand(g), unlockCommand(g), keyCommand(g),
			dbCommand(g), mediaCommand(g), walCommand(g), runCommand(g), forgetCommand(g), pruneCommand(g), repairCommand(g), statsCommand(g), diffCommand(g),
			findCommand(g), tagCommand(g), copyCommand(g), scheduleCommand(g), mountCommand(g), migrateCommand(g),
			completionCommand(g), manCommand(g),
		},
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {},
	}
	app.Flags = append(app.Flags, monitorFlags(&g.monitorOpts)...)
	for _, cmd := range app.Commands {
		cmd.OnUsageError = app.OnUsageError
	}
	refuseArguments(app.Commands, "hoard")
	monitorCommands(g, app.Commands, "")
	return app
}

// refuseArguments makes every command that names no arguments in its
// ArgsUsage fail with a usage error when given some, instead of ignoring
// them (`hoard check --read-data-subset 1/5 extra` must not pass silently).
func refuseArguments(cmds []*cli.Command, prefix string) {
	for _, cmd := range cmds {
		name := prefix + " " + cmd.Name
		refuseArguments(cmd.Subcommands, name)
		if len(cmd.Subcommands) > 0 && cmd.Action == nil {
			cmd.Action = func(c *cli.Context) error {
				if c.NArg() > 0 {
					return usagef("%s has no command %q (see %s --help)", name, c.Args().First(), name)
				}
				return cli.ShowSubcommandHelp(c)
			}
			continue
		}
		if cmd.ArgsUsage != "" || cmd.Action == nil {
			continue
		}
		action := cmd.Action
		cmd.Action = func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("%s takes no arguments, got %q (see %s --help)", name, c.Args().Slice(), name)
			}
			return action(c)
		}
	}
}

// findSnapshot resolves a snapshot reference with a clear error.
func findSnapshot(ctx context.Context, r *repo.Repository, ref string) (*snapshot.Snapshot, error) {
	if ref == "" {
		return nil, usagef("a snapshot ID (or a unique prefix of one, or \"latest\") is required")
	}
	return snapshot.Find(ctx, r, ref, snapshot.Filter{})
}

// corruptSpot says whether any spot check among err's (joined) errors found
// content that differs behind an unchanged size and mtime (exit 20), which
// errors.As alone would miss behind a first, other spotError or a failed
// drill of the same run.
func corruptSpot(err error) bool {
	var spe spotError
	if errors.As(err, &spe) && spe.corrupt {
		return true
	}
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		for _, x := range e.Unwrap() {
			if corruptSpot(x) {
				return true
			}
		}
	case interface{ Unwrap() error }:
		return corruptSpot(e.Unwrap())
	}
	return false
}
