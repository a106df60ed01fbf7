package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Environment variables read by Config.ApplyEnv (and so by Opener).
const (
	EnvAccessKeyID     = "AWS_ACCESS_KEY_ID"
	EnvSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	EnvSessionToken    = "AWS_SESSION_TOKEN"
	EnvRegion          = "AWS_REGION"
	EnvDefaultRegion   = "AWS_DEFAULT_REGION"
	EnvBucketLookup    = "HOARD_S3_BUCKET_LOOKUP"
	EnvStorageClass    = "HOARD_S3_STORAGE_CLASS"
)

// URL schemes. SchemeHTTP turns TLS off; it is meant for S3 servers on the
// same machine (tests, a local gateway) or a trusted network.
const (
	Scheme     = "s3"
	SchemeHTTP = "s3+http"
)

// AWSEndpoint is the endpoint used when a location names none.
const AWSEndpoint = "s3.amazonaws.com"

// Defaults of Config.Connections and Config.Timeout.
const (
	DefaultConnections = 8
	DefaultTimeout     = 60 * time.Second
)

// Bucket lookup styles (Config.BucketLookup).
const (
	LookupAuto = "auto" // virtual-host style where the endpoint supports it (AWS), else path style
	LookupPath = "path" // https://endpoint/bucket/key
	LookupDNS  = "dns"  // https://bucket.endpoint/key
)

// Config configures an S3 backend. ParseConfig fills the location fields from
// a URL; ApplyEnv fills credentials and options from the environment; a
// config file may set any field.
type Config struct {
	// Endpoint is the server's host or host:port; empty means AWSEndpoint.
	Endpoint string
	// Bucket holds the repository.
	Bucket string
	// Prefix is the folder in the bucket that holds the repository, without
	// leading or trailing slashes; empty means the bucket's root.
	Prefix string
	// InsecureHTTP talks plain HTTP instead of HTTPS (the s3+http:// scheme).
	// The secret key is still never sent (requests are signed), but the data
	// and the access key ID are: for a server on the same machine (tests) or
	// a trusted network only.
	InsecureHTTP bool

	// Region is the bucket's region. Empty lets the client ask the server.
	Region string
	// BucketLookup is LookupAuto (or empty), LookupPath or LookupDNS.
	BucketLookup string
	// StorageClass is the storage class of pack files (data/); metadata
	// files always use the bucket's default class so that they stay cheap to
	// read and delete. Empty means the bucket's default. Archive classes
	// (GLACIER, DEEP_ARCHIVE) are refused: hoard must be able to read packs
	// back at once.
	StorageClass string

	// AccessKeyID, SecretAccessKey and SessionToken are the credentials.
	// SecretAccessKey and SessionToken never appear in Location, Redacted,
	// errors or logs.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string

	// Connections is the number of concurrent requests the backend serves
	// well (Properties().Connections); zero means DefaultConnections.
	Connections int

	// Timeout bounds how long the server may stay silent (or stop reading)
	// while a request is under way; a stalled connection then fails the
	// request. Zero means DefaultTimeout.
	Timeout time.Duration
	// Dial, if set, opens the TCP connections (through a proxy, or a test's
	// fault injector); nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Transport, if set, carries the HTTP requests instead of the backend's
	// own transport (Dial and Timeout are then unused): for custom TLS roots
	// and tests.
	Transport http.RoundTripper
}

// ParseConfig parses a repository location:
//
//	s3://bucket[/prefix]                  AWS S3 (endpoint s3.amazonaws.com)
//	s3://endpoint/bucket[/prefix]         any S3-compatible server, over HTTPS
//	s3+http://endpoint/bucket[/prefix]    the same over plain HTTP (loopback only)
//
// The first element is an endpoint if it contains a dot or a colon (a host
// name, an IP address or host:port) or is "localhost"; otherwise it is the
// bucket. A bucket whose name contains dots must therefore be given with its
// endpoint: s3://s3.amazonaws.com/my.bucket/prefix. Credentials in the URL are
// refused (use the environment or the config file); so are query strings.
func ParseConfig(location string) (Config, error) {
	var cfg Config
	scheme, rest, ok := strings.Cut(location, "://")
	switch {
	case !ok:
		return Config{}, fmt.Errorf("s3: location %q: want s3://[endpoint/]bucket[/prefix]", redactURL(location))
	case scheme == Scheme:
	case scheme == SchemeHTTP:
		cfg.InsecureHTTP = true
	default:
		return Config{}, fmt.Errorf("s3: location %q: unknown scheme %q", redactURL(location), scheme)
	}
	if host, _, _ := strings.Cut(rest, "/"); strings.Contains(host, "@") {
		return Config{}, fmt.Errorf("s3: location %q: credentials in the URL are not supported; set %s and %s",
			redactURL(location), EnvAccessKeyID, EnvSecretAccessKey)
	}
	if strings.ContainsAny(rest, "?#") {
		return Config{}, fmt.Errorf("s3: location %q: query strings are not supported", redactURL(location))
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if isEndpoint(parts[0]) {
		cfg.Endpoint = parts[0]
		parts = parts[1:]
		bracketed := strings.HasPrefix(cfg.Endpoint, "[") && strings.HasSuffix(cfg.Endpoint, "]")
		if strings.Contains(cfg.Endpoint, ":") && !bracketed {
			if _, _, err := net.SplitHostPort(cfg.Endpoint); err != nil {
				return Config{}, fmt.Errorf("s3: location %q: invalid endpoint %q", location, cfg.Endpoint)
			}
		}
	}
	if len(parts) == 0 || parts[0] == "" {
		return Config{}, fmt.Errorf("s3: location %q: no bucket", location)
	}
	cfg.Bucket = parts[0]
	cfg.Prefix = strings.Join(parts[1:], "/")
	if err := cfg.validate(); err != nil {
		return Config{}, fmt.Errorf("s3: location %q: %w", location, err)
	}
	return cfg, nil
}

// isEndpoint reports whether the first element of a location names a server
// rather than a bucket (bucket names have neither colons nor, in the short
// form, dots).
func isEndpoint(s string) bool {
	return s == "localhost" || strings.ContainsAny(s, ".:[")
}

// redactURL removes any user information from a location, for messages.
func redactURL(location string) string {
	scheme, rest, ok := strings.Cut(location, "://")
	if !ok {
		return location
	}
	host, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		host = "***@" + host[i+1:]
	}
	if path != "" || strings.Contains(rest, "/") {
		path = "/" + path
	}
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i] + "?***"
	}
	return scheme + "://" + host + path
}

// ApplyEnv fills the fields that are still empty from the environment, read
// through getenv (os.Getenv in Opener): the AWS credentials (AWS_SESSION_TOKEN
// only together with keys from the environment), AWS_REGION or else
// AWS_DEFAULT_REGION, HOARD_S3_BUCKET_LOOKUP and HOARD_S3_STORAGE_CLASS.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	if c.AccessKeyID == "" && c.SecretAccessKey == "" {
		c.AccessKeyID = getenv(EnvAccessKeyID)
		c.SecretAccessKey = getenv(EnvSecretAccessKey)
		if c.SessionToken == "" {
			c.SessionToken = getenv(EnvSessionToken)
		}
	}
	if c.Region == "" {
		c.Region = getenv(EnvRegion)
	}
	if c.Region == "" {
		c.Region = getenv(EnvDefaultRegion)
	}
	if c.BucketLookup == "" {
		c.BucketLookup = getenv(EnvBucketLookup)
	}
	if c.StorageClass == "" {
		c.StorageClass = getenv(EnvStorageClass)
	}
	return c.validate()
}

// validate checks the fields that do not need the network.
func (c *Config) validate() error {
	if err := s3utils.CheckValidBucketName(c.Bucket); err != nil {
		return fmt.Errorf("bucket %q: %w", c.Bucket, err)
	}
	for _, seg := range strings.Split(c.Prefix, "/") {
		if c.Prefix != "" && (seg == "" || seg == "." || seg == "..") {
			return fmt.Errorf("invalid prefix %q", c.Prefix)
		}
	}
	switch strings.ToLower(c.BucketLookup) {
	case "", LookupAuto, LookupPath, LookupDNS:
	default:
		return fmt.Errorf("bucket lookup %q: want %s, %s or %s", c.BucketLookup, LookupAuto, LookupPath, LookupDNS)
	}
	switch strings.ToUpper(c.StorageClass) {
	case "GLACIER", "DEEP_ARCHIVE":
		return fmt.Errorf("storage class %s: archived objects cannot be read back at once", c.StorageClass)
	}
	if c.Connections < 0 {
		return fmt.Errorf("connections %d: must not be negative", c.Connections)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout %v: must not be negative", c.Timeout)
	}
	return nil
}

// location returns the URL of the repository, without credentials.
func (c Config) location() string {
	scheme := Scheme
	if c.InsecureHTTP {
		scheme = SchemeHTTP
	}
	u := scheme + "://"
	if c.Endpoint != "" {
		u += c.Endpoint + "/"
	}
	u += c.Bucket
	if c.Prefix != "" {
		u += "/" + c.Prefix
	}
	return u
}

// Redacted describes c for logs: the location and the non-secret settings,
// never the secret key or session token.
func (c Config) Redacted() string {
	var b strings.Builder
	b.WriteString(c.location())
	var opts []string
	if c.Region != "" {
		opts = append(opts, "region "+c.Region)
	}
	if c.BucketLookup != "" {
		opts = append(opts, "lookup "+c.BucketLookup)
	}
	if c.StorageClass != "" {
		opts = append(opts, "storage class "+c.StorageClass)
	}
	if c.AccessKeyID != "" {
		opts = append(opts, "access key "+maskKeyID(c.AccessKeyID))
	}
	if len(opts) > 0 {
		b.WriteString(" (" + strings.Join(opts, ", ") + ")")
	}
	return b.String()
}

// maskKeyID keeps only the last four characters of an access key ID, enough
// to tell keys apart in a log.
func maskKeyID(id string) string {
	if len(id) <= 4 {
		return "***"
	}
	return "***" + id[len(id)-4:]
}

// errNoCredentials is returned by Open without credentials.
var errNoCredentials = errors.New("s3: no credentials: set " + EnvAccessKeyID + " and " + EnvSecretAccessKey +
	", or a profile in ~/.aws/credentials (AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE), or run with an instance role")
