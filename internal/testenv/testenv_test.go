package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestProcessTempDir removes the folder of a process that is gone and keeps
// that of one that runs.
func TestProcessTempDir(t *testing.T) {
	const prefix = "hoard-testenv-test-"
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	gone := filepath.Join(os.TempDir(), prefix+strconv.Itoa(cmd.Process.Pid)+"-1")
	alive := filepath.Join(os.TempDir(), prefix+strconv.Itoa(os.Getppid())+"-2")
	for _, d := range []string{gone, alive} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(d) })
	}
	dir, err := ProcessTempDir(prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("the folder of a finished process is still there: %v", err)
	}
	if _, err := os.Stat(alive); err != nil {
		t.Errorf("the folder of a running process was removed: %v", err)
	}
	if filepath.Base(dir)[:len(prefix)] != prefix {
		t.Errorf("made %s", dir)
	}
}
