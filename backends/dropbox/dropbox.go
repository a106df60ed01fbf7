package dropbox

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	sdk "github.com/dropbox/dropbox-sdk-go-unofficial/v6/dropbox"
	"github.com/dropbox/dropbox-sdk-go-unofficial/v6/dropbox/contenthash"
	"github.com/dropbox/dropbox-sdk-go-unofficial/v6/dropbox/files"
	"golang.org/x/oauth2"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/internal/httpconn"
)

// ChunkSize is the size of the files sent with one upload call, and of the
// pieces of larger files sent through an upload session. It is a multiple
// of Dropbox's 4 MiB hash block, and bounds the memory of one Save.
const ChunkSize = 8 << 20

// listLimit is the most entries asked for per list_folder page.
const listLimit = 2000

// Opener opens the Dropbox backend that location names (see ParseConfig),
// with credentials from the environment (see Config.ApplyEnv). It has the
// signature of backends.Opener.
func Opener(ctx context.Context, location string) (backends.Backend, error) {
	cfg, err := ParseConfig(location)
	if err != nil {
		return nil, err
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return nil, fmt.Errorf("dropbox: %s: %w", cfg.location(), err)
	}
	return Open(ctx, cfg)
}

// Backend is a repository in a Dropbox folder. All methods are safe for
// concurrent use.
type Backend struct {
	client      files.ContextClient
	transport   http.RoundTripper
	refresh     *refreshSource // nil with a fixed access token
	root        string
	location    string
	connections int
	secrets     []string // never to be shown in an error
}

var (
	_ backends.Backend = (*Backend)(nil)
	_ backends.Creator = (*Backend)(nil)
)

// Open returns a backend for cfg. It checks cfg but does not contact
// Dropbox (Create or the first request does). Open does not keep ctx.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dropbox: open: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("dropbox: open %s: %w", cfg.location(), err)
	}
	base := cfg.Transport
	if base == nil {
		timeout := cfg.Timeout
		if timeout == 0 {
			timeout = DefaultTimeout
		}
		def, ok := http.DefaultTransport.(*http.Transport)
		if !ok {
			def = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
		}
		base = httpconn.NewTransport(def, cfg.Dial, timeout)
	}
	api, content, tokenURL := "https://api.dropboxapi.com", "https://content.dropboxapi.com", "https://api.dropboxapi.com/oauth2/token"
	if cfg.APIURL != "" {
		u, err := apiBase(cfg.APIURL)
		if err != nil {
			return nil, fmt.Errorf("dropbox: open: %w", err)
		}
		api, content, tokenURL = u, u, u+"/oauth2/token"
	}
	b := &Backend{
		transport:   base,
		root:        cfg.Path,
		location:    cfg.location(),
		connections: cfg.Connections,
	}
	if b.connections == 0 {
		b.connections = DefaultConnections
	}
	var source oauth2.TokenSource
	switch {
	case cfg.AccessToken != "":
		source = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: cfg.AccessToken, TokenType: "Bearer"})
	case cfg.RefreshToken != "" && cfg.AppKey != "":
		b.refresh = &refreshSource{
			cfg: &oauth2.Config{
				ClientID:     cfg.AppKey,
				ClientSecret: cfg.AppSecret,
				Endpoint:     oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams},
			},
			ctx:     context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: classifier{base}}),
			refresh: cfg.RefreshToken,
		}
		source = b.refresh
	default:
		return nil, fmt.Errorf("dropbox: open %s: no credentials: set %s, or %s and %s", b.location, EnvToken, EnvRefreshToken, EnvAppKey)
	}
	for _, s := range []string{cfg.AccessToken, cfg.RefreshToken, cfg.AppSecret} {
		if len(s) >= 4 {
			b.secrets = append(b.secrets, s)
		}
	}
	b.client = files.NewContext(sdk.Config{
		Client: &http.Client{Transport: &oauth2.Transport{Source: source, Base: classifier{base}}},
		URLGenerator: func(hostType, namespace, route string) string {
			host := api
			if hostType == "content" {
				host = content
			}
			return host + "/2/" + namespace + "/" + route
		},
	})
	return b, nil
}

// Location returns the repository URL, without credentials.
func (b *Backend) Location() string { return b.location }

// Properties reports the configured connections. Saving over an existing
// file is refused unless the content is the same (files are immutable), so
// there is no atomic replace.
func (b *Backend) Properties() backends.Properties {
	return backends.Properties{Connections: b.connections}
}

// Close releases idle connections.
func (b *Backend) Close() error {
	if t, ok := b.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	return nil
}

// Create checks the credentials and that the folder holds no repository
// yet; it returns an error wrapping backends.ErrExist if it holds a config.
// Folders need no creating: Dropbox makes them on upload.
func (b *Backend) Create(ctx context.Context) error {
	_, err := b.Stat(ctx, backends.Handle{Type: backends.ConfigFile})
	switch {
	case err == nil:
		return fmt.Errorf("dropbox: create %s: %w", b.location, backends.ErrExist)
	case errors.Is(err, backends.ErrNotExist):
		return nil
	}
	return err
}

// Save uploads rd: in one call up to ChunkSize bytes, else through an upload
// session committed at the end. Either way Dropbox makes the file visible
// only once it is complete. Each call carries the content hash of its
// bytes, so damage in transit is refused by Dropbox. The upload never
// overwrites: if a file exists under h with other content the Save fails
// with backends.ErrExist; with the same content it succeeds.
func (b *Backend) Save(ctx context.Context, h backends.Handle, rd backends.RewindReader) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dropbox: save %s: %w", h, err)
	}
	path, err := b.path(h)
	if err != nil {
		return fmt.Errorf("dropbox: save: %w", err)
	}
	size := rd.Length()
	if size < 0 {
		return fmt.Errorf("dropbox: save %s: reader has negative length %d: %w", h, size, backends.ErrPermanent)
	}
	up := &upload{b: b, h: h, rd: backends.ContextReader(ctx, rd), size: size, hash: contenthash.New(),
		buf: make([]byte, min(size, ChunkSize))}
	commit := files.NewCommitInfo(path) // mode add, no autorename
	commit.Mute = true
	var md *files.FileMetadata
	var summary string
	if size <= ChunkSize {
		chunk, hash, err := up.next()
		if err != nil {
			return err
		}
		arg := &files.UploadArg{CommitInfo: *commit, ContentHash: hash}
		md, err = b.client.UploadContext(ctx, arg, bytes.NewReader(chunk))
		if err != nil {
			summary = summaryOf[files.UploadAPIError](err)
		}
		return up.committed(ctx, path, md, err, summary)
	}
	return up.session(ctx, path, commit)
}

// upload is the state of one Save.
type upload struct {
	b    *Backend
	h    backends.Handle
	rd   io.Reader
	size int64
	read int64
	hash *contenthash.Hasher // of the whole file
	buf  []byte
}

// next reads the next chunk and returns it with its content hash. After
// the last chunk it checks that the reader ends there.
func (u *upload) next() ([]byte, string, error) {
	n := min(int64(len(u.buf)), u.size-u.read)
	chunk := u.buf[:n]
	if m, err := io.ReadFull(u.rd, chunk); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("reader ended %d bytes before its Length: %w", u.size-u.read-int64(m), io.ErrUnexpectedEOF)
		}
		return nil, "", fmt.Errorf("dropbox: save %s: %w", u.h, err)
	}
	u.read += n
	if u.read == u.size {
		var one [1]byte
		if m, err := io.ReadFull(u.rd, one[:]); m > 0 {
			return nil, "", fmt.Errorf("dropbox: save %s: reader yields more bytes than its Length %d", u.h, u.size)
		} else if err != nil && !errors.Is(err, io.EOF) {
			return nil, "", fmt.Errorf("dropbox: save %s: %w", u.h, err)
		}
	}
	_, _ = u.hash.Write(chunk) // never fails
	h := contenthash.New()
	_, _ = h.Write(chunk)
	return chunk, hex.EncodeToString(h.Sum(nil)), nil
}

// session uploads a file larger than ChunkSize through an upload session.
func (u *upload) session(ctx context.Context, path string, commit *files.CommitInfo) error {
	chunk, hash, err := u.next()
	if err != nil {
		return err
	}
	start, err := u.b.client.UploadSessionStartContext(ctx, &files.UploadSessionStartArg{ContentHash: hash}, bytes.NewReader(chunk))
	if err != nil {
		return u.b.fail(ctx, "save "+u.h.String()+": start upload session", err, summaryOf[files.UploadSessionStartAPIError](err))
	}
	for {
		offset := u.read
		chunk, hash, err := u.next()
		if err != nil {
			return err // the session expires unused
		}
		cursor := files.NewUploadSessionCursor(start.SessionId, uint64(offset))
		if u.read == u.size {
			arg := &files.UploadSessionFinishArg{Cursor: cursor, Commit: commit, ContentHash: hash}
			md, err := u.b.client.UploadSessionFinishContext(ctx, arg, bytes.NewReader(chunk))
			var summary string
			if err != nil {
				summary = summaryOf[files.UploadSessionFinishAPIError](err)
			}
			return u.committed(ctx, path, md, err, summary)
		}
		arg := &files.UploadSessionAppendArg{Cursor: cursor, ContentHash: hash}
		if err := u.b.client.UploadSessionAppendV2Context(ctx, arg, bytes.NewReader(chunk)); err != nil {
			return u.saveFail(ctx, err, summaryOf[files.UploadSessionAppendV2APIError](err))
		}
	}
}

// committed checks the outcome of the call that commits the file: a
// conflict is fine if the existing file has the same content, and the
// committed file must have the size and hash sent.
func (u *upload) committed(ctx context.Context, path string, md *files.FileMetadata, err error, summary string) error {
	want := hex.EncodeToString(u.hash.Sum(nil))
	if err != nil {
		if !strings.Contains(summary, "conflict") {
			return u.saveFail(ctx, err, summary)
		}
		fi, serr := u.b.metadata(ctx, path)
		switch {
		case serr != nil:
			return fmt.Errorf("dropbox: save %s: the name is taken, and checking the file there failed: %w", u.h, serr)
		case fi.Size == uint64(u.size) && (fi.ContentHash == "" || fi.ContentHash == want):
			return nil // already there, as it is content-addressed
		}
		return fmt.Errorf("dropbox: save %s: a different file of %d bytes exists under this name: %w (%w)",
			u.h, fi.Size, backends.ErrExist, backends.ErrPermanent)
	}
	if md == nil || md.Size != uint64(u.size) || (md.ContentHash != "" && md.ContentHash != want) {
		return fmt.Errorf("dropbox: save %s: the committed file differs from the %d bytes sent", u.h, u.size)
	}
	return nil
}

// saveFail is fail for Save, where "not found" means an upload session has
// expired or vanished, which a retry from the start fixes.
func (u *upload) saveFail(ctx context.Context, err error, summary string) error {
	err = u.b.fail(ctx, "save "+u.h.String(), err, summary)
	if errors.Is(err, backends.ErrNotExist) {
		return fmt.Errorf("dropbox: save %s: the upload session is gone (%s)", u.h, summary)
	}
	return err
}

// Load calls fn with a reader of the requested range of h, from a download
// with a Range header.
func (b *Backend) Load(ctx context.Context, h backends.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dropbox: load %s: %w", h, err)
	}
	path, err := b.path(h)
	if err != nil {
		return fmt.Errorf("dropbox: load: %w", err)
	}
	if length < 0 || offset < 0 {
		return fmt.Errorf("dropbox: load %s: length %d, offset %d: %w", h, length, offset, backends.ErrRange)
	}
	arg := files.NewDownloadArg(path)
	switch {
	case length > 0:
		arg.ExtraHeaders = map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", offset, offset+int64(length)-1)}
	case offset > 0:
		arg.ExtraHeaders = map[string]string{"Range": fmt.Sprintf("bytes=%d-", offset)}
	}
	md, body, err := b.client.DownloadContext(ctx, arg)
	if err != nil {
		err = b.fail(ctx, "load "+h.String(), err, summaryOf[files.DownloadAPIError](err))
		if !errors.Is(err, backends.ErrRange) {
			return err
		}
		// Nothing lies at offset: fine if offset is the end of the file.
		fi, serr := b.Stat(ctx, h)
		switch {
		case serr != nil:
			return serr
		case offset > fi.Size:
			return fmt.Errorf("dropbox: load %s: offset %d beyond size %d: %w", h, offset, fi.Size, backends.ErrRange)
		case offset < fi.Size:
			return fmt.Errorf("dropbox: load %s: the server refused offset %d of a %d-byte file", h, offset, fi.Size)
		}
		return fn(backends.ExactReader(strings.NewReader(""), int64(length)))
	}
	defer func() { _ = body.Close() }() // read-only: nothing to lose
	want := int64(length)
	if length == 0 {
		want = int64(md.Size) - offset
	}
	return fn(backends.ExactReader(backends.ContextReader(ctx, body), want))
}

// Stat returns the size of h.
func (b *Backend) Stat(ctx context.Context, h backends.Handle) (backends.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return backends.FileInfo{}, fmt.Errorf("dropbox: stat %s: %w", h, err)
	}
	path, err := b.path(h)
	if err != nil {
		return backends.FileInfo{}, fmt.Errorf("dropbox: stat: %w", err)
	}
	md, err := b.metadata(ctx, path)
	if err != nil {
		return backends.FileInfo{}, fmt.Errorf("dropbox: stat %s: %w", h, err)
	}
	return backends.FileInfo{Name: h.Name, Size: int64(md.Size)}, nil
}

// metadata returns the metadata of the file at path.
func (b *Backend) metadata(ctx context.Context, path string) (*files.FileMetadata, error) {
	res, err := b.client.GetMetadataContext(ctx, files.NewGetMetadataArg(path))
	if err != nil {
		return nil, b.fail(ctx, "get metadata", err, summaryOf[files.GetMetadataAPIError](err))
	}
	md, ok := res.(*files.FileMetadata)
	if !ok {
		return nil, fmt.Errorf("dropbox: %s is not a file: %w", path, backends.ErrPermanent)
	}
	return md, nil
}

// Remove deletes h.
func (b *Backend) Remove(ctx context.Context, h backends.Handle) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dropbox: remove %s: %w", h, err)
	}
	path, err := b.path(h)
	if err != nil {
		return fmt.Errorf("dropbox: remove: %w", err)
	}
	if _, err := b.client.DeleteV2Context(ctx, files.NewDeleteArg(path)); err != nil {
		return b.fail(ctx, "remove "+h.String(), err, summaryOf[files.DeleteV2APIError](err))
	}
	return nil
}

// List calls fn for each file of type t, listing the folder of t
// (recursively for data/, whose files sit in shard folders) page by page.
// Names that are not valid handles, and packs outside their shard, are
// skipped. A missing folder lists nothing.
func (b *Backend) List(ctx context.Context, t backends.FileType, fn func(backends.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dropbox: list %s: %w", t, err)
	}
	if t == backends.ConfigFile {
		return backends.ListConfig(ctx, "dropbox", b.Stat, fn)
	}
	if err := (backends.Handle{Type: t, Name: "x"}).Valid(); err != nil {
		return fmt.Errorf("dropbox: list: %w (%w)", err, backends.ErrPermanent)
	}
	dir := b.root + "/" + string(t)
	arg := files.NewListFolderArg(dir)
	arg.Recursive = t == backends.PackFile
	arg.Limit = listLimit
	res, err := b.client.ListFolderContext(ctx, arg)
	if err != nil {
		err = b.fail(ctx, "list "+string(t), err, summaryOf[files.ListFolderAPIError](err))
		if errors.Is(err, backends.ErrNotExist) {
			return nil
		}
		return err
	}
	depth := strings.Count(dir, "/")
	for {
		for _, e := range res.Entries {
			f, ok := e.(*files.FileMetadata)
			if !ok || !strings.HasPrefix(f.PathLower, strings.ToLower(dir)+"/") {
				continue
			}
			name, ok := listedName(t, f.PathDisplay, depth)
			if !ok {
				continue
			}
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("dropbox: list %s: %w", t, err)
			}
			if err := fn(backends.FileInfo{Name: name, Size: int64(f.Size)}); err != nil {
				return err
			}
		}
		if !res.HasMore {
			return nil
		}
		res, err = b.client.ListFolderContinueContext(ctx, files.NewListFolderContinueArg(res.Cursor))
		if err != nil {
			return b.fail(ctx, "list "+string(t), err, summaryOf[files.ListFolderContinueAPIError](err))
		}
	}
}

// listedName returns the file name of the listed path display, whose folder
// of type t has depth slashes, and whether Load would find it under that name.
func listedName(t backends.FileType, display string, depth int) (string, bool) {
	segs := strings.Split(display, "/")
	if len(segs) <= depth+1 {
		return "", false
	}
	rel := segs[depth+1:]
	name := rel[len(rel)-1]
	switch {
	case t == backends.PackFile && (len(rel) != 2 || len(rel[0]) != 2 || !strings.HasPrefix(strings.ToLower(name), strings.ToLower(rel[0]))):
		return "", false
	case t != backends.PackFile && len(rel) != 1:
		return "", false
	}
	if (backends.Handle{Type: t, Name: name}).Valid() != nil {
		return "", false
	}
	return name, true
}

// path returns the Dropbox path of h after checking that h is valid: the
// repository layout of every backend (backends.Path).
func (b *Backend) path(h backends.Handle) (string, error) {
	p, err := backends.Path(h)
	if err != nil {
		return "", err
	}
	return b.root + "/" + p, nil
}
