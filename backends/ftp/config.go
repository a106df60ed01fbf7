package ftp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
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
	loc, err := backends.ParseServerLocation("ftp", location)
	if err != nil {
		return Config{}, err
	}
	cfg.User, cfg.Password, cfg.Host, cfg.Port, cfg.Path = loc.User, loc.Password, loc.Host, loc.Port, loc.Path
	return cfg, nil
}

// Redacted returns the location of cfg without the password:
// ftp[s]://USER@HOST[:PORT]/PATH, with the port only if it is not 21.
func (c Config) Redacted() string {
	loc := backends.ServerLocation{Scheme: "ftp", User: c.User, Host: c.Host, Port: c.Port, Path: c.Path}
	if c.TLS {
		loc.Scheme = "ftps"
	}
	return loc.Redacted(DefaultPort)
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
