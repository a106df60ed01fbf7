package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends/dropbox/dropboxtest"
)

// TestE2ERemoteDumpSpeed is a measurement, not a pass/fail test: it runs
// only with HOARD_BENCH_REMOTE=1 (HOARD_BENCH_REMOTE_MB sets the stream's
// size, 64 by default). It backs up the same SQL-like stream into a local
// repository and into SFTP, FTP and Dropbox ones (the real test servers and
// the Dropbox test double), then times `hoard dump` of it from each, the
// local one before and after each remote one, and logs the medians and the
// remote/local ratios. The bytes must come back identical; a remote dump
// over twice as slow as the local one fails, since that means one transfer
// per blob again.
func TestE2ERemoteDumpSpeed(t *testing.T) {
	if os.Getenv("HOARD_BENCH_REMOTE") != "1" {
		t.Skip("a measurement: set HOARD_BENCH_REMOTE=1")
	}
	mb := 64
	if s := os.Getenv("HOARD_BENCH_REMOTE_MB"); s != "" {
		var err error
		if mb, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	stream := filepath.Join(dir, "dump.sql")
	f, err := os.Create(stream)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 5))
	words := []string{"alpha", "beta", "gamma", "delta", "upload", "comment", "user", "post", "2026-11-30", "NULL"}
	h := sha256.New()
	w := io.MultiWriter(f, h)
	for n := 0; n < mb<<20; {
		line := fmt.Sprintf("INSERT INTO comments VALUES (%d, %d, '%s %s %s', %d);\n", n, rng.IntN(1e6),
			words[rng.IntN(len(words))], words[rng.IntN(len(words))], words[rng.IntN(len(words))], rng.Uint64())
		io.WriteString(w, line)
		n += len(line)
	}
	f.Close()
	want := h.Sum(nil)

	v := testServers(t)
	srv := dropboxtest.NewServer(t)
	suffix := fmt.Sprintf("hoard-speed-%d", rand.Uint64())
	if home := v["HOARD_TEST_FTP_HOME"]; home != "" {
		// Both servers serve the test user's home: remove what was stored.
		t.Cleanup(func() {
			os.RemoveAll(filepath.Join(home, suffix+"-sftp"))
			os.RemoveAll(filepath.Join(home, suffix+"-ftp"))
		})
	}
	envs := []struct {
		name string
		e    *env
	}{
		{"local", remoteEnv(t, filepath.Join(dir, "repo"))},
		{"sftp", remoteEnv(t, v["HOARD_TEST_SFTP_URL"]+suffix+"-sftp",
			"HOARD_SFTP_KEY_FILE="+v["HOARD_TEST_SFTP_KEY"], "HOARD_SFTP_KNOWN_HOSTS="+v["HOARD_TEST_SFTP_KNOWN_HOSTS"])},
		{"ftp", remoteEnv(t, v["HOARD_TEST_FTP_URL"]+suffix+"-ftp",
			"HOARD_FTP_PASSWORD="+v["HOARD_TEST_FTP_PASSWORD"], "HOARD_FTP_CA_FILE="+v["HOARD_TEST_FTP_CA"])},
		{"dropbox", remoteEnv(t, "dropbox:///Apps/hoard/"+suffix,
			"HOARD_DROPBOX_TOKEN="+srv.Token, "HOARD_DROPBOX_API_URL="+srv.URL)},
	}
	for _, x := range envs {
		x.e.mustRun("init", "--s2k", "iterated")
		in, err := os.Open(stream)
		if err != nil {
			t.Fatal(err)
		}
		_, stderr, code := x.e.runStdin(in, "backup", "--stdin", "--stdin-filename", "dump.sql")
		in.Close()
		if code != 0 {
			t.Fatalf("%s: backup: exit %d: %s", x.name, code, stderr)
		}
	}
	times := map[string][]float64{}
	dump := func(name string, e *env) {
		h := sha256.New()
		start := time.Now()
		stderr, code := e.runIO(nil, h, "dump", "latest", "dump.sql")
		times[name] = append(times[name], time.Since(start).Seconds())
		if code != 0 {
			t.Fatalf("%s: dump: exit %d: %s", name, code, stderr)
		}
		if !bytes.Equal(h.Sum(nil), want) {
			t.Fatalf("%s: dump differs from the stream", name)
		}
	}
	for range 3 {
		for _, x := range envs[1:] {
			dump("local", envs[0].e)
			dump(x.name, x.e)
		}
	}
	median := func(s []float64) float64 {
		s = append([]float64(nil), s...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	local := median(times["local"])
	var report strings.Builder
	fmt.Fprintf(&report, "dump of a %d MiB stream, medians of %d runs: local %.2f s", mb, len(times["sftp"]), local)
	for _, x := range envs[1:] {
		m := median(times[x.name])
		fmt.Fprintf(&report, "; %s %.2f s (%.2fx local)", x.name, m, m/local)
		if m > 2*local+1 {
			t.Errorf("%s dump takes %.2f s against %.2f s locally", x.name, m, local)
		}
	}
	t.Log(report.String())
}
