package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/internal/httpconn"
)

// Opener opens the S3 backend that location names (see ParseConfig), with
// credentials and options from the environment (see Config.ApplyEnv). It has
// the signature of backends.Opener; register it for both Scheme and
// SchemeHTTP.
func Opener(ctx context.Context, location string) (backends.Backend, error) {
	cfg, err := ParseConfig(location)
	if err != nil {
		return nil, err
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return nil, fmt.Errorf("s3: %s: %w", cfg.location(), err)
	}
	return Open(ctx, cfg)
}

// Backend is a repository in an S3 bucket. All methods are safe for
// concurrent use.
type Backend struct {
	client       *minio.Client
	core         minio.Core
	transport    http.RoundTripper
	bucket       string
	prefix       string
	region       string
	storageClass string
	connections  int
	location     string
	secrets      []string // never to be shown in an error
}

var (
	_ backends.Backend = (*Backend)(nil)
	_ backends.Creator = (*Backend)(nil)
)

// Open returns a backend for the bucket and prefix of cfg. It checks cfg
// but does not contact the server (Create or the first request does). Open
// does not keep ctx.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3: open: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("s3: open %s: %w", cfg.location(), err)
	}
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return nil, errNoCredentials // half a key pair is a mistake, not a cue to look elsewhere
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = AWSEndpoint
	}
	transport := cfg.Transport
	if transport == nil {
		t, err := minio.DefaultTransport(!cfg.InsecureHTTP)
		if err != nil {
			return nil, fmt.Errorf("s3: open %s: %w", cfg.location(), err)
		}
		timeout := cfg.Timeout
		if timeout == 0 {
			timeout = DefaultTimeout
		}
		transport = httpconn.NewTransport(t, cfg.Dial, timeout)
	}
	lookup := minio.BucketLookupAuto
	switch strings.ToLower(cfg.BucketLookup) {
	case LookupPath:
		lookup = minio.BucketLookupPath
	case LookupDNS:
		lookup = minio.BucketLookupDNS
	}
	creds := credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)
	if cfg.AccessKeyID == "" {
		var err error
		if creds, err = chainCredentials(); err != nil {
			return nil, err
		}
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds:        creds,
		Secure:       !cfg.InsecureHTTP,
		Transport:    transport,
		Region:       cfg.Region,
		BucketLookup: lookup,
		MaxRetries:   1, // retrying is backends/retry's job
	})
	if err != nil {
		return nil, fmt.Errorf("s3: open %s: %w", cfg.location(), err)
	}
	conns := cfg.Connections
	if conns == 0 {
		conns = DefaultConnections
	}
	b := &Backend{
		client:       client,
		core:         minio.Core{Client: client},
		transport:    transport,
		bucket:       cfg.Bucket,
		prefix:       cfg.Prefix,
		region:       cfg.Region,
		storageClass: strings.ToUpper(cfg.StorageClass),
		connections:  conns,
		location:     cfg.location(),
	}
	for _, s := range []string{cfg.SecretAccessKey, cfg.SessionToken} {
		if len(s) >= 4 { // shorter ones would match too much text to be worth hiding
			b.secrets = append(b.secrets, s)
		}
	}
	return b, nil
}

// Location returns the repository URL, without credentials.
func (b *Backend) Location() string { return b.location }

// Properties reports the configured connections and atomic replace (an S3
// PUT replaces an object atomically).
func (b *Backend) Properties() backends.Properties {
	return backends.Properties{Connections: b.connections, HasAtomicReplace: true}
}

// Close releases idle connections.
func (b *Backend) Close() error {
	if t, ok := b.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	return nil
}

// Create makes the bucket unless it exists and belongs to the caller's
// account, with the region of the config and no ACL (buckets are private).
// It returns an error wrapping backends.ErrExist if the location already
// holds a config.
func (b *Backend) Create(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: create: %w", err)
	}
	exists, err := b.client.BucketExists(ctx, b.bucket)
	if err != nil {
		return b.fail(ctx, "create bucket "+b.bucket, err)
	}
	if !exists {
		err := b.client.MakeBucket(ctx, b.bucket, minio.MakeBucketOptions{Region: b.region})
		var resp minio.ErrorResponse
		switch {
		case err == nil:
		case errors.As(err, &resp) && resp.Code == "BucketAlreadyOwnedByYou":
			// Made by a concurrent Create.
		case errors.As(err, &resp) && resp.Code == "BucketAlreadyExists":
			return fmt.Errorf("s3: create bucket %s: the name is taken by another account: %w", b.bucket, backends.ErrPermanent)
		default:
			// Servers answer a create racing another one inconsistently
			// (versitygw with a 500): if the bucket is there now, it was made.
			if ok, serr := b.client.BucketExists(ctx, b.bucket); serr == nil && ok {
				break
			}
			return b.fail(ctx, "create bucket "+b.bucket, err)
		}
	}
	_, err = b.Stat(ctx, backends.Handle{Type: backends.ConfigFile})
	switch {
	case err == nil:
		return fmt.Errorf("s3: create %s: %w", b.location, backends.ErrExist)
	case errors.Is(err, backends.ErrNotExist):
		return nil
	default:
		return err
	}
}

// Save uploads rd with a single PutObject of rd.Length() bytes (minio-go
// turns large objects into a multipart upload and aborts it on failure).
// An S3 PUT is atomic: the object appears complete or not at all.
func (b *Backend) Save(ctx context.Context, h backends.Handle, rd backends.RewindReader) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: save %s: %w", h, err)
	}
	key, err := b.key(h)
	if err != nil {
		return fmt.Errorf("s3: save: %w", err)
	}
	size := rd.Length()
	if size < 0 {
		return fmt.Errorf("s3: save %s: reader has negative length %d: %w", h, size, backends.ErrPermanent)
	}
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream"}
	if h.Type == backends.PackFile {
		opts.StorageClass = b.storageClass
	}
	body := &lengthReader{r: rd, left: size}
	_, err = b.client.PutObject(ctx, b.bucket, key, body, size, opts)
	switch {
	case body.err != nil:
		// The reader failed or had the wrong length: that is the cause,
		// whatever the client made of the aborted request.
		return fmt.Errorf("s3: save %s: %w", h, body.err)
	case err != nil:
		return b.fail(ctx, "save "+h.String(), err)
	}
	return nil
}

// Load calls fn with a reader of the requested range of h, from a ranged
// GetObject.
func (b *Backend) Load(ctx context.Context, h backends.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: load %s: %w", h, err)
	}
	key, err := b.key(h)
	if err != nil {
		return fmt.Errorf("s3: load: %w", err)
	}
	if length < 0 || offset < 0 {
		return fmt.Errorf("s3: load %s: length %d, offset %d: %w", h, length, offset, backends.ErrRange)
	}
	var opts minio.GetObjectOptions
	ranged := offset > 0 || length > 0
	if length > 0 {
		err = opts.SetRange(offset, offset+int64(length)-1)
	} else if offset > 0 {
		err = opts.SetRange(offset, 0)
	}
	if err != nil {
		return fmt.Errorf("s3: load %s: %w (%w)", h, err, backends.ErrRange)
	}
	body, info, header, err := b.core.GetObject(ctx, b.bucket, key, opts)
	if err != nil {
		err = b.fail(ctx, "load "+h.String(), err)
		if !errors.Is(err, backends.ErrRange) {
			return err
		}
		// Nothing lies at offset: fine if offset is the end of the file.
		fi, serr := b.Stat(ctx, h)
		switch {
		case serr != nil:
			return serr
		case offset > fi.Size:
			return fmt.Errorf("s3: load %s: offset %d beyond size %d: %w", h, offset, fi.Size, backends.ErrRange)
		case offset < fi.Size: // replaced meanwhile: let the caller retry
			return fmt.Errorf("s3: load %s: the server refused offset %d of a %d-byte file", h, offset, fi.Size)
		}
		return fn(backends.ExactReader(strings.NewReader(""), int64(length)))
	}
	defer func() { _ = body.Close() }() // read-only: nothing to lose
	if ranged && header.Get("Content-Range") == "" {
		return fmt.Errorf("s3: load %s: the server ignored the Range header", h)
	}
	want := int64(length)
	if length == 0 {
		want = info.Size
	}
	return fn(backends.ExactReader(backends.ContextReader(ctx, body), want))
}

// Stat returns the size of h.
func (b *Backend) Stat(ctx context.Context, h backends.Handle) (backends.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return backends.FileInfo{}, fmt.Errorf("s3: stat %s: %w", h, err)
	}
	key, err := b.key(h)
	if err != nil {
		return backends.FileInfo{}, fmt.Errorf("s3: stat: %w", err)
	}
	info, err := b.client.StatObject(ctx, b.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return backends.FileInfo{}, b.fail(ctx, "stat "+h.String(), err)
	}
	return backends.FileInfo{Name: h.Name, Size: info.Size}, nil
}

// Remove deletes h. S3 deletes missing objects without complaint, so Remove
// stats h first to report backends.ErrNotExist; a concurrent Remove of the
// same file may therefore both succeed.
func (b *Backend) Remove(ctx context.Context, h backends.Handle) error {
	if _, err := b.Stat(ctx, h); err != nil {
		return err
	}
	key, err := b.key(h)
	if err != nil {
		return fmt.Errorf("s3: remove: %w", err)
	}
	if err := b.client.RemoveObject(ctx, b.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return b.fail(ctx, "remove "+h.String(), err)
	}
	return nil
}

// List calls fn for each file of type t, listing the prefix of t (recursively
// for data/, whose files sit in shard folders). Keys that are not valid
// handles, or packs outside their shard, are skipped. A missing bucket lists
// nothing.
func (b *Backend) List(ctx context.Context, t backends.FileType, fn func(backends.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: list %s: %w", t, err)
	}
	if t == backends.ConfigFile {
		return backends.ListConfig(ctx, "s3", b.Stat, fn)
	}
	if err := (backends.Handle{Type: t, Name: "x"}).Valid(); err != nil {
		return fmt.Errorf("s3: list: %w (%w)", err, backends.ErrPermanent)
	}
	dir := b.join(string(t)) + "/"
	lctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing when fn fails
	for obj := range b.client.ListObjectsIter(lctx, b.bucket, minio.ListObjectsOptions{
		Prefix:    dir,
		Recursive: t == backends.PackFile,
	}) {
		if obj.Err != nil {
			err := b.fail(ctx, "list "+string(t), obj.Err)
			if errors.Is(err, backends.ErrNotExist) { // no bucket
				return nil
			}
			return err
		}
		name, ok := listedName(t, strings.TrimPrefix(obj.Key, dir))
		if !ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("s3: list %s: %w", t, err)
		}
		if err := fn(backends.FileInfo{Name: name, Size: obj.Size}); err != nil {
			return err
		}
	}
	return ctx.Err() // a cancel may end the listing without an error
}

// listedName returns the file name of a key relative to the folder of type t,
// and whether it is a file Load would find under that name.
func listedName(t backends.FileType, rel string) (string, bool) {
	name := rel
	if t == backends.PackFile {
		shard, n, ok := strings.Cut(rel, "/")
		if !ok || len(shard) != 2 || !strings.HasPrefix(n, shard) {
			return "", false
		}
		name = n
	}
	if (backends.Handle{Type: t, Name: name}).Valid() != nil {
		return "", false
	}
	return name, true
}

// key returns the object key of h after checking that h is valid: the
// repository layout of every backend (backends.Path), so that a repository
// folder can be copied to a bucket as it is.
func (b *Backend) key(h backends.Handle) (string, error) {
	p, err := backends.Path(h)
	if err != nil {
		return "", err
	}
	return b.join(p), nil
}

// join puts the repository prefix in front of a key.
func (b *Backend) join(key string) string {
	if b.prefix == "" {
		return key
	}
	return b.prefix + "/" + key
}

// chainCredentials looks for credentials where AWS tools do when the
// environment has no keys: the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials; profile AWS_PROFILE,
// else default), then an instance or container role (EC2 metadata, ECS,
// web identity), through minio-go's providers. It fetches them once now so
// that their absence is a clear error here, not an anonymous request later.
func chainCredentials() (*credentials.Credentials, error) {
	c := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.FileAWSCredentials{},
		&credentials.IAM{},
	})
	v, err := c.GetWithContext(nil) // nil: minio-go's default HTTP client and endpoint
	if err != nil || v.AccessKeyID == "" || v.SignerType == credentials.SignatureAnonymous {
		return nil, errNoCredentials
	}
	return c, nil
}
