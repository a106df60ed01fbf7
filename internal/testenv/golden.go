package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Golden compares got with the golden file at path (below a testdata
// folder) and returns the file's bytes. With update it first writes got to
// path: run the test with -update only when an encoder's output is meant to
// change (a new format version), and say so in docs/FORMAT.md.
func Golden(t testing.TB, path string, got []byte, update bool) []byte {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file: %v (run with -update to write it)", err)
	}
	if got != nil && !bytes.Equal(got, want) {
		t.Errorf("%s: the encoder's %d bytes differ from the golden file's %d: the format changed (if on purpose, run with -update and say so in docs/FORMAT.md)", path, len(got), len(want))
	}
	return want
}
