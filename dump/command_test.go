package dump

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sh(script string) Command { return Command{Path: "sh", Args: []string{"-c", script}} }

func TestStream(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, script, out, err string
	}{
		{"ok", "printf 'hello'", "hello", ""},
		{"exit 3", "printf 'part'; echo 'pg_dump: error: connection lost' >&2; exit 3", "part", "(exit status 3): pg_dump: error: connection lost"},
		{"killed", "printf 'part'; kill -KILL $$", "part", "signal: killed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sh(tc.script).Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(s)
			err = s.Close()
			if string(out) != tc.out {
				t.Errorf("output %q", out)
			}
			var te *ToolError
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("Close: %v", err)
			case tc.err != "" && (!errors.As(err, &te) || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("Close: %v, want a ToolError with %q", err, tc.err)
			}
		})
	}
	if _, err := (Command{Path: "/nonexistent/tool"}).Start(ctx); err == nil || !strings.Contains(err.Error(), "/nonexistent/tool") {
		t.Errorf("missing tool: %v", err)
	}
}

func TestFeed(t *testing.T) {
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "out")
	// A whole input reaches the tool.
	if err := sh("cat > "+out).Feed(ctx, strings.NewReader("all of it")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "all of it" {
		t.Errorf("tool got %q", b)
	}
	// An input that fails stops the tool before it sees an end of input:
	// the marker after cat is never written.
	err := sh("cat > "+out+" && echo done >> "+out).Feed(ctx, io.MultiReader(strings.NewReader("part"), failing{}))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Feed: %v", err)
	}
	if b, _ := os.ReadFile(out); strings.Contains(string(b), "done") {
		t.Errorf("the tool finished on a truncated input: %q", b)
	}
	// A tool that fails is reported with its message.
	err = sh("head -c 1 >/dev/null; echo 'ERROR 1064: syntax' >&2; exit 1").Feed(ctx, strings.NewReader(strings.Repeat("x", 1<<20)))
	var te *ToolError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "ERROR 1064") {
		t.Errorf("Feed: %v", err)
	}
	// A tool that stops reading but exits 0 did not take the whole input.
	err = sh("head -c 1 >/dev/null").Feed(ctx, strings.NewReader(strings.Repeat("x", 1<<20)))
	if err == nil {
		t.Error("a tool that read 1 byte of 1 MiB succeeded")
	}
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "PGPASSWORD=old", "B=2"}, []string{"PGPASSWORD=new"})
	want := []string{"A=1", "B=2", "PGPASSWORD=new"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%v, want %v", got, want)
	}
}

func TestVersion(t *testing.T) {
	v, err := Version(context.Background(), "sh")
	if err == nil && strings.Contains(v, "\n") {
		t.Errorf("version %q has more than one line", v)
	}
}
