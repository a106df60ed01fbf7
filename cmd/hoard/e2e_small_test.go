package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2ESmallThings: the smaller surprises of a new user.
func TestE2ESmallThings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()

	// --help shows --gpg-agent as a flag without a value.
	if out := e.mustRun("--help"); strings.Contains(out, "--gpg-agent gpg") || !strings.Contains(out, "--gpg-agent ") {
		t.Errorf("--help renders --gpg-agent as taking a value:\n%s", out)
	}

	// ls -l prints modes as ls does.
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("run.sh", filepath.Join(src, "ln")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(src, 0o750); err != nil {
		t.Fatal(err)
	}
	e.mustBackup(nil, src)
	out := e.mustRun("ls", "-l", "latest")
	for _, want := range []string{"drwxr-x--- ", "-rwxr-xr-x ", "lrwxrwxrwx "} {
		if !strings.Contains(out, "\n"+want) && !strings.HasPrefix(out, want) {
			t.Errorf("ls -l lacks %q:\n%s", want, out)
		}
	}

	// Plurals.
	if out := e.mustRun("snapshots"); !strings.Contains(out, "\n1 snapshot\n") {
		t.Errorf("snapshots:\n%s", out)
	}
	wrong := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrong, []byte("not it\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := e.on(t)
	w.pwFile = wrong
	if stderr := w.mustFail(exitWrongKey, "snapshots"); !strings.Contains(stderr, "tried 1 key file)") {
		t.Errorf("wrong passphrase: %s", stderr)
	}

	// An empty passphrase file says so.
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.pwFile = empty
	if stderr := w.mustFail(exitUsage, "snapshots"); !strings.Contains(stderr, "the passphrase file "+empty+" is empty") {
		t.Errorf("empty passphrase file: %s", stderr)
	}

	// A missing config file: one "config:" prefix.
	c := e.on(t)
	c.extraEnv = append(c.extraEnv, "HOARD_CONFIG="+filepath.Join(dir, "missing.toml"))
	if stderr := c.mustFail(exitUsage, "snapshots"); strings.Contains(stderr, "config: config:") || !strings.Contains(stderr, "missing.toml") {
		t.Errorf("missing config: %s", stderr)
	}

	// An unknown scheme is a usage mistake.
	if stderr := e.mustFail(exitUsage, "-r", "s4://bucket/x", "snapshots"); !strings.Contains(stderr, `unknown scheme "s4"`) || !strings.Contains(stderr, "s3://") {
		t.Errorf("unknown scheme: %s", stderr)
	}

	// A stream equal to its parent's is unmodified, a different one changed.
	for i, c := range []struct {
		body                     string
		new, changed, unmodified uint64
	}{{"dump one\n", 1, 0, 0}, {"dump one\n", 0, 0, 1}, {"dump two\n", 0, 1, 0}} {
		res := e.mustBackup(strings.NewReader(c.body), "--stdin", "--stdin-filename", "db.sql")
		s := res.Summary
		if s.FilesNew != c.new || s.FilesChanged != c.changed || s.FilesUnmodified != c.unmodified {
			t.Errorf("stream backup %d: new %d changed %d unmodified %d, want %d %d %d", i, s.FilesNew, s.FilesChanged, s.FilesUnmodified,
				c.new, c.changed, c.unmodified)
		}
	}
}

// TestE2EGPGRecipientSecretKey: --gpg-recipient refuses a secret key file.
func TestE2EGPGRecipientSecretKey(t *testing.T) {
	t.Parallel()
	h := gpgNewHome(t)
	fpr := h.genKey(t, "Sec <sec@example.com>", "future-default", "never", "pw")
	e := newEnvNoInit(t)
	e.extraEnv = []string{"GNUPGHOME=" + h.dir}
	gpgExpectFail(t, e, exitFailure, []string{"is a secret key", "must be a public key", "gpg --armor --export " + fpr},
		"init", "--gpg-recipient", h.exportSecret(t, fpr, "pw"))
	if _, err := os.Stat(filepath.Join(e.repo, "config")); err == nil {
		t.Error("init with a secret key as recipient made a repository")
	}
}
