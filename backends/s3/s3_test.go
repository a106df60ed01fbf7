package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/backendtest"
	"github.com/hoard-backup/hoard/backends/s3"
	"github.com/hoard-backup/hoard/backends/s3/s3test"
)

func TestMain(m *testing.M) {
	code := m.Run()
	s3test.Stop()
	os.Exit(code)
}

// newBucket returns a bucket name no other test uses.
func newBucket(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "hoard-" + hex.EncodeToString(b[:])
}

// testConfig returns a config for a new bucket on the test server, reached
// at addr (the server itself, or a proxy in front of it).
func testConfig(t *testing.T, addr string) s3.Config {
	t.Helper()
	_, access, secret := s3test.Start(t)
	return s3.Config{
		Endpoint:        addr,
		Bucket:          newBucket(t),
		Prefix:          "repo/one",
		InsecureHTTP:    true,
		Region:          s3test.Region,
		AccessKeyID:     access,
		SecretAccessKey: secret,
	}
}

func open(t *testing.T, cfg s3.Config) *s3.Backend {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	be, err := s3.Open(ctx, cfg)
	cancel() // the backend must not keep Open's ctx
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// create opens cfg, creates it and closes it at the end of t.
func create(t *testing.T, cfg s3.Config) *s3.Backend {
	t.Helper()
	be := open(t, cfg)
	t.Cleanup(func() { _ = be.Close() })
	if err := be.Create(context.Background()); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return be
}

func TestBackend(t *testing.T) {
	endpoint, _, _ := s3test.Start(t)
	t.Run("NewBucket", func(t *testing.T) {
		backendtest.Run(t, func(t *testing.T) backends.Backend {
			return open(t, testConfig(t, endpoint))
		})
	})
	t.Run("BucketRoot", func(t *testing.T) {
		backendtest.Run(t, func(t *testing.T) backends.Backend {
			cfg := testConfig(t, endpoint)
			cfg.Prefix = ""
			return open(t, cfg)
		})
	})
	t.Run("SharedBucketPrefix", func(t *testing.T) {
		bucket := newBucket(t)
		var (
			mu sync.Mutex
			i  int
		)
		backendtest.Run(t, func(t *testing.T) backends.Backend {
			cfg := testConfig(t, endpoint)
			cfg.Bucket = bucket
			mu.Lock()
			i++
			cfg.Prefix = fmt.Sprintf("repos/%d", i)
			mu.Unlock()
			return open(t, cfg)
		})
	})
}

// TestNetFaults runs the shared network fault suite: connections cut or
// stalled in the middle of uploads and downloads.
func TestNetFaults(t *testing.T) {
	endpoint, _, _ := s3test.Start(t)
	backendtest.RunNetFaults(t, 30*time.Second, func(t *testing.T, dial backendtest.DialFunc) backends.Backend {
		cfg := testConfig(t, endpoint)
		cfg.Dial = dial
		cfg.Timeout = 2 * time.Second
		return open(t, cfg)
	})
}

// seededRand returns a random source whose seed t logs.
func seededRand(t *testing.T) *mrand.Rand {
	seed := mrand.Uint64()
	t.Logf("seed %d", seed)
	return mrand.New(mrand.NewPCG(seed, seed))
}

func randomBytes(rng *mrand.Rand, n int) []byte {
	buf := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
	}
	return buf[:n]
}

func TestMultipartRoundTrip(t *testing.T) {
	endpoint, _, _ := s3test.Start(t)
	be := create(t, testConfig(t, endpoint))
	h := backends.Handle{Type: backends.PackFile, Name: "ab0123"}
	backendtest.LargeFile(t, be, h, backendtest.Random(t, 40<<20+12345), 16<<20-10) // three parts of 16 MiB
}

// TestMultipartBadReader checks that a reader failing, or yielding the wrong
// number of bytes, in a later part of a multipart upload makes Save fail,
// leaves no object and aborts the upload.
func TestMultipartBadReader(t *testing.T) {
	endpoint, access, secret := s3test.Start(t)
	cfg := testConfig(t, endpoint)
	be := create(t, cfg)
	backendtest.LargeFileBadReaders(t, be, "bb", backendtest.Random(t, 20<<20), 16<<20) // two parts
	client, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Region: s3test.Region})
	if err != nil {
		t.Fatal(err)
	}
	for up := range client.ListIncompleteUploads(context.Background(), cfg.Bucket, "", true) {
		t.Errorf("incomplete upload left: %+v", up)
	}
	// Control: an upload left on purpose is listed.
	core := minio.Core{Client: client}
	id, err := core.NewMultipartUpload(context.Background(), cfg.Bucket, "control", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for up := range client.ListIncompleteUploads(context.Background(), cfg.Bucket, "", true) {
		found = found || up.UploadID == id
	}
	if !found {
		t.Error("ListIncompleteUploads does not show an upload left on purpose: the check above proves nothing")
	}
}

// TestCutConnection cuts the connection to the server in the middle of
// uploads and downloads, through a proxy: Save must fail and leave nothing,
// Load must fail, and the backend must work again afterwards.
func TestCutConnection(t *testing.T) {
	endpoint, _, _ := s3test.Start(t)
	proxy := s3test.NewProxy(t, endpoint)
	be := create(t, testConfig(t, proxy.Addr))
	rng := seededRand(t)
	ctx := context.Background()

	saves := []struct {
		name string
		size int
		cut  int64
	}{
		{"SmallHeaders", 1000, 100},
		{"Small", 256 << 10, 100 << 10},
		{"MultipartFirstPart", 20 << 20, 1 << 20},
		{"MultipartSecondPart", 20 << 20, 17 << 20},
	}
	for i, tc := range saves {
		t.Run("Save"+tc.name, func(t *testing.T) {
			h := backends.Handle{Type: backends.PackFile, Name: fmt.Sprintf("%02x%s", i, "cut")}
			data := randomBytes(rng, tc.size)
			proxy.CutUpload(tc.cut)
			cuts := proxy.Cuts()
			err := be.Save(ctx, h, backends.NewByteReader(data))
			if proxy.Cuts() != cuts+1 {
				t.Fatalf("the proxy did not cut (Save: %v)", err)
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
				t.Fatalf("Load after the cut gave %d bytes, want the %d saved", len(got), len(data))
			}
		})
	}

	t.Run("Load", func(t *testing.T) {
		h := backends.Handle{Type: backends.IndexFile, Name: "loadcut"}
		data := randomBytes(rng, 1<<20)
		if err := be.Save(ctx, h, backends.NewByteReader(data)); err != nil {
			t.Fatal(err)
		}
		for _, length := range []int{0, 900 << 10} {
			proxy.CutDownload(200 << 10)
			var got []byte
			err := be.Load(ctx, h, length, 0, func(rd io.Reader) error {
				var err error
				got, err = io.ReadAll(rd)
				return err
			})
			if err == nil {
				t.Fatalf("Load(length %d) over a cut connection succeeded with %d bytes", length, len(got))
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

// s3Error answers every request with an S3 error.
func s3Error(status int, code string, header http.Header) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>%s</Code><Message>injected</Message><RequestId>1</RequestId></Error>`, code)
		}
	})
}

// TestServerErrors checks how HTTP errors are classified, against a server
// that answers every request with one error. It also shows that TLS is on by
// default: the server only speaks HTTPS.
func TestServerErrors(t *testing.T) {
	tests := []struct {
		status    int
		code      string
		permanent bool
		notExist  bool
	}{
		{http.StatusInternalServerError, "InternalError", false, false},
		{http.StatusServiceUnavailable, "SlowDown", false, false},
		{http.StatusServiceUnavailable, "ServiceUnavailable", false, false},
		{http.StatusTooManyRequests, "TooManyRequests", false, false},
		{http.StatusBadGateway, "BadGateway", false, false},
		{http.StatusForbidden, "AccessDenied", true, false},
		{http.StatusForbidden, "InvalidAccessKeyId", true, false},
		{http.StatusForbidden, "SignatureDoesNotMatch", true, false},
		{http.StatusBadRequest, "InvalidArgument", true, false},
		{http.StatusNotFound, "NoSuchKey", false, true},
	}
	h := backends.Handle{Type: backends.SnapshotFile, Name: "abcdef"}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d%s", tc.status, tc.code), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewTLSServer(s3Error(tc.status, tc.code, http.Header{"Retry-After": {"1"}}))
			t.Cleanup(srv.Close)
			be, err := s3.Open(context.Background(), s3.Config{
				Endpoint:        strings.TrimPrefix(srv.URL, "https://"),
				Bucket:          "bucket",
				Region:          "us-east-1",
				AccessKeyID:     "id",
				SecretAccessKey: "secret-key",
				Transport:       srv.Client().Transport,
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			_, statErr := be.Stat(ctx, h)
			errs := map[string]error{
				"Save": be.Save(ctx, h, backends.NewByteReader([]byte("data"))),
				"Load": be.Load(ctx, h, 0, 0, func(io.Reader) error { return nil }),
				"Stat": statErr,
				"List": be.List(ctx, backends.IndexFile, func(backends.FileInfo) error { return nil }),
			}
			for op, err := range errs {
				if op == "List" && tc.notExist {
					if err != nil { // a missing bucket lists nothing
						t.Errorf("List = %v, want nil", err)
					}
					continue
				}
				if err == nil {
					t.Errorf("%s succeeded", op)
					continue
				}
				if got := errors.Is(err, backends.ErrPermanent); got != tc.permanent {
					t.Errorf("%s = %v: permanent %v, want %v", op, err, got, tc.permanent)
				}
				if got := errors.Is(err, backends.ErrNotExist); got != tc.notExist && op != "Save" {
					t.Errorf("%s = %v: not-exist %v, want %v", op, err, got, tc.notExist)
				}
			}
		})
	}
}

// recorder records the headers of every request it carries.
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []http.Header
	urls []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Header.Clone())
	r.urls = append(r.urls, req.Method+" "+req.URL.Path)
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// TestNoACLAndStorageClass checks that no request ever sets an ACL, and that
// the storage class goes with packs only.
func TestNoACLAndStorageClass(t *testing.T) {
	endpoint, _, _ := s3test.Start(t)
	rec := &recorder{base: http.DefaultTransport}
	cfg := testConfig(t, endpoint)
	cfg.Transport = rec
	cfg.StorageClass = "STANDARD"
	be := create(t, cfg)
	ctx := context.Background()
	pack := backends.Handle{Type: backends.PackFile, Name: "ab01"}
	for _, h := range []backends.Handle{{Type: backends.ConfigFile}, pack} {
		if err := be.Save(ctx, h, backends.NewByteReader([]byte("data"))); err != nil {
			t.Fatal(err)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	classes := 0
	for i, hdr := range rec.reqs {
		for k := range hdr {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-acl") || strings.HasPrefix(strings.ToLower(k), "x-amz-grant") {
				t.Errorf("%s sets %s: %v", rec.urls[i], k, hdr[k])
			}
		}
		if c := hdr.Get("X-Amz-Storage-Class"); c != "" {
			classes++
			if !strings.Contains(rec.urls[i], "/data/ab/ab01") {
				t.Errorf("%s sets storage class %s; only packs should", rec.urls[i], c)
			}
		}
	}
	if classes != 1 {
		t.Errorf("%d requests set a storage class, want 1 (the pack)", classes)
	}
}

func TestCreate(t *testing.T) {
	endpoint, _, _ := s3test.Start(t)
	cfg := testConfig(t, endpoint)
	be := create(t, cfg)
	ctx := context.Background()
	if err := be.Create(ctx); err != nil {
		t.Fatalf("second Create of an existing bucket: %v", err)
	}
	if err := be.Save(ctx, backends.Handle{Type: backends.ConfigFile}, backends.NewByteReader([]byte("cfg"))); err != nil {
		t.Fatal(err)
	}
	if err := be.Create(ctx); !errors.Is(err, backends.ErrExist) {
		t.Fatalf("Create over a config = %v, want ErrExist", err)
	}
	// Another prefix of the same bucket is a new repository.
	cfg.Prefix = "other"
	if err := open(t, cfg).Create(ctx); err != nil {
		t.Fatalf("Create of another prefix: %v", err)
	}
}

// TestSecretsHidden provokes errors with credentials set (a wrong secret
// key, then an unknown session token) and checks that the secret key and
// session token appear in none of them, nor in Location or Redacted.
func TestSecretsHidden(t *testing.T) {
	endpoint, access, _ := s3test.Start(t)
	const secret = "Sup3rS3cretKeyNobodyMayRead"
	const token = "SessionTok3nNobodyMayRead"
	for _, withToken := range []bool{false, true} {
		t.Run(fmt.Sprintf("token=%v", withToken), func(t *testing.T) {
			cfg := testConfig(t, endpoint)
			cfg.AccessKeyID = access
			cfg.SecretAccessKey = secret
			if withToken {
				cfg.SessionToken = token
			}
			be := open(t, cfg)
			h := backends.Handle{Type: backends.KeyFile, Name: "k1"}
			saveErr := be.Save(context.Background(), h, backends.NewByteReader([]byte("x")))
			texts := backendtest.Texts(be, h)
			texts["Redacted"] = cfg.Redacted()
			texts["Save"] = fmt.Sprint(saveErr)
			for _, loc := range []string{
				"s3://id:" + secret + "@host:9000/bucket",
				"s3+http://" + secret + "@127.0.0.1/bucket",
				"s3://host:9000/bucket?secret=" + secret,
			} {
				_, err := s3.ParseConfig(loc)
				if err == nil {
					t.Errorf("ParseConfig(%q) succeeded", loc)
				}
				texts["ParseConfig "+loc[:8]] = fmt.Sprint(err)
			}
			if !errors.Is(saveErr, backends.ErrPermanent) {
				t.Errorf("Save with bad credentials = %v, want ErrPermanent", saveErr)
			}
			backendtest.NoSecrets(t, texts, secret, token)
		})
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		location string
		want     s3.Config
		redacted string
	}{
		{"s3://bucket", s3.Config{Bucket: "bucket"}, "s3://bucket"},
		{"s3://bucket/", s3.Config{Bucket: "bucket"}, "s3://bucket"},
		{"s3://bucket/a/b", s3.Config{Bucket: "bucket", Prefix: "a/b"}, "s3://bucket/a/b"},
		{"s3://s3.amazonaws.com/bucket/prefix", s3.Config{Endpoint: "s3.amazonaws.com", Bucket: "bucket", Prefix: "prefix"}, "s3://s3.amazonaws.com/bucket/prefix"},
		{"s3://s3.amazonaws.com/my.bucket", s3.Config{Endpoint: "s3.amazonaws.com", Bucket: "my.bucket"}, "s3://s3.amazonaws.com/my.bucket"},
		{"s3://minio.example.org:9000/bkt/p/q/", s3.Config{Endpoint: "minio.example.org:9000", Bucket: "bkt", Prefix: "p/q"}, "s3://minio.example.org:9000/bkt/p/q"},
		{"s3://localhost/bkt", s3.Config{Endpoint: "localhost", Bucket: "bkt"}, "s3://localhost/bkt"},
		{"s3+http://127.0.0.1:9000/bkt/x", s3.Config{Endpoint: "127.0.0.1:9000", Bucket: "bkt", Prefix: "x", InsecureHTTP: true}, "s3+http://127.0.0.1:9000/bkt/x"},
		{"s3://[::1]:9000/bkt", s3.Config{Endpoint: "[::1]:9000", Bucket: "bkt"}, "s3://[::1]:9000/bkt"},
	}
	for _, tc := range tests {
		got, err := s3.ParseConfig(tc.location)
		if err != nil {
			t.Errorf("ParseConfig(%q): %v", tc.location, err)
			continue
		}
		if got.Endpoint != tc.want.Endpoint || got.Bucket != tc.want.Bucket || got.Prefix != tc.want.Prefix ||
			got.InsecureHTTP != tc.want.InsecureHTTP {
			t.Errorf("ParseConfig(%q) = %+v, want %+v", tc.location, got, tc.want)
		}
		if r := got.Redacted(); r != tc.redacted {
			t.Errorf("ParseConfig(%q).Redacted() = %q, want %q", tc.location, r, tc.redacted)
		}
	}
	for _, bad := range []string{
		"", "bucket", "s3:bucket", "s3://", "s3:///", "s3://host:9000", "s3://host:9000/",
		"gs://bucket", "s3://ab", "s3://bucket/a//b", "s3://bucket/a/../b",
		"s3://u:p@host/bucket", "s3://bucket?x=1", "s3://host:port:9/bucket",
	} {
		if cfg, err := s3.ParseConfig(bad); err == nil {
			t.Errorf("ParseConfig(%q) = %+v, want an error", bad, cfg)
		}
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		"AWS_ACCESS_KEY_ID":      "AKIAENV",
		"AWS_SECRET_ACCESS_KEY":  "envsecret",
		"AWS_SESSION_TOKEN":      "envtoken",
		"AWS_DEFAULT_REGION":     "eu-west-1",
		"HOARD_S3_BUCKET_LOOKUP": "path",
		"HOARD_S3_STORAGE_CLASS": "STANDARD_IA",
	}
	cfg := s3.Config{Bucket: "bucket"}
	if err := cfg.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.AccessKeyID != "AKIAENV" || cfg.SecretAccessKey != "envsecret" || cfg.SessionToken != "envtoken" ||
		cfg.Region != "eu-west-1" || cfg.BucketLookup != "path" || cfg.StorageClass != "STANDARD_IA" {
		t.Errorf("ApplyEnv gave %+v", cfg)
	}
	if r := cfg.Redacted(); strings.Contains(r, "envsecret") || strings.Contains(r, "envtoken") {
		t.Errorf("Redacted() = %q shows a secret", r)
	}
	env["AWS_REGION"] = "us-west-2"
	cfg = s3.Config{Bucket: "bucket", AccessKeyID: "fromfile", SecretAccessKey: "filesecret"}
	if err := cfg.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.AccessKeyID != "fromfile" || cfg.SecretAccessKey != "filesecret" || cfg.SessionToken != "" || cfg.Region != "us-west-2" {
		t.Errorf("ApplyEnv over config-file credentials gave %+v", cfg)
	}
	for _, bad := range []map[string]string{
		{"HOARD_S3_BUCKET_LOOKUP": "sideways"},
		{"HOARD_S3_STORAGE_CLASS": "GLACIER"},
		{"HOARD_S3_STORAGE_CLASS": "deep_archive"},
	} {
		cfg := s3.Config{Bucket: "bucket"}
		if err := cfg.ApplyEnv(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("ApplyEnv with %v succeeded", bad)
		}
	}
	if _, err := s3.Open(context.Background(), s3.Config{Bucket: "bucket"}); err == nil {
		t.Error("Open without credentials succeeded")
	}
}

// TestCredentialChain: without keys in the config (or the environment),
// the shared credentials file and its AWS_PROFILE are used, as AWS tools
// do; with none of the chain's sources, Open says where it looked.
func TestCredentialChain(t *testing.T) {
	cfg := testConfig(t, "")
	endpoint, access, secret := s3test.Start(t)
	cfg.Endpoint = endpoint
	cfg.AccessKeyID, cfg.SecretAccessKey = "", ""
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
	file := filepath.Join(t.TempDir(), "credentials")
	body := "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[backup]\naws_access_key_id = " + access +
		"\naws_secret_access_key = " + secret + "\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", file)
	t.Setenv("AWS_PROFILE", "backup")
	be := create(t, cfg)
	h := backends.Handle{Type: backends.KeyFile, Name: "k"}
	if err := be.Save(context.Background(), h, backends.NewByteReader([]byte("key"))); err != nil {
		t.Fatalf("save with the profile's credentials: %v", err)
	}
	if got := backendtest.LoadAll(t, be, h); string(got) != "key" {
		t.Fatalf("load: %q", got)
	}

	// No file, no role (the instance metadata service is not reachable
	// here): a clear error.
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("HOME", t.TempDir())
	_, err := s3.Open(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "~/.aws/credentials") {
		t.Fatalf("Open without credentials: %v", err)
	}
}
