package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/lock"
)

// password returns the passphrase from the file, the command, or a prompt.
func (g *globals) password(ctx context.Context, confirm bool) ([]byte, error) {
	switch {
	case g.passwordFile != "":
		b, err := os.ReadFile(g.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("password file: %w", err)
		}
		return firstLine(b), nil
	case g.passwordCommand != "":
		cmd := exec.CommandContext(ctx, "sh", "-c", g.passwordCommand)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("password command: %v: %s", err, strings.TrimSpace(stderr.String()))
		}
		return firstLine(out), nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		return nil, usagef("no passphrase: set HOARD_PASSWORD_FILE or HOARD_PASSWORD_COMMAND, or run on a terminal")
	}
	defer tty.Close()
	fmt.Fprint(tty, "enter passphrase for repository: ")
	p, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return nil, err
	}
	if confirm {
		fmt.Fprint(tty, "enter passphrase again: ")
		p2, err := term.ReadPassword(int(tty.Fd()))
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
}

// openRepo opens the repository, loads the index and takes a lock as asked.
// The returned context is cancelled if the lock is lost; done releases
// everything.
func (g *globals) openRepo(ctx context.Context, o openOptions) (context.Context, *repo.Repository, func(), error) {
	if g.repo == "" {
		return nil, nil, nil, usagef("no repository given: use -r/--repo or HOARD_REPOSITORY")
	}
	be, err := registry().Open(ctx, g.repo)
	if err != nil {
		return nil, nil, nil, err
	}
	pw, err := g.password(ctx, false)
	if err != nil {
		be.Close()
		return nil, nil, nil, err
	}
	r, err := repo.Open(ctx, be, repo.Options{Passphrase: pw, Logger: g.log})
	if err != nil {
		be.Close()
		return nil, nil, nil, err
	}
	if o.read && !r.CanRead() {
		r.Close()
		return nil, nil, nil, repo.ErrWriteOnly
	}
	unlock := func() {}
	if o.lock {
		var lctx context.Context
		lctx, unlock, err = lock.Lock(ctx, r, o.exclusive, time.Now)
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
	return ctx, r, func() { unlock(); r.Close() }, nil
}
