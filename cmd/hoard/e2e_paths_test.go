package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EMultiplePaths backs up several paths whose names sort differently
// from their full paths (a regression: the root tree was sorted by names not
// yet known) and restores each under its own name.
func TestE2EMultiplePaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	base := t.TempDir()
	files := map[string]string{"x/b/f": "one", "y/a/g": "two", "z/a2/h": "three"}
	for p, content := range files {
		full := filepath.Join(base, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 3; round++ {
		e.mustRun("backup", filepath.Join(base, "x/b"), filepath.Join(base, "y/a"), filepath.Join(base, "z/a2"))
	}
	if out := e.mustRun("ls", "latest"); out != "/a\n/a/g\n/a2\n/a2/h\n/b\n/b/f\n" {
		t.Fatalf("ls latest:\n%s", out)
	}
	target := t.TempDir()
	e.mustRun("restore", "latest", "--target", target)
	for p, content := range map[string]string{"b/f": "one", "a/g": "two", "a2/h": "three"} {
		got, err := os.ReadFile(filepath.Join(target, p))
		if err != nil || string(got) != content {
			t.Fatalf("%s: %q, %v", p, got, err)
		}
	}
	// Two paths with the same last element cannot share the root tree.
	if err := os.MkdirAll(filepath.Join(base, "w/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := e.run("backup", filepath.Join(base, "x/b"), filepath.Join(base, "w/b"))
	if code == 0 || !strings.Contains(stderr, "same name") {
		t.Fatalf("clashing names: exit %d, %s", code, stderr)
	}
}
