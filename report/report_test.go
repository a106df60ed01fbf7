package report

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/internal/testenv"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse reads a textfile with Prometheus's own text-format parser and
// returns value by metric name and source label (command/host/source).
func parse(t *testing.T, path string) map[string]map[string]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("the textfile does not parse as Prometheus text: %v", err)
	}
	out := map[string]map[string]float64{}
	for name, fam := range fams {
		out[name] = map[string]float64{}
		for _, m := range fam.Metric {
			var key []string
			for _, l := range m.Label {
				key = append(key, l.GetName()+"="+l.GetValue())
			}
			out[name][strings.Join(key, ",")] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestTextfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hoard.prom")
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	backup := Run{Command: "backup", Host: "web1", Source: "main", Start: t0, End: t0.Add(90 * time.Second),
		Values: map[string]float64{"bytes_added": 1234, "files_new": 3, "Bad-Name": 1}}
	if err := WriteTextfile(path, backup); err != nil {
		t.Fatal(err)
	}
	// Another source with a hostile label value, then a failed second run
	// of the first: its series replace the old ones, the others stay.
	if err := WriteTextfile(path, Run{Command: "backup", Host: "web1", Source: "we\"ird\\\nname", Start: t0, End: t0}); err != nil {
		t.Fatal(err)
	}
	backup.Err, backup.Values = errors.New("dump failed"), map[string]float64{"files_new": 0}
	backup.Start = t0.Add(24 * time.Hour)
	backup.End = backup.Start.Add(time.Second)
	if err := WriteTextfile(path, backup); err != nil {
		t.Fatal(err)
	}
	m := parse(t, path)
	main := "command=backup,host=web1,source=main"
	weird := "command=backup,host=web1,source=we\"ird\\\nname"
	if got := m["hoard_last_success"]; got[main] != 0 || got[weird] != 1 || len(got) != 2 {
		t.Errorf("success: %v", got)
	}
	if got := m["hoard_last_start_timestamp_seconds"][main]; got != float64(backup.Start.Unix()) {
		t.Errorf("start: %v", got)
	}
	if got := m["hoard_last_duration_seconds"][main]; got != 1 {
		t.Errorf("duration: %v", got)
	}
	if _, ok := m["hoard_last_bytes_added"][main]; ok {
		t.Error("a series of the earlier run of the same command and source survived")
	}
	if m["hoard_last_files_new"][main] != 0 || len(m["hoard_last_files_new"]) != 1 {
		t.Errorf("files_new: %v", m["hoard_last_files_new"])
	}
	for name := range m {
		if strings.Contains(strings.ToLower(name), "bad") {
			t.Errorf("an invalid metric name was written: %s", name)
		}
	}
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*"))
	if len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

type pingLog struct {
	mu   sync.Mutex
	reqs []string // path?rid body
	rids map[string]bool
	fail int // answer 500 to this many requests first
}

func (l *pingLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail > 0 {
		l.fail--
		http.Error(w, "busy", http.StatusInternalServerError)
		return
	}
	l.reqs = append(l.reqs, r.URL.Path+" "+string(b))
	l.rids[r.URL.Query().Get("rid")] = true
}

func TestPinger(t *testing.T) {
	l := &pingLog{rids: map[string]bool{}, fail: 1}
	srv := httptest.NewServer(l)
	defer srv.Close()
	p := NewPinger(srv.URL + "/ping/abc-uuid/")
	ctx := context.Background()
	if err := p.Start(ctx); err != nil { // retried after the 500
		t.Fatal(err)
	}
	if err := p.Fail(ctx, []byte(strings.Repeat("x", maxBody+10)+"the end")); err != nil {
		t.Fatal(err)
	}
	if err := p.Success(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if len(l.reqs) != 3 || !strings.HasPrefix(l.reqs[0], "/ping/abc-uuid/start ") ||
		!strings.HasPrefix(l.reqs[1], "/ping/abc-uuid/fail ") || !strings.HasSuffix(l.reqs[1], "the end") ||
		len(l.reqs[1]) != len("/ping/abc-uuid/fail ")+maxBody || l.reqs[2] != "/ping/abc-uuid " {
		t.Fatalf("requests: %.80q", l.reqs)
	}
	if len(l.rids) != 1 || l.rids[""] {
		t.Fatalf("run IDs: %v, want one", l.rids)
	}

	// A service that is down: an error, quickly, that does not quote the
	// URL's secret path.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/ping/secret-uuid"
	ln.Close()
	start := time.Now()
	err = NewPinger(down).Start(ctx)
	if err == nil || strings.Contains(err.Error(), "secret-uuid") || time.Since(start) > 15*time.Second {
		t.Fatalf("ping to a closed port: %v after %v", err, time.Since(start))
	}
}

func TestRunHook(t *testing.T) {
	out := filepath.Join(t.TempDir(), "hook")
	cmd := `printf '%s|%s|%s|%s' "$HOARD_HOOK_COMMAND" "$HOARD_HOOK_SUCCESS" "$HOARD_HOOK_ERROR" "$HOARD_HOOK_SOURCE" > ` + out
	run := Run{Command: "db backup", Source: "main", Err: errors.New("pg_dump: connection refused")}
	if err := RunHook(context.Background(), cmd, run, io.Discard, time.Minute); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if string(b) != "db backup|0|pg_dump: connection refused|main" {
		t.Fatalf("hook saw %q", b)
	}
	if err := RunHook(context.Background(), "exit 3", run, io.Discard, time.Minute); err == nil {
		t.Fatal("a failing hook reported no error")
	}
	start := time.Now()
	if err := RunHook(context.Background(), "sleep 30", run, io.Discard, 200*time.Millisecond); err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("a hook past its timeout: %v after %v", err, time.Since(start))
	}
}

func TestTail(t *testing.T) {
	tl := NewTail(5)
	io.WriteString(tl, "abc")
	io.WriteString(tl, "defgh")
	if string(tl.Bytes()) != "defgh" {
		t.Fatalf("tail %q", tl.Bytes())
	}
}

// TestScheduleUnits checks the units with systemd's own verifier where it
// is installed (Debian's systemd package has it).
func TestScheduleUnits(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hoard.toml")
	env := filepath.Join(dir, "hoard.env")
	os.WriteFile(cfg, nil, 0o600)
	os.WriteFile(env, []byte("HOARD_PASSWORD_FILE=/etc/hoard/pass\n"), 0o600)
	bin, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	s := Schedule{Name: "hoard-test", Binary: bin, ConfigFile: cfg, EnvFile: env, OnCalendar: "*-*-* 03:00:00", Delay: 30 * time.Minute}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Schedule{
		{Name: "x", Binary: "hoard", ConfigFile: cfg, EnvFile: env, OnCalendar: "daily"},
		{Name: "x", Binary: bin, ConfigFile: "/a b/hoard.toml", EnvFile: env, OnCalendar: "daily"},
		{Name: "a/b", Binary: bin, ConfigFile: cfg, EnvFile: env, OnCalendar: "daily"},
		{Name: "x", Binary: bin, ConfigFile: cfg, EnvFile: env, OnCalendar: "daily\nExecStart=/bin/evil"},
	} {
		if bad.Validate() == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	svc, tmr := s.Service(), s.Timer()
	for _, want := range []string{"Type=oneshot", "ExecStart=" + bin + " --config " + cfg + " run", "EnvironmentFile=" + env, "IOSchedulingClass=idle", "Nice=10"} {
		if !strings.Contains(svc, want) {
			t.Errorf("service lacks %q:\n%s", want, svc)
		}
	}
	for _, want := range []string{"OnCalendar=*-*-* 03:00:00", "Persistent=true", "RandomizedDelaySec=1800", "WantedBy=timers.target"} {
		if !strings.Contains(tmr, want) {
			t.Errorf("timer lacks %q:\n%s", want, tmr)
		}
	}
	if cron := s.Crontab(17, 3); !strings.HasPrefix(cron, "17 3 * * * flock -n /run/lock/hoard-test.lock sh -c 'set -a; . "+env+";") {
		t.Errorf("crontab line: %s", cron)
	}
	testenv.NeedPrograms(t, "systemd-analyze") // Debian's systemd package
	verify, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "hoard-test.service"), []byte(svc), 0o644)
	os.WriteFile(filepath.Join(dir, "hoard-test.timer"), []byte(tmr), 0o644)
	out, err := exec.Command(verify, "verify", filepath.Join(dir, "hoard-test.service"), filepath.Join(dir, "hoard-test.timer")).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "hoard-test") {
			t.Errorf("systemd-analyze: %s", line)
		}
	}
}
