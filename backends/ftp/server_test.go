package ftp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

// testServer is an in-process FTP server (fclairamb/ftpserverlib) on
// 127.0.0.1 over a folder of the local disk, with explicit TLS, for tests
// where no real server runs.
type testServer struct {
	host     string
	port     int
	root     string
	user     string
	password string
	caFile   string // the server's self-signed certificate, to trust

	diskFull atomic.Bool  // writes fail with 552 (storage exceeded)
	clients  atomic.Int64 // connected control connections
	echoPass bool         // the login error repeats the password, as a careless server might

	ln  net.Listener
	tls *tls.Config
}

// startServer starts a server that lives until the end of t.
func startServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	s := &testServer{
		root:     filepath.Join(dir, "root"),
		user:     "tester",
		password: "in-process-secret-" + randomSuffix(),
	}
	if err := os.Mkdir(s.root, 0o700); err != nil {
		t.Fatal(err)
	}
	s.tls, s.caFile = selfSigned(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.host, s.port = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	srv := ftpserver.NewFtpServer(&driver{s: s})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve() // returns when stopped
	}()
	t.Cleanup(func() {
		_ = srv.Stop()
		<-done
	})
	return s
}

// config returns a Config for the repository at path on s.
func (s *testServer) config(path string, useTLS bool) Config {
	cfg := Config{User: s.user, Password: s.password, Host: s.host, Port: s.port, Path: path}
	if useTLS {
		cfg.TLS, cfg.CAFile = true, s.caFile
	}
	return cfg
}

// selfSigned makes a certificate for 127.0.0.1 and writes it to dir.
func selfSigned(t *testing.T, dir string) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(name, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, name
}

// driver is the server's MainDriver.
type driver struct{ s *testServer }

func (d *driver) GetSettings() (*ftpserver.Settings, error) {
	return &ftpserver.Settings{
		Listener:          d.s.ln,
		PublicHost:        "127.0.0.1",
		IdleTimeout:       60,
		ConnectionTimeout: 10,
	}, nil
}

func (d *driver) ClientConnected(ftpserver.ClientContext) (string, error) {
	d.s.clients.Add(1)
	return "hoard test server", nil
}

func (d *driver) ClientDisconnected(ftpserver.ClientContext) { d.s.clients.Add(-1) }

func (d *driver) AuthUser(_ ftpserver.ClientContext, user, pass string) (ftpserver.ClientDriver, error) {
	if user != d.s.user || pass != d.s.password {
		if d.s.echoPass {
			return nil, fmt.Errorf("wrong password %q for %s", pass, user)
		}
		return nil, errors.New("wrong user or password")
	}
	return &fullableFs{Fs: afero.NewBasePathFs(afero.NewOsFs(), d.s.root), full: &d.s.diskFull}, nil
}

func (d *driver) GetTLSConfig() (*tls.Config, error) { return d.s.tls, nil }

// fullableFs makes the files it opens for writing fail while full is set.
type fullableFs struct {
	afero.Fs
	full *atomic.Bool
}

func (f *fullableFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	file, err := f.Fs.OpenFile(name, flag, perm)
	if err != nil || flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return file, err
	}
	return &fullableFile{File: file, full: f.full}, nil
}

type fullableFile struct {
	afero.File
	full *atomic.Bool
}

func (f *fullableFile) Write(p []byte) (int, error) {
	if f.full.Load() {
		return 0, ftpserver.ErrStorageExceeded
	}
	return f.File.Write(p)
}
