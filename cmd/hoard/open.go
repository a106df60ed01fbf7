package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/local"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/lock"
)

// password returns the repository passphrase from the file, the command,
// or a prompt.
func (g *globals) password(ctx context.Context, confirm bool) ([]byte, error) {
	return readSecret(ctx, secretSource{file: g.passwordFile, command: g.passwordCommand,
		what: "passphrase for repository", hint: "set HOARD_PASSWORD_FILE or HOARD_PASSWORD_COMMAND"}, confirm)
}

// secretSource says where a passphrase comes from: a file, a command, or a
// prompt on the terminal.
type secretSource struct {
	file, command string
	what          string // "passphrase for repository"
	hint          string // how to give it without a terminal
}

func readSecret(ctx context.Context, src secretSource, confirm bool) ([]byte, error) {
	switch {
	case src.file != "":
		// The file may be a pipe (bash's <(...)) that never gets written.
		b, err := readCtx(ctx, func() ([]byte, error) { return os.ReadFile(src.file) })
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.what, err)
		}
		if p := firstLine(b); len(p) > 0 {
			return p, nil
		}
		return nil, usagef("%s: the passphrase file %s is empty", src.what, src.file)
	case src.command != "":
		cmd := exec.CommandContext(ctx, "sh", "-c", src.command)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("%s: command: %v: %s", src.what, err, strings.TrimSpace(stderr.String()))
		}
		if p := firstLine(out); len(p) > 0 {
			return p, nil
		}
		return nil, usagef("%s: the passphrase command %q printed nothing", src.what, src.command)
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			tty.Close()
		}
		return nil, usagef("no %s: %s, or run on a terminal", src.what, src.hint)
	}
	defer tty.Close()
	// A signal cancels ctx while the terminal does not echo: restore it
	// before returning, since term.ReadPassword is still waiting.
	if st, err := term.GetState(int(tty.Fd())); err == nil {
		defer func() { _ = term.Restore(int(tty.Fd()), st) }()
	}
	prompt := func() ([]byte, error) { return term.ReadPassword(int(tty.Fd())) }
	fmt.Fprintf(tty, "enter %s: ", src.what)
	p, err := readCtx(ctx, prompt)
	fmt.Fprintln(tty)
	if err != nil {
		return nil, err
	}
	if confirm {
		fmt.Fprint(tty, "enter it again: ")
		p2, err := readCtx(ctx, prompt)
		fmt.Fprintln(tty)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(p, p2) {
			return nil, usagef("passphrases do not match")
		}
	}
	return p, nil
}

// unlocker returns what opens the repository's key files: the GPG secret
// key (--gpg-secret-key), gpg and its agent (--gpg-agent), or else the
// repository passphrase.
func (g *globals) unlocker(ctx context.Context) (crypto.Unlocker, error) {
	switch {
	case g.gpgAgent && g.gpgSecretKey != "":
		return nil, usagef("--gpg-agent and --gpg-secret-key exclude each other")
	case g.gpgAgent:
		return &crypto.GPGCommand{}, nil
	case g.gpgSecretKey != "":
		data, err := os.ReadFile(g.gpgSecretKey)
		if err != nil {
			return nil, fmt.Errorf("--gpg-secret-key: %w", err)
		}
		var sk *crypto.SecretKeys
		sk, err = crypto.ReadSecretKeys(data, func() ([]byte, error) {
			return readSecret(ctx, secretSource{file: g.gpgPassphraseFile, what: "passphrase for " + sk.String(),
				hint: "set HOARD_GPG_PASSPHRASE_FILE"}, false)
		})
		if err != nil {
			return nil, fmt.Errorf("--gpg-secret-key %s: %w", g.gpgSecretKey, err)
		}
		return sk, nil
	}
	pw, err := g.password(ctx, false)
	if err != nil {
		return nil, err
	}
	return crypto.Passphrase(pw), nil
}

func firstLine(b []byte) []byte {
	s := bufio.NewScanner(bytes.NewReader(b))
	s.Buffer(make([]byte, 0, 4096), 1<<20)
	if s.Scan() {
		return append([]byte(nil), s.Bytes()...)
	}
	return nil
}

// openOptions say what a command needs of the repository.
type openOptions struct {
	lock      bool // take a lock for the command's duration
	exclusive bool
	index     bool // load the index
	read      bool // needs a key that can read content
	// skipUntrusted passes over refused key files instead of failing (key
	// list shows them, key remove removes them).
	skipUntrusted bool
}

// openRepo opens the repository, loads the index and takes a lock as asked.
// The returned context is cancelled if the lock is lost; done releases
// everything.
func (g *globals) openRepo(ctx context.Context, o openOptions) (context.Context, *repo.Repository, func(), error) {
	if g.repo == "" {
		return nil, nil, nil, usagef("no repository given: use -r/--repo or HOARD_REPOSITORY")
	}
	be, err := registry(g.log).Open(ctx, g.repo)
	if err != nil {
		return nil, nil, nil, err
	}
	u, err := g.unlocker(ctx)
	if err != nil {
		be.Close()
		return nil, nil, nil, err
	}
	var pin knownKey
	var isPinned bool
	r, err := repo.Open(ctx, be, repo.Options{Unlocker: u, Logger: g.log, Uploads: uploads(be),
		Pinned: g.pinned(&pin, &isPinned), SkipUntrusted: o.skipUntrusted})
	if err != nil {
		be.Close()
		return nil, nil, nil, err
	}
	if err := g.pinDataKey(r, pin, isPinned); err != nil {
		r.Close()
		return nil, nil, nil, err
	}
	if o.read && !r.CanRead() {
		r.Close()
		return nil, nil, nil, repo.ErrWriteOnly
	}
	unlock := func() {}
	if o.lock {
		var lctx context.Context
		_, username := hostUser()
		lctx, unlock, err = lock.LockWith(ctx, r, o.exclusive, lock.Options{Now: time.Now, Username: username})
		if err != nil {
			r.Close()
			return nil, nil, nil, err
		}
		ctx = lctx
	}
	if o.index {
		probs, err := r.LoadIndex(ctx)
		if err != nil {
			unlock()
			r.Close()
			return nil, nil, nil, err
		}
		for _, p := range probs {
			g.log.Warn("index file unreadable; its packs are ignored (run hoard check)", "file", "index/"+p.Name.String(), "error", p.Err)
		}
	}
	return ctx, r, func() { g.noteRepository(ctx, r); unlock(); r.Close() }, nil
}

// uploads is how many packs are stored at once: HOARD_CONNECTIONS, else the
// backend's own connection count for remote backends (latency hides behind
// concurrency), else 1 (a local disk gains nothing from more, and each
// upload holds a pack in memory).
func uploads(be backends.Backend) int {
	if n, err := strconv.Atoi(os.Getenv("HOARD_CONNECTIONS")); err == nil && n > 0 {
		return n
	}
	if _, ok := backends.As[*local.Backend](be); ok {
		return 1
	}
	return be.Properties().Connections
}
