package dropbox_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/backendtest"
	"github.com/hoard-backup/hoard/backends/dropbox"
	"github.com/hoard-backup/hoard/backends/dropbox/dropboxtest"
)

// folder returns a new folder name for one backend on a shared server.
func folder(n *atomic.Int64) string {
	return fmt.Sprintf("/Backups/Repo%d", n.Add(1))
}

func open(t *testing.T, cfg dropbox.Config) *dropbox.Backend {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	be, err := dropbox.Open(ctx, cfg)
	cancel() // the backend must not keep Open's ctx
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	return be
}

func tokenConfig(srv *dropboxtest.Server, path string) dropbox.Config {
	return dropbox.Config{Path: path, AccessToken: srv.Token, APIURL: srv.URL}
}

func refreshConfig(srv *dropboxtest.Server, path string) dropbox.Config {
	return dropbox.Config{Path: path, RefreshToken: srv.RefreshToken, AppKey: srv.AppKey, AppSecret: srv.AppSecret, APIURL: srv.URL}
}

func TestBackend(t *testing.T) {
	srv := dropboxtest.NewServer(t)
	srv.PageSize = 3 // exercise list_folder/continue
	var n atomic.Int64
	t.Run("AccessToken", func(t *testing.T) {
		backendtest.Run(t, func(t *testing.T) backends.Backend {
			return open(t, tokenConfig(srv, folder(&n)))
		})
	})
	t.Run("RefreshToken", func(t *testing.T) {
		backendtest.Run(t, func(t *testing.T) backends.Backend {
			return open(t, refreshConfig(srv, folder(&n)))
		})
	})
	t.Run("Root", func(t *testing.T) {
		backendtest.Run(t, func(t *testing.T) backends.Backend {
			// A server of its own: the root is shared by everything on it.
			own := dropboxtest.NewServer(t)
			return open(t, tokenConfig(own, ""))
		})
	})
}

// TestNetFaults runs the shared network fault suite: connections cut or
// stalled in the middle of uploads and downloads.
func TestNetFaults(t *testing.T) {
	srv := dropboxtest.NewServer(t)
	var n atomic.Int64
	backendtest.RunNetFaults(t, 30*time.Second, func(t *testing.T, dial backendtest.DialFunc) backends.Backend {
		cfg := tokenConfig(srv, folder(&n))
		cfg.Dial = dial
		cfg.Timeout = 2 * time.Second
		return open(t, cfg)
	})
}

func seededRand(t *testing.T) *rand.Rand {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed))
}

func randomBytes(rng *rand.Rand, n int) []byte {
	buf := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
	}
	return buf[:n]
}

func TestLargeFile(t *testing.T) {
	srv := dropboxtest.NewServer(t)
	be := open(t, tokenConfig(srv, "/repo"))
	rng := seededRand(t)
	ctx := context.Background()
	for _, size := range []int{dropbox.ChunkSize, dropbox.ChunkSize + 1, 2*dropbox.ChunkSize + 12345} {
		h := backends.Handle{Type: backends.PackFile, Name: fmt.Sprintf("ab%08x", size)}
		data := randomBytes(rng, size)
		starts := srv.Calls("files/upload_session/start")
		if err := be.Save(ctx, h, backends.NewByteReader(data)); err != nil {
			t.Fatalf("Save of %d bytes: %v", size, err)
		}
		if sessions := srv.Calls("files/upload_session/start") - starts; (size > dropbox.ChunkSize) != (sessions == 1) {
			t.Errorf("Save of %d bytes started %d upload sessions", size, sessions)
		}
		if got := backendtest.LoadAll(t, be, h); !bytes.Equal(got, data) {
			t.Fatalf("Load of %d bytes: got %d bytes or wrong content", size, len(got))
		}
		off := int64(dropbox.ChunkSize - 10)
		var part []byte
		err := be.Load(ctx, h, 20, off, func(rd io.Reader) error {
			var err error
			part, err = io.ReadAll(rd)
			return err
		})
		if want := data[off:min(int(off)+20, size)]; err != nil && len(want) == 20 || !bytes.Equal(part, want) {
			t.Errorf("ranged Load across the chunk boundary: %v, %d bytes", err, len(part))
		}
	}
	if n := srv.OpenSessions(); n != 0 {
		t.Errorf("%d upload sessions left open", n)
	}
}

func TestLargeFileBadReader(t *testing.T) {
	srv := dropboxtest.NewServer(t)
	be := open(t, tokenConfig(srv, "/repo"))
	backendtest.LargeFileBadReaders(t, be, "cd", backendtest.Random(t, 3*dropbox.ChunkSize), dropbox.ChunkSize)
}

// TestCutConnection drops the connection in the middle of uploads and
// downloads: Save fails and leaves nothing, Load fails, and the backend
// works again afterwards.
func TestCutConnection(t *testing.T) {
	srv := dropboxtest.NewServer(t)
	be := open(t, tokenConfig(srv, "/repo"))
	rng := seededRand(t)
	ctx := context.Background()
	saves := []struct {
		route string
		size  int
	}{
		{"files/upload", 100 << 10},
		{"files/upload_session/start", 2*dropbox.ChunkSize + 10},
		{"files/upload_session/append_v2", 2*dropbox.ChunkSize + 10},
		{"files/upload_session/finish", 2*dropbox.ChunkSize + 10},
	}
	for i, tc := range saves {
		t.Run("Save "+tc.route, func(t *testing.T) {
			h := backends.Handle{Type: backends.PackFile, Name: fmt.Sprintf("ef%d", i)}
			data := randomBytes(rng, tc.size)
			srv.InjectFault(dropboxtest.Fault{Route: tc.route, CutRequestAfter: 5000})
			calls := srv.Calls(tc.route)
			err := be.Save(ctx, h, backends.NewByteReader(data))
			if srv.Calls(tc.route) == calls {
				t.Fatalf("Save did not call %s", tc.route)
			}
			if err == nil {
				t.Fatal("Save over a cut connection succeeded")
			}
			if errors.Is(err, backends.ErrPermanent) {
				t.Errorf("Save over a cut connection = %v, want a retryable error", err)
			}
			t.Logf("Save: %v", err)
			backendtest.AssertAbsent(t, be, h)
			if err := be.Save(ctx, h, backends.NewByteReader(data)); err != nil {
				t.Fatalf("Save after the cut: %v", err)
			}
			if got := backendtest.LoadAll(t, be, h); !bytes.Equal(got, data) {
				t.Fatal("Load after the cut gave wrong data")
			}
		})
	}
	t.Run("Load", func(t *testing.T) {
		h := backends.Handle{Type: backends.IndexFile, Name: "cut"}
		data := randomBytes(rng, 1<<20)
		if err := be.Save(ctx, h, backends.NewByteReader(data)); err != nil {
			t.Fatal(err)
		}
		for _, length := range []int{0, 900 << 10} {
			srv.InjectFault(dropboxtest.Fault{Route: "files/download", CutResponseAfter: 200 << 10})
			err := be.Load(ctx, h, length, 0, func(rd io.Reader) error {
				_, err := io.Copy(io.Discard, rd)
				return err
			})
			if err == nil {
				t.Fatalf("Load(length %d) over a cut connection succeeded", length)
			}
			if errors.Is(err, backends.ErrPermanent) || errors.Is(err, backends.ErrNotExist) {
				t.Errorf("Load over a cut connection = %v, want a retryable error", err)
			}
			t.Logf("Load: %v", err)
		}
		if got := backendtest.LoadAll(t, be, h); !bytes.Equal(got, data) {
			t.Fatal("Load after the cut gave wrong data")
		}
	})
}

// TestTransientErrors checks that 429 and 5xx answers on every route are
// retryable errors that carry the server's Retry-After.
func TestTransientErrors(t *testing.T) {
	srv := dropboxtest.NewServer(t)
	be := open(t, tokenConfig(srv, "/repo"))
	ctx := context.Background()
	h := backends.Handle{Type: backends.SnapshotFile, Name: "s1"}
	if err := be.Save(ctx, h, backends.NewByteReader([]byte("snapshot"))); err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		route string
		run   func() error
	}{
		{"files/upload", func() error {
			return be.Save(ctx, backends.Handle{Type: backends.SnapshotFile, Name: "s2"}, backends.NewByteReader([]byte("x")))
		}},
		{"files/download", func() error { _, err := backends.LoadAll(ctx, be, h); return err }},
		{"files/get_metadata", func() error { _, err := be.Stat(ctx, h); return err }},
		{"files/list_folder", func() error {
			return be.List(ctx, backends.SnapshotFile, func(backends.FileInfo) error { return nil })
		}},
		{"files/delete_v2", func() error { return be.Remove(ctx, h) }},
	}
	for _, status := range []int{429, 500, 503} {
		for _, op := range ops {
			t.Run(fmt.Sprintf("%d %s", status, op.route), func(t *testing.T) {
				srv.InjectFault(dropboxtest.Fault{Route: op.route, Status: status, RetryAfter: 7 * time.Second})
				err := op.run()
				if err == nil {
					t.Fatal("succeeded")
				}
				if errors.Is(err, backends.ErrPermanent) || errors.Is(err, backends.ErrNotExist) {
					t.Errorf("%v: want a retryable error", err)
				}
				var ra interface{ RetryAfter() time.Duration }
				if !errors.As(err, &ra) || ra.RetryAfter() != 7*time.Second {
					t.Errorf("%v: want an error with RetryAfter 7s", err)
				}
				var te *dropbox.TransientError
				if !errors.As(err, &te) || te.StatusCode != status {
					t.Errorf("%v: want a *TransientError with status %d", err, status)
				}
			})
		}
	}
	// A 429 without Retry-After header still carries the body's retry_after.
	srv.InjectFault(dropboxtest.Fault{Route: "files/get_metadata", Status: 429, RetryAfter: 2 * time.Second})
	_, err := be.Stat(ctx, h)
	var te *dropbox.TransientError
	if !errors.As(err, &te) || te.Wait != 2*time.Second {
		t.Errorf("Stat after 429 = %v", err)
	}
	if _, err := be.Stat(ctx, h); err != nil {
		t.Errorf("Stat after the faults: %v", err)
	}
}

func TestPermanentErrors(t *testing.T) {
	srv := dropboxtest.NewServer(t)
	ctx := context.Background()
	h := backends.Handle{Type: backends.KeyFile, Name: "k1"}
	t.Run("InvalidToken", func(t *testing.T) {
		be := open(t, dropbox.Config{Path: "/repo", AccessToken: "wrong", APIURL: srv.URL})
		if err := be.Create(ctx); !errors.Is(err, backends.ErrPermanent) {
			t.Errorf("Create with an invalid token = %v, want ErrPermanent", err)
		}
		if err := be.Save(ctx, h, backends.NewByteReader([]byte("x"))); !errors.Is(err, backends.ErrPermanent) {
			t.Errorf("Save with an invalid token = %v, want ErrPermanent", err)
		}
	})
	t.Run("BadRefreshToken", func(t *testing.T) {
		cfg := refreshConfig(srv, "/repo")
		cfg.RefreshToken = "revoked"
		be := open(t, cfg)
		if _, err := be.Stat(ctx, h); !errors.Is(err, backends.ErrPermanent) {
			t.Errorf("Stat with a revoked refresh token = %v, want ErrPermanent", err)
		}
	})
	t.Run("Full", func(t *testing.T) {
		srv := dropboxtest.NewServer(t)
		srv.SetQuota(10 << 20)
		be := open(t, tokenConfig(srv, "/repo"))
		for _, size := range []int{11 << 20, 20 << 20} {
			err := be.Save(ctx, backends.Handle{Type: backends.PackFile, Name: fmt.Sprintf("ff%d", size)},
				backends.NewByteReader(make([]byte, size)))
			if !errors.Is(err, backends.ErrPermanent) || !strings.Contains(err.Error(), "full") {
				t.Errorf("Save of %d bytes into a full Dropbox = %v, want ErrPermanent saying it is full", size, err)
			}
		}
	})
	t.Run("ExpiredAccessToken", func(t *testing.T) {
		srv := dropboxtest.NewServer(t)
		be := open(t, tokenConfig(srv, "/repo"))
		srv.ExpireTokens()
		if _, err := be.Stat(ctx, h); !errors.Is(err, backends.ErrPermanent) {
			t.Errorf("Stat with an expired access token = %v, want ErrPermanent", err)
		}
	})
	t.Run("ExpiredWithRefresh", func(t *testing.T) {
		srv := dropboxtest.NewServer(t)
		be := open(t, refreshConfig(srv, "/repo"))
		if _, err := be.Stat(ctx, h); !errors.Is(err, backends.ErrNotExist) {
			t.Fatalf("Stat = %v, want ErrNotExist", err)
		}
		srv.ExpireTokens()
		_, err := be.Stat(ctx, h)
		if err == nil || errors.Is(err, backends.ErrPermanent) {
			t.Errorf("Stat with an expired token and a refresh token = %v, want a retryable error", err)
		}
		if _, err := be.Stat(ctx, h); !errors.Is(err, backends.ErrNotExist) {
			t.Errorf("Stat after the refresh = %v, want ErrNotExist", err)
		}
		if n := srv.Calls("oauth2/token"); n != 2 {
			t.Errorf("%d calls to the token endpoint, want 2", n)
		}
	})
}

func TestConflict(t *testing.T) {
	srv := dropboxtest.NewServer(t)
	be := open(t, tokenConfig(srv, "/repo"))
	ctx := context.Background()
	rng := seededRand(t)
	for _, size := range []int{100, 2*dropbox.ChunkSize + 1} {
		h := backends.Handle{Type: backends.PackFile, Name: fmt.Sprintf("aa%d", size)}
		data := randomBytes(rng, size)
		if err := be.Save(ctx, h, backends.NewByteReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := be.Save(ctx, h, backends.NewByteReader(data)); err != nil {
			t.Errorf("second Save of the same %d bytes: %v", size, err)
		}
		other := randomBytes(rng, size)
		if err := be.Save(ctx, h, backends.NewByteReader(other)); !errors.Is(err, backends.ErrExist) {
			t.Errorf("Save of other content under an existing name = %v, want ErrExist", err)
		}
		if got := backendtest.LoadAll(t, be, h); !bytes.Equal(got, data) {
			t.Error("the first content was not kept")
		}
	}
	if err := be.Create(ctx); err != nil {
		t.Errorf("Create without a config: %v", err)
	}
	if err := be.Save(ctx, backends.Handle{Type: backends.ConfigFile}, backends.NewByteReader([]byte("c"))); err != nil {
		t.Fatal(err)
	}
	if err := be.Create(ctx); !errors.Is(err, backends.ErrExist) {
		t.Errorf("Create over a config = %v, want ErrExist", err)
	}
}

// TestSecretsHidden provokes errors with credentials set and checks that
// tokens and the app secret appear in none of them, nor in Location or
// Redacted.
func TestSecretsHidden(t *testing.T) {
	srv := dropboxtest.NewServer(t)
	const token = "sl.SecretAccessTokenNobodyMayRead"
	const refresh = "SecretRefreshTokenNobodyMayRead"
	const appSecret = "SecretAppSecretNobodyMayRead"
	h := backends.Handle{Type: backends.LockFile, Name: "l1"}
	texts := map[string]string{}
	for _, cfg := range []dropbox.Config{
		{Path: "/repo", AccessToken: token, APIURL: srv.URL},
		{Path: "/repo", RefreshToken: refresh, AppKey: srv.AppKey, AppSecret: appSecret, APIURL: srv.URL},
		{Path: "/repo", RefreshToken: refresh, AppKey: srv.AppKey, AppSecret: srv.AppSecret, APIURL: srv.URL},
	} {
		be := open(t, cfg)
		got := backendtest.Texts(be, h)
		got["Redacted"] = cfg.Redacted()
		for what, text := range got {
			texts[fmt.Sprintf("%s (%s)", what, cfg.Redacted())] = text
		}
	}
	for _, loc := range []string{"dropbox://" + token + "@/repo", "dropbox://" + token + "/repo", "dropbox:///repo?token=" + token} {
		_, err := dropbox.ParseConfig(loc)
		if err == nil {
			t.Errorf("ParseConfig(%q) succeeded", loc)
		}
		texts["ParseConfig"] = fmt.Sprint(err)
	}
	backendtest.NoSecrets(t, texts, token, refresh, appSecret, srv.AppSecret)
}

func TestParseConfig(t *testing.T) {
	tests := []struct{ location, path, redacted string }{
		{"dropbox:///", "", "dropbox:///"},
		{"dropbox://", "", "dropbox:///"},
		{"dropbox:///Backups/hoard", "/Backups/hoard", "dropbox:///Backups/hoard"},
		{"dropbox:///Backups/hoard/", "/Backups/hoard", "dropbox:///Backups/hoard"},
	}
	for _, tc := range tests {
		cfg, err := dropbox.ParseConfig(tc.location)
		if err != nil {
			t.Errorf("ParseConfig(%q): %v", tc.location, err)
			continue
		}
		if cfg.Path != tc.path || cfg.Redacted() != tc.redacted {
			t.Errorf("ParseConfig(%q) = path %q, redacted %q; want %q, %q", tc.location, cfg.Path, cfg.Redacted(), tc.path, tc.redacted)
		}
	}
	for _, bad := range []string{
		"", "/path", "dropbox:/path", "dropbox://host/path", "dropbox:///a//b", "dropbox:///a/../b",
		"dropbox:///a/./b", "dropbox:///a?b", "s3:///x",
	} {
		if cfg, err := dropbox.ParseConfig(bad); err == nil {
			t.Errorf("ParseConfig(%q) = %+v, want an error", bad, cfg)
		}
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		dropbox.EnvToken:        "tok",
		dropbox.EnvRefreshToken: "ref",
		dropbox.EnvAppKey:       "key",
		dropbox.EnvAppSecret:    "sec",
		dropbox.EnvAPIURL:       "http://127.0.0.1:8080",
	}
	cfg := dropbox.Config{Path: "/x"}
	if err := cfg.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.AccessToken != "tok" || cfg.RefreshToken != "ref" || cfg.AppKey != "key" || cfg.AppSecret != "sec" || cfg.APIURL != "http://127.0.0.1:8080" {
		t.Errorf("ApplyEnv gave %+v", cfg)
	}
	cfg = dropbox.Config{Path: "/x", RefreshToken: "fromfile"}
	if err := cfg.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.AccessToken != "" || cfg.RefreshToken != "fromfile" {
		t.Errorf("ApplyEnv over config-file credentials gave %+v", cfg)
	}
	for _, u := range []string{"http://example.com", "ftp://127.0.0.1", "https://u:p@host", "https://host/path", "://"} {
		cfg := dropbox.Config{APIURL: u, AccessToken: "t"}
		if _, err := dropbox.Open(context.Background(), cfg); err == nil {
			t.Errorf("Open with API URL %q succeeded", u)
		}
	}
	if _, err := dropbox.Open(context.Background(), dropbox.Config{Path: "/x"}); err == nil {
		t.Error("Open without credentials succeeded")
	}
}
