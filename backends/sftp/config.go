package sftp

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
	// EnvKeyFile names the private key file (OpenSSH or PEM format, not
	// passphrase-protected; use an agent for those).
	EnvKeyFile = "HOARD_SFTP_KEY_FILE"
	// EnvKnownHosts names the known_hosts file that holds the server's host
	// key; the default is ~/.ssh/known_hosts.
	EnvKnownHosts = "HOARD_SFTP_KNOWN_HOSTS"
	// EnvPassword holds the SSH password, for servers without key logins.
	EnvPassword = "HOARD_SFTP_PASSWORD"
	// EnvAgent is the standard SSH agent socket; when it is set Opener
	// offers the agent's keys.
	EnvAgent = "SSH_AUTH_SOCK"
)

// Defaults of Config.
const (
	DefaultPort        = 22
	DefaultConnections = 5
	DefaultTimeout     = 60 * time.Second
)

// Config configures an SFTP backend. Its String method redacts the
// password, so a Config is safe to print.
type Config struct {
	// User is the SSH login; empty means the current user's name.
	User string
	// Host is the server's name or address.
	Host string
	// Port is the SSH port; zero means 22.
	Port int
	// Path is the repository folder on the server. A relative path is
	// relative to the login folder (usually the user's home).
	Path string

	// KeyFile is a private key file to log in with. If it, UseAgent and
	// Password are all unset, the usual ~/.ssh/id_ed25519, id_ecdsa and
	// id_rsa are tried, as ssh does.
	KeyFile string
	// KnownHostsFile holds the server's host key; empty means
	// ~/.ssh/known_hosts. Host keys are always checked: an unknown or
	// changed key fails Open, with the key's fingerprint in the error.
	KnownHostsFile string
	// Password logs in with a password, after any keys. It never appears
	// in Location, Redacted or any error.
	Password string
	// UseAgent offers the keys of the SSH agent at $SSH_AUTH_SOCK.
	UseAgent bool

	// Connections is the number of concurrent requests the backend
	// advertises in Properties; they share one SSH connection. Zero means
	// DefaultConnections.
	Connections int
	// Timeout bounds how long the server may stay silent while the backend
	// waits for it (connecting, or any request) before the connection is
	// dropped and the operation fails; keep-alives are sent every third of
	// it. Zero means DefaultTimeout.
	Timeout time.Duration
	// Dial, if set, opens the TCP connection (through a proxy, or a test's
	// fault injector); nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// ParseConfig parses a location of the form
//
//	sftp://[USER@]HOST[:PORT]/PATH
//
// PATH is relative to the login folder; a second slash makes it absolute:
// sftp://backup@nas//srv/backups is /srv/backups on nas. A password in the
// location is refused: give it in HOARD_SFTP_PASSWORD or Config.Password.
// Error messages never repeat a password.
func ParseConfig(location string) (Config, error) {
	rest, ok := strings.CutPrefix(location, "sftp://")
	if !ok {
		return Config{}, errors.New("sftp: location must start with sftp://")
	}
	loc, err := backends.ParseServerLocation("sftp", "sftp://"+rest)
	if err != nil {
		return Config{}, err
	}
	if loc.HasPassword {
		return Config{}, fmt.Errorf("sftp: location %s holds a password: give it in %s instead", backends.RedactLocation(location), EnvPassword)
	}
	return Config{User: loc.User, Host: loc.Host, Port: loc.Port, Path: loc.Path}, nil
}

// Redacted returns the location of cfg without credentials:
// sftp://USER@HOST[:PORT]/PATH, with the port only if it is not 22.
func (c Config) Redacted() string {
	loc := backends.ServerLocation{Scheme: "sftp", User: c.User, Host: c.Host, Port: c.Port, Path: c.Path}
	return loc.Redacted(DefaultPort)
}

// String returns Redacted, so that printing a Config never shows the password.
func (c Config) String() string { return c.Redacted() }

// GoString returns Redacted, for %#v.
func (c Config) GoString() string { return "sftp.Config(" + c.Redacted() + ")" }

// ApplyEnv fills the fields that are still empty from the environment, read
// through getenv (os.Getenv in Opener): HOARD_SFTP_KEY_FILE,
// HOARD_SFTP_KNOWN_HOSTS, HOARD_SFTP_PASSWORD, and UseAgent when
// SSH_AUTH_SOCK names an agent.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	if c.KeyFile == "" {
		c.KeyFile = getenv(EnvKeyFile)
	}
	if c.KnownHostsFile == "" {
		c.KnownHostsFile = getenv(EnvKnownHosts)
	}
	if c.Password == "" {
		c.Password = getenv(EnvPassword)
	}
	if !c.UseAgent {
		c.UseAgent = getenv(EnvAgent) != ""
	}
	return nil
}

// Opener opens the SFTP backend that location names (see ParseConfig), with
// credentials from the environment (see Config.ApplyEnv). It has the
// signature of backends.Opener.
func Opener(ctx context.Context, location string) (backends.Backend, error) {
	cfg, err := ParseConfig(location)
	if err != nil {
		return nil, err
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return nil, fmt.Errorf("sftp: %s: %w", cfg.Redacted(), err)
	}
	return Open(ctx, cfg)
}
