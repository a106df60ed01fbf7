package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EExcludes: ** in --exclude and --include, --exclude-file,
// --exclude-caches and --exclude-if-present, as restic users expect.
func TestE2EExcludes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	files := map[string]string{
		"keep.txt":                   "k",
		"a/b/c/debug.log":            "log",
		"a/keep.log.txt":             "k",
		"deep/x/y/node_modules/m.js": "m",
		"cache/CACHEDIR.TAG":         "Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n",
		"cache/blob":                 "c",
		"fakecache/CACHEDIR.TAG":     "not a signature",
		"fakecache/blob":             "kept",
		"private/.nobackup":          "",
		"private/secret":             "s",
		"listed/one":                 "1",
		"listed/two":                 "2",
	}
	for p, body := range files {
		full := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	exFile := filepath.Join(t.TempDir(), "excludes")
	if err := os.WriteFile(exFile, []byte("# comment\n\n  "+src+"/listed/one  \n**/node_modules\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustBackup(nil, src, "--exclude", src+"/**/*.log", "--exclude-file", exFile, "--exclude-caches", "--exclude-if-present", ".nobackup")
	out := e.mustRun("ls", "latest")
	for _, want := range []string{"keep.txt", "a/keep.log.txt", "cache/CACHEDIR.TAG", "fakecache/blob", "private/.nobackup", "listed/two"} {
		if !strings.Contains(out, "/src/"+want+"\n") {
			t.Errorf("ls lacks %s:\n%s", want, out)
		}
	}
	for _, not := range []string{"debug.log", "node_modules", "cache/blob\n", "private/secret", "listed/one"} {
		if strings.Contains(out, "/src/"+not) || (not == "cache/blob\n" && strings.Contains(out, "/src/cache/blob\n")) {
			t.Errorf("ls shows excluded %s:\n%s", not, out)
		}
	}
	// ** in --include.
	target := t.TempDir()
	e.mustRun("restore", "latest", "--target", target, "--include", "/src/**/*.txt")
	var got []string
	filepath.WalkDir(target, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(target, p)
			got = append(got, rel)
		}
		return nil
	})
	if strings.Join(got, ",") != "src/a/keep.log.txt,src/keep.txt" {
		t.Errorf("restore --include /src/**/*.txt: %v", got)
	}
	e.mustFail(exitUsage, "backup", src, "--exclude", "[")
}
