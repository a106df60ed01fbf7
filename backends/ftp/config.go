package ftp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/hoard-backup/hoard/backends"
)

// Environment variables read by Config.ApplyEnv (and so by Opener). Library
// users set the Config fields instead.
const (
	// EnvPassword holds the FTP password when the location has none.
	EnvPassword = "HOARD_FTP_PASSWORD"
	// EnvCAFile names a PEM file of certificates to trust for ftps://, in
	// addition to the system's (for a server with a self-signed certificate).
	EnvCAFile = "HOARD_FTP_CA_FILE"
)

// Defaults of Config.
const (
	DefaultPort        = 21
	DefaultConnections = 4
	DefaultTimeout     = 60 * time.Second
)

// Config configures an FTP backend. Its String method redacts the password,
// so a Config is safe to print.
type Config struct {
	// User is the FTP login; empty means anonymous.
	User string
	// Password is the FTP password. It never appears in Location, Redacted
	// or any error.
	Password string
	// Host is the server's name or address.
	Host string
	// Port is the control port; zero means 21.
	Port int
	// Path is the repository folder. A relative path is relative to the
	// folder the server puts the user in at login.
	Path string
	// TLS asks for explicit TLS (AUTH TLS, then PROT P for the data
	// connections); the server's certificate is checked against the
	// system's roots and CAFile.
	TLS bool
	// CAFile is a PEM file of certificates to trust besides the system's.
	CAFile string

	// Connections is the size of the connection pool (FTP carries one
	// transfer per connection); Properties reports it. Zero means
	// DefaultConnections.
	Connections int
	// Timeout bounds how long the server may stay silent while the backend
	// waits for it; then the connection is dropped and the call fails. Zero
	// means DefaultTimeout.
	Timeout time.Duration
	// Dial, if set, opens the control and data connections (through a
	// proxy, or a test's fault injector); nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// ParseConfig parses a location of the form
//
//	ftp://[USER[:PASSWORD]@]HOST[:PORT]/PATH      plain FTP
//	ftps://[USER[:PASSWORD]@]HOST[:PORT]/PATH     explicit TLS (AUTH TLS)
//
// PATH is relative to the login folder; a second slash makes it absolute:
// ftp://backup@nas//srv/backups. A password in the location is accepted
// (django-dbbackup's FTP storage takes it there) but HOARD_FTP_PASSWORD is
// better: locations end up in logs. Error messages never repeat a password.
func ParseConfig(location string) (Config, error) {
	var cfg Config
	scheme, _, ok := strings.Cut(location, "://")
	switch {
	case ok && scheme == "ftp":
	case ok && scheme == "ftps":
		cfg.TLS = true
	default:
		return Config{}, errors.New("ftp: location must start with ftp:// or ftps://")
	}
	u, err := url.Parse(location)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the whole location
		}
		return Config{}, fmt.Errorf("ftp: invalid location %s: %v", redactLocation(location), err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return Config{}, fmt.Errorf("ftp: location %s: unexpected query or fragment", redactLocation(location))
	}
	cfg.User = u.User.Username()
	cfg.Password, _ = u.User.Password()
	cfg.Host = u.Hostname()
	if cfg.Host == "" {
		return Config{}, fmt.Errorf("ftp: location %s has no host", redactLocation(location))
	}
	if p := u.Port(); p != "" {
		cfg.Port, err = strconv.Atoi(p)
		if err != nil || cfg.Port < 1 || cfg.Port > 65535 {
			return Config{}, fmt.Errorf("ftp: location %s: invalid port %q", redactLocation(location), p)
		}
	}
	cfg.Path = strings.TrimPrefix(u.Path, "/")
	if cfg.Path == "" || path.Clean(cfg.Path) == "/" || path.Clean(cfg.Path) == "." {
		return Config{}, fmt.Errorf("ftp: location %s has no repository path", redactLocation(location))
	}
	return cfg, nil
}

// redactLocation replaces the password of a URL-like location by "xxxxx",
// without relying on the location being a valid URL.
func redactLocation(location string) string {
	scheme, rest, ok := strings.Cut(location, "://")
	if !ok {
		return location
	}
	end := strings.IndexByte(rest, '/')
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return location
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return location
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// Redacted returns the location of cfg without the password:
// ftp[s]://USER@HOST[:PORT]/PATH, with the port only if it is not 21.
func (c Config) Redacted() string {
	host := c.Host
	if c.Port != 0 && c.Port != DefaultPort {
		host = net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	u := url.URL{Scheme: "ftp", Host: host, Path: "/" + c.Path}
	if c.TLS {
		u.Scheme = "ftps"
	}
	if c.User != "" {
		u.User = url.User(c.User)
	}
	return u.String()
}

// String returns Redacted, so that printing a Config never shows the password.
func (c Config) String() string { return c.Redacted() }

// GoString returns Redacted, for %#v.
func (c Config) GoString() string { return "ftp.Config(" + c.Redacted() + ")" }

// ApplyEnv fills the fields that are still empty from the environment, read
// through getenv (os.Getenv in Opener): the password from HOARD_FTP_PASSWORD
// and extra trusted certificates for ftps:// from HOARD_FTP_CA_FILE.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	if c.Password == "" {
		c.Password = getenv(EnvPassword)
	}
	if c.CAFile == "" {
		c.CAFile = getenv(EnvCAFile)
	}
	return nil
}

// Opener opens the FTP backend that location names (see ParseConfig), with
// credentials from the location or else the environment (see
// Config.ApplyEnv). It has the signature of backends.Opener.
func Opener(ctx context.Context, location string) (backends.Backend, error) {
	cfg, err := ParseConfig(location)
	if err != nil {
		return nil, err
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return nil, fmt.Errorf("ftp: %s: %w", cfg.Redacted(), err)
	}
	return Open(ctx, cfg)
}
