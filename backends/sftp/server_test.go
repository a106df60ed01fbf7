package sftp

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// testServer is an in-process SSH server on 127.0.0.1 whose SFTP subsystem
// is pkg/sftp's request server over a folder of the local disk, for tests
// where no real server runs.
type testServer struct {
	host       string
	port       int
	root       string // the folder that the server's "/" is
	keyFile    string // the client's private key
	clientKey  ssh.Signer
	knownHosts string // a known_hosts file with the server's key
	hostKey    ssh.Signer
	password   string

	diskFull atomic.Bool  // writes fail with ENOSPC and statvfs shows no space
	stats    atomic.Int64 // Stat and Fstat requests served

	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startServer starts a server that lives until the end of t.
func startServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	s := &testServer{
		root:     filepath.Join(dir, "root"),
		password: "in-process-secret-" + randomSuffix(),
		conns:    make(map[net.Conn]struct{}),
	}
	if err := os.Mkdir(s.root, 0o700); err != nil {
		t.Fatal(err)
	}
	s.hostKey = newSigner(t)
	s.clientKey, s.keyFile = newKeyFile(t, dir)

	config := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(s.clientKey.PublicKey().Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
		PasswordCallback: func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) == s.password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
	}
	config.AddHostKey(s.hostKey)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	addr := ln.Addr().(*net.TCPAddr)
	s.host, s.port = "127.0.0.1", addr.Port
	s.knownHosts = filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{net.JoinHostPort(s.host, strconv.Itoa(s.port))}, s.hostKey.PublicKey())
	if err := os.WriteFile(s.knownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Go(func() {
				s.serve(c, config)
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// config returns a Config for the repository at path on s, logging in with
// the key.
func (s *testServer) config(path string) Config {
	return Config{
		User:           "tester",
		Host:           s.host,
		Port:           s.port,
		Path:           path,
		KeyFile:        s.keyFile,
		KnownHostsFile: s.knownHosts,
	}
}

// serve runs one SSH connection.
func (s *testServer) serve(c net.Conn, config *ssh.ServerConfig) {
	defer func() { _ = c.Close() }()
	sc, chans, reqs, err := ssh.NewServerConn(c, config)
	if err != nil {
		return
	}
	defer func() { _ = sc.Close() }()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { ssh.DiscardRequests(reqs) })
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Go(func() { s.session(ch, creqs) })
	}
}

// session serves the sftp subsystem on one channel.
func (s *testServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer func() { _ = ch.Close() }()
	for req := range reqs {
		ok := req.Type == "subsystem" && len(req.Payload) > 4 && string(req.Payload[4:]) == "sftp"
		_ = req.Reply(ok, nil)
		if !ok {
			continue
		}
		go ssh.DiscardRequests(reqs) // later requests on the channel
		h := &osHandler{s: s}
		srv := sftp.NewRequestServer(ch, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h})
		_ = srv.Serve() // ends when the client goes
		_ = srv.Close()
		return
	}
}

// newSigner returns a fresh ed25519 key.
func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newKeyFile writes a fresh ed25519 private key in OpenSSH format to dir.
func newKeyFile(t *testing.T, dir string) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(name, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, name
}

// osHandler implements the request server's handlers over s.root, with
// OpenSSH's semantics where they matter to the backend: plain rename does
// not replace, posix-rename does, a full disk is a generic failure.
type osHandler struct{ s *testServer }

func (h *osHandler) path(p string) string {
	return filepath.Join(h.s.root, filepath.FromSlash(p)) // p is absolute and clean
}

func (h *osHandler) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	return os.Open(h.path(r.Filepath))
}

func (h *osHandler) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	fl := r.Pflags()
	flags := os.O_WRONLY
	if fl.Read {
		flags = os.O_RDWR
	}
	if fl.Creat {
		flags |= os.O_CREATE
	}
	if fl.Trunc {
		flags |= os.O_TRUNC
	}
	if fl.Excl {
		flags |= os.O_EXCL
	}
	f, err := os.OpenFile(h.path(r.Filepath), flags, 0o644)
	if err != nil {
		return nil, err
	}
	return &fullableFile{File: f, full: &h.s.diskFull}, nil
}

// fullableFile fails writes with ENOSPC while full is set.
type fullableFile struct {
	*os.File
	full *atomic.Bool
}

func (f *fullableFile) WriteAt(p []byte, off int64) (int, error) {
	if f.full.Load() {
		return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.WriteAt(p, off)
}

func (h *osHandler) Filecmd(r *sftp.Request) error {
	p := h.path(r.Filepath)
	switch r.Method {
	case "Setstat":
		fl, attrs := r.AttrFlags(), r.Attributes()
		if fl.Permissions {
			if err := os.Chmod(p, attrs.FileMode().Perm()); err != nil {
				return err
			}
		}
		if fl.Size {
			return os.Truncate(p, int64(attrs.Size))
		}
		return nil
	case "Rename":
		target := h.path(r.Target)
		if _, err := os.Lstat(target); err == nil {
			return &os.LinkError{Op: "rename", Old: p, New: target, Err: syscall.EEXIST}
		}
		return os.Rename(p, target)
	case "Rmdir":
		return syscall.Rmdir(p)
	case "Mkdir":
		return os.Mkdir(p, 0o755)
	case "Remove":
		return syscall.Unlink(p)
	}
	return sftp.ErrSSHFxOpUnsupported
}

func (h *osHandler) PosixRename(r *sftp.Request) error {
	return os.Rename(h.path(r.Filepath), h.path(r.Target))
}

func (h *osHandler) StatVFS(r *sftp.Request) (*sftp.StatVFS, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(h.path(r.Filepath), &st); err != nil {
		return nil, err
	}
	v := &sftp.StatVFS{
		Bsize: uint64(st.Bsize), Frsize: uint64(st.Frsize), Blocks: st.Blocks,
		Bfree: st.Bfree, Bavail: st.Bavail, Files: st.Files, Ffree: st.Ffree,
		Favail: st.Ffree, Namemax: uint64(st.Namelen),
	}
	if h.s.diskFull.Load() {
		v.Bfree, v.Bavail = 0, 0
	}
	return v, nil
}

func (h *osHandler) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	p := h.path(r.Filepath)
	if r.Method == "Stat" {
		h.s.stats.Add(1)
	}
	switch r.Method {
	case "List":
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var infos listerAt
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil {
				continue // removed meanwhile
			}
			infos = append(infos, fi)
		}
		return infos, nil
	case "Stat":
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		return listerAt{fi}, nil
	case "Lstat":
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		return listerAt{fi}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// listerAt is a static sftp.ListerAt.
type listerAt []os.FileInfo

func (l listerAt) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if n < len(out) {
		return n, io.EOF
	}
	return n, nil
}
