package dropbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Scheme is the URL scheme of Dropbox locations.
const Scheme = "dropbox"

// Environment variables read by Config.ApplyEnv (and so by Opener).
const (
	EnvToken        = "HOARD_DROPBOX_TOKEN"
	EnvRefreshToken = "HOARD_DROPBOX_REFRESH_TOKEN"
	EnvAppKey       = "HOARD_DROPBOX_APP_KEY"
	EnvAppSecret    = "HOARD_DROPBOX_APP_SECRET"
	// EnvAPIURL points the backend at another server than Dropbox's (the
	// test double in backends/dropbox/dropboxtest). Leave it unset.
	EnvAPIURL = "HOARD_DROPBOX_API_URL"
)

// Defaults of Config.Connections (Dropbox throttles concurrent writes to
// one account, so more rarely helps) and Config.Timeout.
const (
	DefaultConnections = 4
	DefaultTimeout     = 60 * time.Second
)

// Config configures a Dropbox backend.
type Config struct {
	// Path is the repository folder, "/a/b", or "" for the root of the app
	// folder (or of the whole Dropbox, for full-access apps).
	Path string

	// AccessToken is an OAuth2 access token. If it is empty, RefreshToken
	// and AppKey (and AppSecret, unless the token came from a PKCE flow) are
	// used to fetch short-lived access tokens from the token endpoint.
	AccessToken  string
	RefreshToken string
	AppKey       string
	AppSecret    string

	// APIURL replaces https://api.dropboxapi.com and
	// https://content.dropboxapi.com (and the token endpoint, APIURL +
	// "/oauth2/token"): for tests against a local server. It must be https,
	// or http on the loopback interface.
	APIURL string

	// Connections is Properties().Connections; zero means DefaultConnections.
	Connections int

	// Timeout bounds how long the server may stay silent (or stop reading)
	// while a request is under way; a stalled connection then fails the
	// request. Zero means DefaultTimeout.
	Timeout time.Duration
	// Dial, if set, opens the TCP connections (through a proxy, or a test's
	// fault injector); nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Transport, if set, carries the HTTP requests instead of the backend's
	// own transport (Dial and Timeout are then unused).
	Transport http.RoundTripper
}

// ParseConfig parses "dropbox:///path/to/repo" (or "dropbox:///" for the
// root) into a Config without credentials.
func ParseConfig(location string) (Config, error) {
	rest, ok := strings.CutPrefix(location, Scheme+"://")
	if !ok {
		return Config{}, fmt.Errorf("dropbox: location %q: want dropbox:///path", redactURL(location))
	}
	host, path, _ := strings.Cut(rest, "/")
	if host != "" {
		return Config{}, fmt.Errorf("dropbox: location %q: want dropbox:///path (three slashes; credentials go in %s)",
			redactURL(location), EnvToken)
	}
	if strings.ContainsAny(path, "?#") {
		return Config{}, fmt.Errorf("dropbox: location %q: query strings are not supported", redactURL(location))
	}
	cfg := Config{Path: "/" + strings.TrimSuffix(path, "/")}
	if cfg.Path == "/" {
		cfg.Path = ""
	}
	if err := cfg.validate(); err != nil {
		return Config{}, fmt.Errorf("dropbox: location %q: %w", location, err)
	}
	return cfg, nil
}

// redactURL hides whatever stands between "://" and the path, and any query.
func redactURL(location string) string {
	scheme, rest, ok := strings.Cut(location, "://")
	if !ok {
		return location
	}
	host, path, _ := strings.Cut(rest, "/")
	if host != "" {
		host = "***"
	}
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i] + "?***"
	}
	return scheme + "://" + host + "/" + path
}

// ApplyEnv fills the credentials and APIURL that are still empty from the
// environment, read through getenv (os.Getenv in Opener). Credentials from
// the environment are taken only if the config has none.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	if c.AccessToken == "" && c.RefreshToken == "" {
		c.AccessToken = getenv(EnvToken)
		c.RefreshToken = getenv(EnvRefreshToken)
		if c.AppKey == "" {
			c.AppKey = getenv(EnvAppKey)
		}
		if c.AppSecret == "" {
			c.AppSecret = getenv(EnvAppSecret)
		}
	}
	if c.APIURL == "" {
		c.APIURL = getenv(EnvAPIURL)
	}
	return c.validate()
}

// validate checks the fields that do not need the network.
func (c *Config) validate() error {
	if c.Path != "" {
		if !strings.HasPrefix(c.Path, "/") || strings.HasSuffix(c.Path, "/") {
			return fmt.Errorf("invalid path %q: want /folder/subfolder", c.Path)
		}
		for _, seg := range strings.Split(c.Path[1:], "/") {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\\\x00") {
				return fmt.Errorf("invalid path %q", c.Path)
			}
		}
	}
	if c.APIURL != "" {
		if _, err := apiBase(c.APIURL); err != nil {
			return err
		}
	}
	if c.Connections < 0 {
		return fmt.Errorf("connections %d: must not be negative", c.Connections)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout %v: must not be negative", c.Timeout)
	}
	return nil
}

// apiBase checks an APIURL and returns it without a trailing slash.
func apiBase(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("invalid API URL")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") || u.Host == "" {
		return "", fmt.Errorf("API URL %q: want scheme://host[:port]", u.Redacted())
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "", fmt.Errorf("API URL %q: plain http is allowed on the loopback interface only", u.Redacted())
		}
	default:
		return "", fmt.Errorf("API URL %q: want https", u.Redacted())
	}
	return u.Scheme + "://" + u.Host, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// location returns the URL of the repository.
func (c Config) location() string {
	if c.Path == "" {
		return Scheme + ":///"
	}
	return Scheme + "://" + c.Path
}

// Redacted describes c for logs: the location and which kind of
// credentials it holds, never the credentials.
func (c Config) Redacted() string {
	var opts []string
	switch {
	case c.AccessToken != "":
		opts = append(opts, "access token")
	case c.RefreshToken != "":
		opts = append(opts, "refresh token, app key "+c.AppKey)
	}
	if c.APIURL != "" {
		opts = append(opts, "API "+c.APIURL)
	}
	if len(opts) == 0 {
		return c.location()
	}
	return c.location() + " (" + strings.Join(opts, ", ") + ")"
}
