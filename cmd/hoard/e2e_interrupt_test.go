package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// interrupt starts cmd, calls ready until it returns true (or 60 s pass),
// sends SIGINT, and returns standard output, standard error and the exit
// code.
func interrupt(t *testing.T, cmd *exec.Cmd, ready func() bool) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !ready() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// wantInterrupted: exit 130, "interrupted" said once and nothing else on
// standard error, and no summary on standard output.
func wantInterrupted(t *testing.T, what, stdout, stderr string, code int) {
	t.Helper()
	if code != exitInterrupted || stderr != "hoard: interrupted\n" || strings.Contains(stdout, "restored") || strings.Contains(stdout, "saved") {
		t.Errorf("%s: exit %d\nstdout: %q\nstderr: %q", what, code, stdout, stderr)
	}
}

// TestE2EInterrupted: SIGINT during a backup from standard input, a backup
// of a command's output, and a restore: "hoard: interrupted" once, exit
// 130, and no success-looking summary.
func TestE2EInterrupted(t *testing.T) {
	e := newEnv(t)

	// A backup reading an endless standard input.
	cmd := e.command("backup", "--stdin", "--stdin-filename", "endless")
	pr, pw := io.Pipe()
	cmd.Stdin = pr
	fed := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 1<<20)
		g := newDataGen(1)
		for {
			g.Read(buf)
			if _, err := pw.Write(buf); err != nil {
				return
			}
			select {
			case fed <- struct{}{}:
			default:
			}
		}
	}()
	n := 0
	stdout, stderr, code := interrupt(t, cmd, func() bool {
		select {
		case <-fed:
			n++
		default:
		}
		return n > 20
	})
	pr.Close()
	wantInterrupted(t, "backup --stdin", stdout, stderr, code)

	// A backup of a command that writes, then hangs.
	out := filepath.Join(t.TempDir(), "started")
	cmd = e.command("backup", "--stdin-filename", "hang.sql", "--stdin-from-command", "--",
		"sh", "-c", "head -c 100000 /dev/zero; touch "+out+"; sleep 60")
	stdout, stderr, code = interrupt(t, cmd, func() bool { _, err := os.Stat(out); return err == nil })
	wantInterrupted(t, "backup --stdin-from-command", stdout, stderr, code)

	// A restore, interrupted once it has started writing.
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(src, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, newDataGen(2), 64<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	e.mustBackup(nil, src)
	target := t.TempDir()
	cmd = e.command("restore", "latest", "--target", target)
	stdout, stderr, code = interrupt(t, cmd, func() bool {
		fi, err := os.Stat(filepath.Join(target, "src", "big"))
		return err == nil && fi.Size() > 0
	})
	if code == 0 {
		t.Fatal("the restore finished before it was interrupted")
	}
	wantInterrupted(t, "restore", stdout, stderr, code)
}
