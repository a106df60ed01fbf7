// Package s3test runs a real S3 server inside the test process, for the tests
// of backends/s3 and of any package that needs a bucket: versitygw
// (github.com/versity/versitygw) with its posix backend on a temporary
// folder, listening on 127.0.0.1 at a random port. It also has a TCP proxy
// that cuts connections after a number of bytes (Proxy), for fault tests.
//
// versitygw allows one gateway per process, so Start starts it on first use
// and returns the same server afterwards; Stop, called from TestMain after
// m.Run, shuts it down and removes its folders.
//
// Start changes the working directory of the process: versitygw's posix
// backend chdirs into its root folder and resolves buckets relative to it.
// Tests that call Start must use absolute paths (t.TempDir() is absolute).
//
// The gateway reports aborted uploads on stderr ("[INTERNAL ERROR]: unexpected
// EOF"); fault tests provoke them on purpose.
//
// This package is for tests only: importing it links the whole gateway.
package s3test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/versity/versitygw/auth"
	"github.com/versity/versitygw/backend/meta"
	"github.com/versity/versitygw/backend/posix"
	"github.com/versity/versitygw/embedgw"
	"github.com/versity/versitygw/s3api"

	"github.com/hoard-backup/hoard/internal/testenv"
)

// Credentials and region of the server's root account. They are test
// values, not secrets.
const (
	AccessKey = "hoard-test-access"
	SecretKey = "hoard-test-secret-key-0123456789"
	Region    = "us-east-1"
)

// server is the gateway of this process. versitygw itself allows only one
// per process (embedgw keeps package-level state), so this package does too.
var server struct {
	mu       sync.Mutex
	started  bool
	err      error
	endpoint string
	dir      string
	cancel   context.CancelFunc
	done     chan error
}

// Start returns the endpoint (host:port, plain HTTP) and credentials of the
// process's S3 server, starting it on first use. It fails tb if the server
// cannot start. See the package documentation about the working directory.
func Start(tb testing.TB) (endpoint, accessKey, secretKey string) {
	tb.Helper()
	server.mu.Lock()
	defer server.mu.Unlock()
	if !server.started {
		server.started = true
		server.err = start()
	}
	if server.err != nil {
		tb.Fatalf("s3test: %v", server.err)
	}
	return server.endpoint, AccessKey, SecretKey
}

// Stop shuts the server down, if it was started, and removes its folders.
// Call it from TestMain after m.Run. Start fails after Stop.
func Stop() {
	server.mu.Lock()
	defer server.mu.Unlock()
	if server.cancel != nil {
		server.cancel()
		<-server.done
		server.cancel = nil
	}
	if server.dir != "" {
		_ = os.Chdir(os.TempDir()) // leave the folder before removing it
		_ = os.RemoveAll(server.dir)
		server.dir = ""
	}
	if server.err == nil {
		server.err = errors.New("server stopped")
	}
	server.started = true
}

// start launches the gateway and waits until it listens.
func start() error {
	dir, err := testenv.ProcessTempDir("hoard-s3test-")
	if err != nil {
		return err
	}
	server.dir = dir
	root := filepath.Join(dir, "buckets")
	sidecar := filepath.Join(dir, "meta")
	for _, d := range []string{root, sidecar} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	// Object metadata lives in extended attributes where the file system
	// has them, else in a sidecar folder.
	var store meta.MetadataStorer = meta.XattrMeta{}
	if err := (meta.XattrMeta{}).Test(root); err != nil {
		sc, err := meta.NewSideCar(sidecar)
		if err != nil {
			return fmt.Errorf("sidecar metadata: %w", err)
		}
		store = sc
	}
	be, err := posix.New(root, store, posix.PosixOpts{})
	if err != nil {
		return fmt.Errorf("posix backend: %w", err)
	}

	// Several tries, in case another process takes the free port first.
	for range 5 {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		listening := make(chan struct{})
		done := make(chan error, 1)
		cfg := &embedgw.Config{
			RootUserAccess:    AccessKey,
			RootUserSecret:    SecretKey,
			Region:            Region,
			Ports:             []string{addr},
			MaxConnections:    1000,
			MaxRequests:       1000,
			MultipartMaxParts: 10000,
			Quiet:             true,
			IAMService:        auth.NewIAMServiceSingle(auth.Account{Access: AccessKey, Secret: SecretKey, Role: auth.RoleAdmin}),
			S3Options:         []s3api.Option{s3api.WithOnListen(func() { close(listening) })},
		}
		go func() { done <- embedgw.RunVersityGW(ctx, be, cfg) }()
		select {
		case <-listening:
			server.endpoint = addr
			server.cancel = cancel
			server.done = done
			return nil
		case err := <-done:
			cancel()
			if err == nil {
				err = errors.New("gateway stopped at once")
			}
			if !isAddrInUse(err) {
				return fmt.Errorf("gateway: %w", err)
			}
		case <-time.After(30 * time.Second):
			cancel()
			return errors.New("gateway did not listen within 30s")
		}
	}
	return errors.New("gateway: no free port")
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

func isAddrInUse(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "listen"
}
