package sftp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/backendtest"
	"github.com/hoard-backup/hoard/internal/testenv"
)

// realServer returns a Config for the OpenSSH server that
// scripts/test-servers.sh starts, with Path set to the folder under which
// tests make theirs. Without the server, it skips t, or fails it when the
// CI variable is set.
func realServer(t *testing.T) Config {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the real SFTP server's runs are skipped (the in-process server's are not)")
	}
	missing := func(format string, args ...any) {
		t.Helper()
		testenv.Missing(t, "the real %s server: "+format+" (run scripts/test-servers.sh)", append([]any{"SFTP"}, args...)...)
	}
	url := testenv.Get("HOARD_TEST_SFTP_URL")
	if url == "" {
		missing("HOARD_TEST_SFTP_URL is not set and %s is missing", testenv.ServersFile)
	}
	cfg, err := ParseConfig(strings.TrimSuffix(url, "/") + "/hoard-tests")
	if err != nil {
		t.Fatalf("HOARD_TEST_SFTP_URL: %v", err)
	}
	cfg.KeyFile = testenv.Get("HOARD_TEST_SFTP_KEY")
	cfg.KnownHostsFile = testenv.Get("HOARD_TEST_SFTP_KNOWN_HOSTS")
	port := cfg.Port
	if port == 0 {
		port = DefaultPort
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		missing("%v", err)
	}
	_ = c.Close()
	return cfg
}

// servers returns the in-process server, which lives until the end of t,
// and the real one, which skips (or fails in CI) where it is missing.
func servers(t *testing.T) []backendtest.Server[Config] {
	s := startServer(t)
	return []backendtest.Server[Config]{
		{Name: "InProcess", Config: func(t *testing.T) Config {
			return s.config("repo-" + randomSuffix())
		}},
		{Name: "OpenSSH", Config: func(t *testing.T) Config {
			cfg := realServer(t)
			cfg.Path = path.Join(cfg.Path, randomSuffix())
			top := cfg
			t.Cleanup(func() { removeAll(t, top) })
			cfg.Path = path.Join(cfg.Path, "repo")
			return cfg
		}},
	}
}

// removeAll removes cfg.Path on the server: with rm -rf over SSH where the
// user has a shell (one round trip instead of thousands), else over SFTP.
func removeAll(t *testing.T, cfg Config) {
	t.Helper()
	b, err := Open(context.Background(), cfg)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer func() { _ = b.Close() }()
	c, err := b.client(context.Background())
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	if s, err := c.ssh.NewSession(); err == nil {
		err = s.Run("rm -rf -- '" + strings.ReplaceAll(cfg.Path, "'", `'\''`) + "'")
		_ = s.Close()
		if err == nil {
			return
		}
	}
	if err := c.sftp.RemoveAll(cfg.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cleanup of %s: %v", cfg.Path, err)
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
		{"sftp://backup@nas.example/srv/repo", Config{User: "backup", Host: "nas.example", Path: "srv/repo"}, "sftp://backup@nas.example/srv/repo"},
		{"sftp://backup@nas.example//srv/repo", Config{User: "backup", Host: "nas.example", Path: "/srv/repo"}, "sftp://backup@nas.example//srv/repo"},
		{"sftp://nas:2222/repo", Config{Host: "nas", Port: 2222, Path: "repo"}, "sftp://nas:2222/repo"},
		{"sftp://u@[::1]:22/repo", Config{User: "u", Host: "::1", Port: 22, Path: "repo"}, "sftp://u@[::1]/repo"},
		{"sftp://u@[::1]:2200/a%20b", Config{User: "u", Host: "::1", Port: 2200, Path: "a b"}, "sftp://u@[::1]:2200/a%20b"},
	}
	for _, tc := range tests {
		cfg, err := ParseConfig(tc.location)
		if err != nil {
			t.Errorf("ParseConfig(%q): %v", tc.location, err)
			continue
		}
		if cfg.User != tc.want.User || cfg.Host != tc.want.Host || cfg.Port != tc.want.Port || cfg.Path != tc.want.Path {
			t.Errorf("ParseConfig(%q) = %#v, want %#v", tc.location, cfg, tc.want)
		}
		if got := cfg.Redacted(); got != tc.redacted {
			t.Errorf("ParseConfig(%q).Redacted() = %q, want %q", tc.location, got, tc.redacted)
		}
		if again, err := ParseConfig(cfg.Redacted()); err != nil || again.Path != cfg.Path || again.Host != cfg.Host {
			t.Errorf("ParseConfig(Redacted()) of %q = %#v, %v", tc.location, again, err)
		}
	}
	for _, bad := range []string{
		"", "sftp://", "sftp://host", "sftp://host/", "sftp://host//", "ftp://host/repo",
		"sftp://host:99999/repo", "sftp://host:x/repo", "sftp://host/repo?x=1", "sftp://@/repo",
	} {
		if cfg, err := ParseConfig(bad); err == nil {
			t.Errorf("ParseConfig(%q) = %#v, want an error", bad, cfg)
		}
	}
}

// TestSecretsNotShown provokes errors with a password in the location, the
// config and the environment and checks that it appears in none of them.
func TestSecretsNotShown(t *testing.T) {
	const secret = "Sup3rSecretPassw0rd"
	var texts []string
	for _, location := range []string{
		"sftp://user:" + secret + "@host/repo",
		"sftp://user:" + secret + "@host:bad/repo",
		"sftp://user:" + secret + "@host/repo?x",
		"sftp://user:" + secret + "@ho%zzst/repo",
	} {
		_, err := ParseConfig(location)
		if err == nil {
			t.Errorf("ParseConfig(%q) succeeded", location)
			continue
		}
		texts = append(texts, err.Error())
	}
	srv := startServer(t)
	cfg := srv.config("repo")
	cfg.KeyFile = ""
	cfg.Password = secret // wrong
	_, err := Open(context.Background(), cfg)
	if !errors.Is(err, backends.ErrPermanent) {
		t.Errorf("Open with a wrong password = %v, want ErrPermanent", err)
	}
	texts = append(texts, err.Error(), cfg.String(), cfg.Redacted(), cfg.GoString())
	cfg.Port = 1 // nothing listens
	_, err = Open(context.Background(), cfg)
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	texts = append(texts, err.Error())
	t.Setenv(EnvPassword, secret)
	_, err = Opener(context.Background(), "sftp://user@127.0.0.1:1/repo")
	if err == nil {
		t.Fatal("Opener of a closed port succeeded")
	}
	texts = append(texts, err.Error())
	all := map[string]string{}
	for i, text := range texts {
		all[fmt.Sprint("text ", i)] = text
	}
	backendtest.NoSecrets(t, all, secret)
}

func TestHostKey(t *testing.T) {
	srv := startServer(t)
	fingerprint := ssh.FingerprintSHA256(srv.hostKey.PublicKey())
	other := newSigner(t)
	dir := t.TempDir()
	addr := net.JoinHostPort(srv.host, strconv.Itoa(srv.port))
	write := func(name, content string) string {
		p := path.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, knownHosts string
		want             []string // in the error
	}{
		{"missing", path.Join(dir, "absent"), []string{fingerprint, "ssh-keyscan -p " + strconv.Itoa(srv.port), "is not in"}},
		{"empty", write("empty", ""), []string{fingerprint, "ssh-keyscan", "is not in"}},
		{"otherHost", write("other", knownhosts.Line([]string{"example.org"}, srv.hostKey.PublicKey())+"\n"), []string{fingerprint, "is not in"}},
		{"changed", write("changed", knownhosts.Line([]string{addr}, other.PublicKey())+"\n"), []string{fingerprint, "does not match", "changed:1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := srv.config("repo")
			cfg.KnownHostsFile = tc.knownHosts
			b, err := Open(context.Background(), cfg)
			if err == nil {
				_ = b.Close()
				t.Fatal("Open succeeded")
			}
			t.Logf("Open: %v", err)
			if !errors.Is(err, backends.ErrPermanent) {
				t.Errorf("Open = %v, want ErrPermanent", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open = %v, want it to mention %q", err, w)
				}
			}
		})
	}
	t.Run("hashed", func(t *testing.T) {
		cfg := srv.config("repo")
		line := knownhosts.Line([]string{knownhosts.HashHostname(knownhosts.Normalize(addr))}, srv.hostKey.PublicKey())
		cfg.KnownHostsFile = write("hashed", line+"\n")
		b := open(t, cfg)
		_ = b.Close()
	})
}

func TestAuth(t *testing.T) {
	srv := startServer(t)
	t.Run("password", func(t *testing.T) {
		cfg := srv.config("repo")
		cfg.KeyFile, cfg.Password = "", srv.password
		b := open(t, cfg)
		_ = b.Close()
	})
	t.Run("wrongKey", func(t *testing.T) {
		cfg := srv.config("repo")
		_, cfg.KeyFile = newKeyFile(t, t.TempDir())
		_, err := Open(context.Background(), cfg)
		if !errors.Is(err, backends.ErrPermanent) || !strings.Contains(err.Error(), "log in") {
			t.Errorf("Open with an unknown key = %v, want a login error matching ErrPermanent", err)
		}
	})
	t.Run("missingKeyFile", func(t *testing.T) {
		cfg := srv.config("repo")
		cfg.KeyFile = path.Join(t.TempDir(), "absent")
		if _, err := Open(context.Background(), cfg); !errors.Is(err, backends.ErrPermanent) {
			t.Errorf("Open with a missing key file = %v, want ErrPermanent", err)
		}
	})
	t.Run("nothing", func(t *testing.T) {
		cfg := srv.config("repo")
		cfg.KeyFile = ""
		t.Setenv("HOME", t.TempDir()) // no default keys
		if _, err := Open(context.Background(), cfg); !errors.Is(err, backends.ErrPermanent) {
			t.Errorf("Open without credentials = %v, want ErrPermanent", err)
		}
	})
	t.Run("agent", func(t *testing.T) {
		keyring := agent.NewKeyring()
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
			t.Fatal(err)
		}
		signer, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		srv.clientKey = signer // the server now accepts the agent's key only
		sock := path.Join(t.TempDir(), "agent.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Go(func() { _ = agent.ServeAgent(keyring, c); _ = c.Close() })
			}
		})
		t.Setenv(EnvAgent, sock)
		cfg := srv.config("repo")
		cfg.KeyFile, cfg.UseAgent = "", true
		b := open(t, cfg)
		_ = b.Close()
	})
}

// TestRealPassword logs in to the real server with its password.
func TestRealPassword(t *testing.T) {
	cfg := realServer(t)
	cfg.KeyFile, cfg.Password = "", testenv.Get("HOARD_TEST_SFTP_PASSWORD")
	if cfg.Password == "" {
		t.Skip("no HOARD_TEST_SFTP_PASSWORD")
	}
	b := open(t, cfg)
	defer func() { _ = b.Close() }()
	if _, err := b.Stat(context.Background(), backends.Handle{Type: backends.ConfigFile}); !errors.Is(err, backends.ErrNotExist) {
		t.Errorf("Stat of a missing config = %v, want ErrNotExist", err)
	}
	cfg.Password += "-wrong"
	if _, err := Open(context.Background(), cfg); !errors.Is(err, backends.ErrPermanent) || strings.Contains(err.Error(), cfg.Password) {
		t.Errorf("Open with a wrong password = %v, want ErrPermanent without the password", err)
	}
}

// TestModes checks that folders are 0700 and files 0600 on the server,
// whatever its umask.
func TestModes(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.Name, func(t *testing.T) {
			cfg := srv.Config(t)
			b := open(t, cfg)
			defer func() { _ = b.Close() }()
			ctx := context.Background()
			if err := b.Create(ctx); err != nil {
				t.Fatal(err)
			}
			pack := backends.Handle{Type: backends.PackFile, Name: "abcdef0123"}
			for _, h := range []backends.Handle{{Type: backends.ConfigFile}, pack, {Type: backends.KeyFile, Name: "k1"}} {
				if err := b.Save(ctx, h, backends.NewByteReader([]byte("data"))); err != nil {
					t.Fatal(err)
				}
			}
			c, err := b.client(ctx)
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			walker := c.sftp.Walk(b.root)
			for walker.Step() {
				if err := walker.Err(); err != nil {
					t.Fatal(err)
				}
				fi := walker.Stat()
				want := fileMode
				if fi.IsDir() {
					want = dirMode
				}
				if fi.Mode().Perm() != want {
					t.Errorf("%s has mode %#o, want %#o", walker.Path(), fi.Mode().Perm(), want)
				}
				checked++
			}
			if want := 1 + 5 + 256 + 3; checked != want {
				t.Errorf("repository holds %d entries, want %d", checked, want)
			}
			if err := b.Create(ctx); !errors.Is(err, backends.ErrExist) {
				t.Errorf("Create over a config = %v, want ErrExist", err)
			}
		})
	}
}

// TestNoPosixRename saves over an existing file on a server without the
// posix-rename extension (remove, then rename).
func TestNoPosixRename(t *testing.T) {
	srv := startServer(t)
	b := open(t, srv.config("repo"))
	defer func() { _ = b.Close() }()
	ctx := context.Background()
	c, err := b.client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.posixRename = false
	if err := b.Create(ctx); err != nil {
		t.Fatal(err)
	}
	h := backends.Handle{Type: backends.LockFile, Name: "lock"}
	for _, data := range []string{"first", "second"} {
		if err := b.Save(ctx, h, backends.NewByteReader([]byte(data))); err != nil {
			t.Fatalf("Save(%q): %v", data, err)
		}
		got, err := backends.LoadAll(ctx, b, h)
		if err != nil || string(got) != data {
			t.Errorf("Load = %q, %v; want %q", got, err, data)
		}
	}
}

// TestDiskFull fills the in-process server's disk (a flag) and, where
// scripts/test-servers.sh could mount it, a 1 MiB tmpfs under the real
// server: Save fails with a clear, permanent error and leaves nothing.
func TestDiskFull(t *testing.T) {
	check := func(t *testing.T, b *Backend, size int) {
		t.Helper()
		h := backends.Handle{Type: backends.PackFile, Name: "ab" + randomSuffix()}
		err := b.Save(context.Background(), h, backends.NewByteReader(make([]byte, size)))
		t.Logf("Save: %v", err)
		if !errors.Is(err, backends.ErrPermanent) || !strings.Contains(err.Error(), "no space left") {
			t.Errorf("Save on a full disk = %v, want ErrPermanent saying no space left", err)
		}
		if _, err := b.Stat(context.Background(), h); !errors.Is(err, backends.ErrNotExist) {
			t.Errorf("Stat after a failed Save = %v, want ErrNotExist", err)
		}
		if err := b.List(context.Background(), backends.PackFile, func(fi backends.FileInfo) error {
			t.Errorf("List after a failed Save shows %v", fi)
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
	t.Run("InProcess", func(t *testing.T) {
		srv := startServer(t)
		b := open(t, srv.config("repo"))
		defer func() { _ = b.Close() }()
		if err := b.Create(context.Background()); err != nil {
			t.Fatal(err)
		}
		srv.diskFull.Store(true)
		check(t, b, 100<<10)
	})
	t.Run("OpenSSH", func(t *testing.T) {
		cfg := realServer(t)
		full := testenv.Get("HOARD_TEST_FULL_DIR")
		if full == "" {
			testenv.Missing(t, "a small file system on the real server (scripts/test-servers.sh could not mount one)")
		}
		cfg.Path = path.Join(full, randomSuffix())
		t.Cleanup(func() { removeAll(t, cfg) })
		b := open(t, cfg)
		defer func() { _ = b.Close() }()
		if err := b.Create(context.Background()); err != nil {
			t.Fatal(err)
		}
		check(t, b, 2<<20) // the file system holds 1 MiB
	})
}

// TestReconnect closes the server side of the connection; the next calls
// make a new one.
func TestReconnect(t *testing.T) {
	srv := startServer(t)
	b := open(t, srv.config("repo"))
	defer func() { _ = b.Close() }()
	ctx := context.Background()
	if err := b.Create(ctx); err != nil {
		t.Fatal(err)
	}
	h := backends.Handle{Type: backends.KeyFile, Name: "k"}
	if err := b.Save(ctx, h, backends.NewByteReader([]byte("key"))); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	for c := range srv.conns {
		_ = c.Close()
	}
	srv.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := b.Stat(ctx, h)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Stat after the server dropped the connection: %v", err)
		}
	}
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

// TestApplyEnv checks the variables Opener reads and that fields already set
// win over the environment's.
func TestApplyEnv(t *testing.T) {
	env := map[string]string{EnvKeyFile: "/k", EnvKnownHosts: "/kh", EnvPassword: "pw", EnvAgent: "/agent.sock"}
	getenv := func(k string) string { return env[k] }
	cfg := Config{Host: "h"}
	if err := cfg.ApplyEnv(getenv); err != nil {
		t.Fatal(err)
	}
	if cfg.KeyFile != "/k" || cfg.KnownHostsFile != "/kh" || cfg.Password != "pw" || !cfg.UseAgent {
		t.Errorf("ApplyEnv gave %#v (password %q, agent %v)", cfg, cfg.Password, cfg.UseAgent)
	}
	cfg = Config{Host: "h", KeyFile: "/mine"}
	if err := cfg.ApplyEnv(func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if cfg.KeyFile != "/mine" || cfg.UseAgent {
		t.Errorf("ApplyEnv with an empty environment gave key %q, agent %v", cfg.KeyFile, cfg.UseAgent)
	}
}

// TestRangedLoads reads ranges of a pack as a restore does, on both
// servers: each gives the right bytes, including when fn stops early, and
// the in-process server sees no stat for them (a round trip per pack
// segment that a ranged read does not need). A range beyond the end is
// still ErrRange.
func TestRangedLoads(t *testing.T) {
	srv := startServer(t)
	configs := []backendtest.Server[Config]{
		{Name: "InProcess", Config: func(*testing.T) Config { return srv.config("repo-" + randomSuffix()) }},
		servers(t)[1], // OpenSSH
	}
	for _, s := range configs {
		t.Run(s.Name, func(t *testing.T) {
			cfg := s.Config(t)
			inProcess := s.Name == "InProcess"
			b := open(t, cfg)
			defer func() { _ = b.Close() }()
			ctx := context.Background()
			if err := b.Create(ctx); err != nil {
				t.Fatal(err)
			}
			data := make([]byte, 3<<20+12345)
			for i := range data {
				data[i] = byte(i*7 + i>>11)
			}
			size := int64(len(data))
			h := backends.Handle{Type: backends.PackFile, Name: "abcdef"}
			if err := b.Save(ctx, h, backends.NewByteReader(data)); err != nil {
				t.Fatal(err)
			}
			stats := srv.stats.Load()
			loads := []struct {
				offset int64
				length int
				take   int // bytes fn reads; -1 all
			}{
				{0, 100, -1},
				{1 << 20, 1 << 20, -1},
				{5, 1 << 20, 10},
				{size - 1000, 1000, -1},
				{123457, 65537, -1},
				{size - 2<<20, 2 << 20, -1},
				{2 << 20, 4096, 0},
				{size / 2, 3, -1},
			}
			for _, l := range loads {
				err := backendtest.LoadPart(t, b, h, data, l.length, l.offset, l.take)
				if err != nil {
					t.Fatalf("Load(%d, %d): %v", l.length, l.offset, err)
				}
			}
			if n := srv.stats.Load() - stats; inProcess && n != 0 {
				t.Errorf("%d ranged loads asked the server for %d stats, want none", len(loads), n)
			}
			err := b.Load(ctx, h, 10, size+1, func(rd io.Reader) error {
				_, err := io.ReadAll(rd)
				return err
			})
			if !errors.Is(err, backends.ErrRange) {
				t.Errorf("Load(10, %d) of a %d-byte file = %v, want ErrRange", size+1, size, err)
			}
		})
	}
}

// TestConnectionLostMidLoad drops the server's connections while fn reads
// a range: Load fails with an error (not a short read that looks whole),
// and the next Load reconnects and gives the right bytes.
func TestConnectionLostMidLoad(t *testing.T) {
	srv := startServer(t)
	b := open(t, srv.config("repo"))
	defer func() { _ = b.Close() }()
	ctx := context.Background()
	if err := b.Create(ctx); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i*13 + i>>9)
	}
	h := backends.Handle{Type: backends.PackFile, Name: "abcdef"}
	if err := b.Save(ctx, h, backends.NewByteReader(data)); err != nil {
		t.Fatal(err)
	}
	err := b.Load(ctx, h, len(data), 0, func(rd io.Reader) error {
		if _, err := io.ReadFull(rd, make([]byte, 1000)); err != nil {
			return err
		}
		srv.mu.Lock()
		for c := range srv.conns {
			_ = c.Close()
		}
		srv.mu.Unlock()
		_, err := io.Copy(io.Discard, rd)
		return err
	})
	if err == nil {
		t.Fatal("Load over a connection dropped mid-read succeeded")
	}
	t.Logf("Load over a dropped connection: %v", err)
	got, err := backends.LoadAll(ctx, b, h)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("LoadAll after the connection was dropped: %d bytes, %v", len(got), err)
	}
}
