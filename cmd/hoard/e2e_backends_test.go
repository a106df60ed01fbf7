package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoard-backup/hoard/backends/dropbox/dropboxtest"
	"github.com/hoard-backup/hoard/backends/s3/s3test"
	"github.com/hoard-backup/hoard/internal/testenv"
)

// remoteEnv is an env whose repository is a URL, with a private metadata cache.
func remoteEnv(t *testing.T, url string, extra ...string) *env {
	t.Helper()
	e := newEnvNoInit(t)
	e.repo = url
	e.extraEnv = append(extra, "HOARD_CACHE_DIR="+t.TempDir())
	return e
}

// remoteRoundTrip is the foundation's round trip on a remote repository:
// init, backup, an incremental backup that reads nothing, a change, restore
// byte-identical, check --read-data; and the secrets never show.
func remoteRoundTrip(t *testing.T, e *env, secrets ...string) {
	seed := testSeed(t, 7)
	src := filepath.Join(t.TempDir(), "site")
	rng := rand.New(rand.NewPCG(seed, 1))
	want := map[string][]byte{}
	for i := 0; i < 40; i++ {
		size := rng.IntN(200 << 10)
		if i == 0 {
			size = 12 << 20 // several chunks and packs' worth
		}
		b := make([]byte, size)
		io.ReadFull(newDataGen(seed+uint64(i)), b)
		p := fmt.Sprintf("media/%02d/file-%03d.bin", i%5, i)
		want[p] = b
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	record := func(s ...string) {
		for _, x := range s {
			out.WriteString(x)
		}
	}
	stdout, stderr, code := e.run("init", "--s2k", "iterated")
	record(stdout, stderr)
	if code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	first := e.mustBackup(nil, src)
	if first.Summary.FilesNew != uint64(len(want)) {
		t.Fatalf("first backup: %+v", first.Summary)
	}
	second := e.mustBackup(nil, src)
	if second.Summary.FilesUnmodified != uint64(len(want)) || second.Summary.BytesRead != 0 {
		t.Fatalf("incremental backup read files again: %+v", second.Summary)
	}
	changed := "media/01/file-001.bin"
	want[changed] = append(want[changed], []byte("appended")...)
	if err := os.WriteFile(filepath.Join(src, changed), want[changed], 0o644); err != nil {
		t.Fatal(err)
	}
	third := e.mustBackup(nil, src)
	if third.Summary.FilesChanged != 1 {
		t.Fatalf("third backup: %+v", third.Summary)
	}
	target := t.TempDir()
	stdout, stderr, code = e.run("restore", "latest", "--target", target)
	record(stdout, stderr)
	if code != 0 {
		t.Fatalf("restore: exit %d: %s", code, stderr)
	}
	for p, b := range want {
		got, err := os.ReadFile(filepath.Join(target, "site", p))
		if err != nil || sha256.Sum256(got) != sha256.Sum256(b) {
			t.Fatalf("%s differs after restore (%v)", p, err)
		}
	}
	stdout, stderr, code = e.run("check", "--read-data")
	record(stdout, stderr)
	if code != 0 {
		t.Fatalf("check --read-data: exit %d: %s%s", code, stdout, stderr)
	}
	stdout, stderr, _ = e.run("--json", "snapshots")
	record(stdout, stderr)
	// A wrong passphrase: an error, still without secrets.
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("wrong\n"), 0o600)
	e2 := *e
	e2.pwFile = bad
	stdout, stderr, code = e2.run("snapshots")
	record(stdout, stderr)
	if code != exitWrongKey {
		t.Fatalf("wrong passphrase: exit %d: %s", code, stderr)
	}
	for _, s := range secrets {
		if s != "" && bytes.Contains([]byte(out.String()), []byte(s)) {
			t.Fatalf("a secret appears in hoard's output")
		}
	}
}

func TestE2EBackendS3(t *testing.T) {
	t.Parallel()
	hoardBinary(t) // build before the S3 server changes the working directory
	endpoint, access, secret := s3test.Start(t)
	e := remoteEnv(t, "s3+http://"+endpoint+"/hoard-e2e/repo",
		"AWS_ACCESS_KEY_ID="+access, "AWS_SECRET_ACCESS_KEY="+secret)
	remoteRoundTrip(t, e, secret)
}

func TestE2EBackendDropbox(t *testing.T) {
	t.Parallel()
	srv := dropboxtest.NewServer(t)
	e := remoteEnv(t, "dropbox:///Apps/hoard/repo",
		"HOARD_DROPBOX_TOKEN="+srv.Token, "HOARD_DROPBOX_API_URL="+srv.URL)
	remoteRoundTrip(t, e, srv.Token)
}

// testServers reads the details scripts/test-servers.sh wrote for the real
// OpenSSH and vsftpd servers. Without them the test skips, except in CI,
// where the servers must run.
func testServers(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(testenv.ServersFile)
	if err != nil {
		testenv.Missing(t, "the test servers (run scripts/test-servers.sh): %v", err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			vars[k] = v
		}
	}
	return vars
}

func TestE2EBackendSFTP(t *testing.T) {
	t.Parallel()
	v := testServers(t)
	dir := fmt.Sprintf("hoard-e2e-%d", rand.Uint64())
	e := remoteEnv(t, v["HOARD_TEST_SFTP_URL"]+dir,
		"HOARD_SFTP_KEY_FILE="+v["HOARD_TEST_SFTP_KEY"], "HOARD_SFTP_KNOWN_HOSTS="+v["HOARD_TEST_SFTP_KNOWN_HOSTS"])
	remoteRoundTrip(t, e)
}

func TestE2EBackendFTP(t *testing.T) {
	t.Parallel()
	v := testServers(t)
	for _, scheme := range []string{"ftp", "ftps"} {
		t.Run(scheme, func(t *testing.T) {
			dir := fmt.Sprintf("hoard-e2e-%d", rand.Uint64())
			url := strings.Replace(v["HOARD_TEST_FTP_URL"], "ftp://", scheme+"://", 1) + dir
			e := remoteEnv(t, url, "HOARD_FTP_PASSWORD="+v["HOARD_TEST_FTP_PASSWORD"], "HOARD_FTP_CA_FILE="+v["HOARD_TEST_FTP_CA"])
			remoteRoundTrip(t, e, v["HOARD_TEST_FTP_PASSWORD"])
		})
	}
}
