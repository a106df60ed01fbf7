package ftp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/backendtest"
	"github.com/hoard-backup/hoard/internal/testenv"
)

// realServer returns a Config for the vsftpd that scripts/test-servers.sh
// starts, with Path set to a new folder removed at the end of t. Without
// the server, it skips t, or fails it when the CI variable is set. Under
// -short it skips: the in-process server covers the same code.
func realServer(t *testing.T, useTLS bool) Config {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the real FTP server's runs are skipped (the in-process server's are not)")
	}
	missing := func(format string, args ...any) {
		t.Helper()
		testenv.Missing(t, "the real %s server: "+format+" (run scripts/test-servers.sh)", append([]any{"FTP"}, args...)...)
	}
	url := testenv.Get("HOARD_TEST_FTP_URL")
	if url == "" {
		missing("HOARD_TEST_FTP_URL is not set and %s is missing", testenv.ServersFile)
	}
	dir := path.Join("hoard-tests", randomSuffix())
	cfg, err := ParseConfig(strings.TrimSuffix(url, "/") + "/" + dir)
	if err != nil {
		t.Fatalf("HOARD_TEST_FTP_URL: %v", err)
	}
	if cfg.Password == "" {
		cfg.Password = testenv.Get("HOARD_TEST_FTP_PASSWORD")
	}
	if useTLS {
		cfg.TLS, cfg.CAFile = true, testenv.Get("HOARD_TEST_FTP_CA")
	}
	port := cfg.Port
	if port == 0 {
		port = DefaultPort
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		missing("%v", err)
	}
	_ = c.Close()
	t.Cleanup(func() { removeAll(t, cfg, dir) })
	cfg.Path = path.Join(dir, "repo")
	return cfg
}

// removeAll removes dir (relative to the login folder) from the real
// server: on the local disk if the server's home is here, else over FTP.
func removeAll(t *testing.T, cfg Config, dir string) {
	t.Helper()
	if home := testenv.Get("HOARD_TEST_FTP_HOME"); home != "" {
		if _, err := os.Stat(home); err == nil {
			if err := os.RemoveAll(filepath.Join(home, filepath.FromSlash(dir))); err != nil {
				t.Errorf("cleanup: %v", err)
			}
			return
		}
	}
	sc, err := ftp.Dial(net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), ftp.DialWithTimeout(10*time.Second))
	if err == nil {
		defer func() { _ = sc.Quit() }()
		if err = sc.Login(cfg.User, cfg.Password); err == nil {
			err = sc.RemoveDirRecur(dir)
		}
	}
	if err != nil && replyCode(err) != 550 {
		t.Errorf("cleanup of %s: %v", dir, err)
	}
}

// servers returns the in-process server, which lives until the end of t,
// and the real one, which skips (or fails in CI) where it is missing; each
// with and without TLS.
func servers(t *testing.T) []backendtest.Server[Config] {
	s := startServer(t)
	return []backendtest.Server[Config]{
		{Name: "InProcess", Config: func(*testing.T) Config { return s.config("repo-"+randomSuffix(), false) }},
		{Name: "InProcessTLS", Config: func(*testing.T) Config { return s.config("repo-"+randomSuffix(), true) }},
		{Name: "Vsftpd", Config: func(t *testing.T) Config { return realServer(t, false) }},
		{Name: "VsftpdTLS", Config: func(t *testing.T) Config { return realServer(t, true) }},
	}
}

// open opens cfg, failing t on error (backendtest.OpenNow).
func open(t *testing.T, cfg Config) *Backend { return backendtest.OpenNow(t, cfg, Open) }

func openBackend(t *testing.T, cfg Config) backends.Backend { return open(t, cfg) }

func TestBackend(t *testing.T) { backendtest.RunServers(t, servers(t), openBackend) }

func TestNetFaults(t *testing.T) {
	backendtest.RunNetFaultsServers(t, 30*time.Second, servers(t), func(cfg Config, dial backendtest.DialFunc, timeout time.Duration) Config {
		cfg.Dial, cfg.Timeout = dial, timeout
		return cfg
	}, openBackend)
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		location string
		want     Config
		redacted string
	}{
		{"ftp://backup:s3cret@nas.example/backups/repo", Config{User: "backup", Password: "s3cret", Host: "nas.example", Path: "backups/repo"}, "ftp://backup@nas.example/backups/repo"},
		{"ftp://backup@nas.example//srv/repo", Config{User: "backup", Host: "nas.example", Path: "/srv/repo"}, "ftp://backup@nas.example//srv/repo"},
		{"ftps://u:p%40ss@nas:2121/repo", Config{User: "u", Password: "p@ss", Host: "nas", Port: 2121, Path: "repo", TLS: true}, "ftps://u@nas:2121/repo"},
		{"ftp://nas:21/repo", Config{Host: "nas", Port: 21, Path: "repo"}, "ftp://nas/repo"},
		{"ftp://u@[::1]:2121/a%20b", Config{User: "u", Host: "::1", Port: 2121, Path: "a b"}, "ftp://u@[::1]:2121/a%20b"},
	}
	for _, tc := range tests {
		cfg, err := ParseConfig(tc.location)
		if err != nil {
			t.Errorf("ParseConfig(%q): %v", tc.location, err)
			continue
		}
		if cfg.User != tc.want.User || cfg.Password != tc.want.Password || cfg.Host != tc.want.Host ||
			cfg.Port != tc.want.Port || cfg.Path != tc.want.Path || cfg.TLS != tc.want.TLS {
			t.Errorf("ParseConfig(%q) = %#v, want %#v", tc.location, cfg, tc.want)
		}
		if r := cfg.Redacted(); r != tc.redacted {
			t.Errorf("ParseConfig(%q).Redacted() = %q, want %q", tc.location, r, tc.redacted)
		}
	}
	for _, bad := range []string{
		"", "ftp://", "ftp://host", "ftp://host/", "sftp://host/repo", "ftp://host:0/repo",
		"ftp://host:x/repo", "ftp://host/repo#x", "ftp://@/repo",
	} {
		if cfg, err := ParseConfig(bad); err == nil {
			t.Errorf("ParseConfig(%q) = %#v, want an error", bad, cfg)
		}
	}
}

// TestSecretsNotShown provokes errors with the password in the location
// and checks that it appears in none of them, nor in Location.
func TestSecretsNotShown(t *testing.T) {
	const secret = "Sup3rSecretPassw0rd"
	srv := startServer(t)
	srv.echoPass = true
	var texts []string
	for _, location := range []string{
		"ftp://user:" + secret + "@host:bad/repo",
		"ftp://user:" + secret + "@host/repo?x",
		"ftp://user:" + secret + "@ho%zzst/repo",
		"ftp://user:" + secret + "@host/",
	} {
		_, err := ParseConfig(location)
		if err == nil {
			t.Errorf("ParseConfig(%q) succeeded", location)
			continue
		}
		texts = append(texts, err.Error())
	}
	ctx := context.Background()
	base := "ftp://" + srv.user + ":" + secret + "@" + net.JoinHostPort(srv.host, strconv.Itoa(srv.port)) + "/repo"
	// A wrong password, which this server repeats in its reply.
	_, err := Opener(ctx, base)
	if !errors.Is(err, backends.ErrPermanent) {
		t.Errorf("Opener with a wrong password = %v, want ErrPermanent", err)
	}
	texts = append(texts, err.Error())
	// Nothing listens.
	_, err = Opener(ctx, "ftp://user:"+secret+"@127.0.0.1:1/repo")
	if err == nil {
		t.Fatal("Opener of a closed port succeeded")
	}
	texts = append(texts, err.Error())
	// A backend that works, then fails: its errors and Location.
	cfg := srv.config("repo", false)
	b := open(t, cfg)
	defer func() { _ = b.Close() }()
	texts = append(texts, b.Location(), cfg.String(), cfg.GoString())
	h := backends.Handle{Type: backends.KeyFile, Name: "k"}
	if err := b.Save(ctx, h, backends.NewByteReader([]byte("key"))); err == nil {
		t.Error("Save into a repository that was not created succeeded")
	} else {
		texts = append(texts, err.Error())
	}
	all := backendtest.Texts(b, h) // every call fails: the folder was never created
	for i, text := range texts {
		all[fmt.Sprint("text ", i)] = text
	}
	backendtest.NoSecrets(t, all, secret, srv.password)
	// scrub hides a password that a server repeats.
	b.cfg.Password = "hunter2"
	err = b.scrub(errors.Join(errors.New("530 wrong password hunter2"), backends.ErrPermanent))
	if strings.Contains(err.Error(), "hunter2") || !errors.Is(err, backends.ErrPermanent) {
		t.Errorf("scrub gave %v", err)
	}
}

// TestTLSUntrusted connects with TLS to a server whose certificate is not
// trusted, and without TLS to the real server's TLS-only path.
func TestTLSUntrusted(t *testing.T) {
	srv := startServer(t)
	cfg := srv.config("repo", true)
	cfg.CAFile = ""
	_, err := Open(context.Background(), cfg)
	if !errors.Is(err, backends.ErrPermanent) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Open with an untrusted certificate = %v, want a certificate error matching ErrPermanent", err)
	}
}

func TestWrongPassword(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.Name, func(t *testing.T) {
			cfg := srv.Config(t)
			cfg.Password += "-wrong"
			_, err := Open(context.Background(), cfg)
			if !errors.Is(err, backends.ErrPermanent) || strings.Contains(err.Error(), cfg.Password) {
				t.Errorf("Open with a wrong password = %v, want ErrPermanent without the password", err)
			}
		})
	}
}

// TestRangedLoads reads small ranges from the start of a large file, which
// leaves most of each transfer unread, and checks that the pool stays
// healthy and that no connection leaks on the server.
func TestRangedLoads(t *testing.T) {
	srv := startServer(t)
	cfg := srv.config("repo", false)
	cfg.Connections = 2
	b := open(t, cfg)
	ctx := context.Background()
	if err := b.Create(ctx); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	h := backends.Handle{Type: backends.PackFile, Name: "abcdef"}
	if err := b.Save(ctx, h, backends.NewByteReader(data)); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		offset := int64(i) * 1000
		if i%2 == 1 {
			offset = int64(len(data)) - 100<<10 // the rest is small: drained
		}
		err := b.Load(ctx, h, 100, offset, func(rd io.Reader) error {
			got, err := io.ReadAll(rd)
			if err == nil && string(got) != string(data[offset:offset+100]) {
				t.Errorf("Load(100, %d): wrong bytes", offset)
			}
			return err
		})
		if err != nil {
			t.Fatalf("Load(100, %d): %v", offset, err)
		}
		if n := srv.clients.Load(); n > int64(cfg.Connections) {
			t.Fatalf("after %d ranged loads the server has %d clients, want at most %d", i+1, n, cfg.Connections)
		}
	}
	got, err := backends.LoadAll(ctx, b, h)
	if err != nil || string(got) != string(data) {
		t.Fatalf("LoadAll after ranged loads: %d bytes, %v", len(got), err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.clients.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after Close the server still has %d clients", srv.clients.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDiskFull fills the in-process server's disk (a flag: replies 552)
// and, where scripts/test-servers.sh could mount it, a 1 MiB tmpfs under
// the real server: Save fails with a clear error and leaves no visible file.
func TestDiskFull(t *testing.T) {
	// vsftpd replies 451 (local error, transient by the protocol) to a full
	// disk; 552 is the protocol's reply, which is permanent.
	check := func(t *testing.T, b *Backend, size int, permanent bool) {
		t.Helper()
		ctx := context.Background()
		h := backends.Handle{Type: backends.PackFile, Name: "ab" + randomSuffix()}
		err := b.Save(ctx, h, backends.NewByteReader(make([]byte, size)))
		t.Logf("Save: %v", err)
		switch {
		case err == nil:
			t.Fatal("Save on a full disk succeeded")
		case permanent && (!errors.Is(err, backends.ErrPermanent) || !strings.Contains(err.Error(), "no space left")):
			t.Errorf("Save on a full disk = %v, want ErrPermanent saying no space left", err)
		case !permanent && !strings.Contains(err.Error(), "disk full"):
			t.Errorf("Save on a full disk = %v, want it to suggest a full disk", err)
		}
		if _, err := b.Stat(ctx, h); !errors.Is(err, backends.ErrNotExist) {
			t.Errorf("Stat after a failed Save = %v, want ErrNotExist", err)
		}
		if err := b.List(ctx, backends.PackFile, func(fi backends.FileInfo) error {
			t.Errorf("List after a failed Save shows %v", fi)
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
	t.Run("InProcess", func(t *testing.T) {
		srv := startServer(t)
		b := open(t, srv.config("repo", false))
		defer func() { _ = b.Close() }()
		if err := b.Create(context.Background()); err != nil {
			t.Fatal(err)
		}
		srv.diskFull.Store(true)
		check(t, b, 100<<10, true)
	})
	t.Run("Vsftpd", func(t *testing.T) {
		cfg := realServer(t, false)
		full := testenv.Get("HOARD_TEST_FULL_DIR")
		if full == "" {
			testenv.Missing(t, "a small file system on the real server (scripts/test-servers.sh could not mount one)")
		}
		dir := path.Join(full, randomSuffix())
		t.Cleanup(func() { removeAll(t, cfg, dir) })
		cfg.Path = dir
		b := open(t, cfg)
		defer func() { _ = b.Close() }()
		if err := b.Create(context.Background()); err != nil {
			t.Fatal(err)
		}
		check(t, b, 2<<20, false) // the file system holds 1 MiB
	})
}

// TestNotCreated uses a repository folder that does not exist: List finds
// nothing, Save fails permanently and does not make the folder.
func TestNotCreated(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.Name, func(t *testing.T) {
			b := open(t, srv.Config(t))
			defer func() { _ = b.Close() }()
			backendtest.NotCreated(t, b)
		})
	}
}

// TestApplyEnv checks the variables Opener reads and that a password given
// in the location wins over the environment's.
func TestApplyEnv(t *testing.T) {
	env := map[string]string{EnvPassword: "envpw", EnvCAFile: "/ca.pem"}
	getenv := func(k string) string { return env[k] }
	cfg := Config{Host: "h"}
	if err := cfg.ApplyEnv(getenv); err != nil {
		t.Fatal(err)
	}
	if cfg.Password != "envpw" || cfg.CAFile != "/ca.pem" {
		t.Errorf("ApplyEnv gave password %q, CA file %q", cfg.Password, cfg.CAFile)
	}
	cfg = Config{Host: "h", Password: "fromurl"}
	if err := cfg.ApplyEnv(getenv); err != nil {
		t.Fatal(err)
	}
	if cfg.Password != "fromurl" {
		t.Errorf("ApplyEnv replaced the location's password with %q", cfg.Password)
	}
}

// TestRangedLoadsKeepConnection reads ranges of a pack far from its end,
// as a restore does with the segments of a pack, on every server with and
// without TLS: each must give the right bytes, and a transfer stopped early
// must not cost a new control connection (a new login per segment made
// remote restores several times slower than local ones). Data connections
// are one per transfer in FTP and are not counted.
func TestRangedLoadsKeepConnection(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.Name, func(t *testing.T) {
			t.Parallel()
			cfg := srv.Config(t)
			cfg.Connections = 1
			var mu sync.Mutex
			dials := map[string]int{}
			cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				mu.Lock()
				dials[addr]++
				mu.Unlock()
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}
			control := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
			logins := func() int {
				mu.Lock()
				defer mu.Unlock()
				return dials[control]
			}
			b := open(t, cfg)
			ctx := context.Background()
			if err := b.Create(ctx); err != nil {
				t.Fatal(err)
			}
			data := make([]byte, 3<<20)
			for i := range data {
				data[i] = byte(i*7 + i>>11)
			}
			h := backends.Handle{Type: backends.PackFile, Name: "abcdef"}
			if err := b.Save(ctx, h, backends.NewByteReader(data)); err != nil {
				t.Fatal(err)
			}
			size := int64(len(data))
			loads := []struct {
				offset int64
				length int
				take   int // bytes fn reads; -1 all
			}{
				{0, 100, -1},
				{1 << 20, 1 << 20, -1},        // a segment in the middle
				{5, 1 << 20, 10},              // fn stops long before the end of its range
				{size - 1000, 1000, -1},       // the header at the end
				{size - 40<<10, 10 << 10, -1}, // a little before the end
				{2 << 20, 4096, 0},            // fn reads nothing
				{size - 1, 0, -1},             // to the end
				{123457, 65537, -1},           // odd offsets and lengths
				{size - 2<<20, 2 << 20, -1},   // a range that ends at the end
				{0, 0, 4 << 10},               // the whole file, stopped early
				{size / 2, 3, -1},
			}
			for round := range 2 {
				for _, l := range loads {
					err := backendtest.LoadPart(t, b, h, data, l.length, l.offset, l.take)
					if err != nil {
						t.Fatalf("round %d: Load(%d, %d): %v", round, l.length, l.offset, err)
					}
				}
			}
			// The connection is in step: other commands still work.
			if fi, err := b.Stat(ctx, h); err != nil || fi.Size != size {
				t.Fatalf("Stat after ranged loads: %v, %v", fi, err)
			}
			if got, err := backends.LoadAll(ctx, b, h); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("LoadAll after ranged loads: %d bytes, %v", len(got), err)
			}
			if n := logins(); n != 1 {
				t.Errorf("%d ranged loads made %d control connections, want 1 (the one Open made)", 2*len(loads)+1, n)
			}
		})
	}
}
