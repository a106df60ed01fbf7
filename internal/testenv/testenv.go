// Package testenv is what tests share about the machine they run on: the
// rule that a missing server or tool skips a test on a developer's machine
// but fails it in CI, and where the project's scripts say the test servers
// are. It is imported by tests (and test helper packages) only.
package testenv

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// ServersFile is where scripts/test-servers.sh writes how to reach the real
// SFTP and FTP servers, one NAME=VALUE a line.
const ServersFile = "/var/lib/hoard-test/env"

// CI reports whether the tests run in CI (the CI variable is set), where
// every server and tool the tests need must be there.
func CI() bool { return os.Getenv("CI") != "" }

// Missing ends t for want of a server or tool: it skips t, or fails it
// when CI is set, with the message that format and args make.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if CI() {
		t.Fatalf("CI: required: "+format, args...)
	}
	t.Skipf("skipped: "+format, args...)
}

// NeedPrograms ends t (see Missing) unless every program is on PATH.
func NeedPrograms(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			Missing(t, "%s is not installed", p)
		}
	}
}

// Get returns the test setting name (such as HOARD_TEST_SFTP_URL): the
// environment variable of that name, or else its line in ServersFile, or "".
func Get(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	f, err := os.Open(ServersFile)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && k == name {
			return v
		}
	}
	return ""
}

// ProcessTempDir makes a folder in the system's temp folder for what a test
// process keeps across its tests (a built binary, an in-process server's
// files) and removes at its end. A process killed by go test's timeout never
// removes it, so the folder's name carries the process ID (prefix, PID, "-",
// random) and ProcessTempDir first removes the folders of the same prefix
// whose process is gone.
func ProcessTempDir(prefix string) (string, error) {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, dir := range old {
		pid, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(dir), prefix), "-")
		n, err := strconv.Atoi(pid)
		if !ok || err != nil || n <= 0 || n == os.Getpid() {
			continue
		}
		if errors.Is(syscall.Kill(n, 0), syscall.ESRCH) {
			_ = os.RemoveAll(dir) // best effort: another run may remove it too
		}
	}
	return os.MkdirTemp("", prefix+strconv.Itoa(os.Getpid())+"-")
}
