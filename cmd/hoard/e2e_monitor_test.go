package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestE2EMonitoring runs backups with a metrics textfile, a ping URL and a
// failure hook: a good backup pings start and success and records its
// figures; a failing one pings /fail with the error in the body, runs the
// hook and records success 0; a ping service that is down only warns.
func TestE2EMonitoring(t *testing.T) {
	var (
		mu   sync.Mutex
		reqs []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, r.URL.Path+" "+string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	dir := t.TempDir()
	prom := filepath.Join(dir, "hoard.prom")
	hookOut := filepath.Join(dir, "hook")
	e := newEnv(t)
	m := gpgWith(t, e, "HOARD_METRICS_FILE="+prom, "HOARD_PING_URL="+srv.URL+"/p/uuid",
		"HOARD_ON_FAILURE=echo \"$HOARD_HOOK_COMMAND failed: $HOARD_HOOK_ERROR\" > "+hookOut)
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	gpgWriteFile(t, filepath.Join(src, "a.txt"), []byte(strings.Repeat("monitored ", 1000)))
	m.mustBackup(nil, src)
	text, err := os.ReadFile(prom)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`hoard_last_success{command="backup",host=`, `source="` + src + `"} 1`, "hoard_last_files_new{", "hoard_last_bytes_added{", "hoard_last_snapshots{", "hoard_last_repository_bytes{"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("textfile lacks %q:\n%s", want, text)
		}
	}
	mu.Lock()
	if len(reqs) != 2 || !strings.HasPrefix(reqs[0], "/p/uuid/start") || !strings.HasPrefix(reqs[1], "/p/uuid ") {
		t.Errorf("pings of a good backup: %q", reqs)
	}
	reqs = nil
	mu.Unlock()
	if _, err := os.Stat(hookOut); err == nil {
		t.Error("the failure hook ran after a good backup")
	}

	// A failing backup (the command dies: no snapshot).
	_, stderr, code := m.run("backup", "--stdin-filename", "db.sql", "--stdin-from-command", "--", "sh", "-c", "echo dump broke >&2; exit 3")
	if code != exitSource {
		t.Fatalf("failing backup: exit %d: %s", code, stderr)
	}
	mu.Lock()
	if len(reqs) != 2 || !strings.HasPrefix(reqs[1], "/p/uuid/fail ") || !strings.Contains(reqs[1], "dump broke") || !strings.Contains(reqs[1], "no snapshot") && !strings.Contains(reqs[1], "exit") {
		t.Errorf("pings of a failed backup: %q", reqs)
	}
	mu.Unlock()
	hook, err := os.ReadFile(hookOut)
	if err != nil || !strings.HasPrefix(string(hook), "backup failed: ") {
		t.Errorf("hook output %q, %v", hook, err)
	}
	text, _ = os.ReadFile(prom)
	if !strings.Contains(string(text), `hoard_last_success{command="backup"`) || strings.Count(string(text), "hoard_last_success{") != 2 {
		t.Errorf("textfile after a failure:\n%s", text)
	}

	// The ping service is down: the backup still succeeds, with a warning.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/p/secret-uuid"
	ln.Close()
	d := gpgWith(t, e, "HOARD_PING_URL="+down)
	_, stderr, code = d.run("backup", src)
	if code != 0 || !strings.Contains(stderr, "ping failed") || strings.Contains(stderr, "secret-uuid") {
		t.Fatalf("backup with the ping service down: exit %d: %s", code, stderr)
	}

	// schedule --dry-run prints units for the config file and the crontab line.
	cfg := filepath.Join(dir, "hoard.toml")
	gpgWriteFile(t, cfg, []byte("[repository]\nlocation = \""+e.repo+"\"\n\n[media.site]\npaths = [\""+src+"\"]\n"))
	out := gpgWith(t, e, "HOARD_CONFIG="+cfg).mustRun("schedule", "--dry-run", "--on-calendar", "*-*-* 02:30:00")
	for _, want := range []string{"--config " + cfg + " run", "OnCalendar=*-*-* 02:30:00", "flock -n /run/lock/hoard.lock"} {
		if !strings.Contains(out, want) {
			t.Errorf("schedule --dry-run lacks %q:\n%s", want, out)
		}
	}
}
