package backends

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// ServerLocation is a location of the form
// SCHEME://[USER[:PASSWORD]@]HOST[:PORT]/PATH, as the FTP and SFTP backends
// take it. Path has the first slash removed: it is relative to the login
// folder unless it starts with a second slash.
type ServerLocation struct {
	Scheme      string
	User        string
	Password    string
	HasPassword bool
	Host        string
	Port        int // 0 if the location names none
	Path        string
}

// ParseServerLocation parses location, whose scheme the caller has checked.
// Errors start with name (the backend's) and never repeat a password.
func ParseServerLocation(name, location string) (ServerLocation, error) {
	u, err := url.Parse(location)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the whole location
		}
		return ServerLocation{}, fmt.Errorf("%s: invalid location %s: %v", name, RedactLocation(location), err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return ServerLocation{}, fmt.Errorf("%s: location %s: unexpected query or fragment", name, RedactLocation(location))
	}
	loc := ServerLocation{Scheme: u.Scheme, User: u.User.Username(), Host: u.Hostname()}
	loc.Password, loc.HasPassword = u.User.Password()
	if loc.Host == "" {
		return ServerLocation{}, fmt.Errorf("%s: location %s has no host", name, RedactLocation(location))
	}
	if p := u.Port(); p != "" {
		loc.Port, err = strconv.Atoi(p)
		if err != nil || loc.Port < 1 || loc.Port > 65535 {
			return ServerLocation{}, fmt.Errorf("%s: location %s: invalid port %q", name, RedactLocation(location), p)
		}
	}
	loc.Path = strings.TrimPrefix(u.Path, "/")
	if loc.Path == "" || path.Clean(loc.Path) == "/" || path.Clean(loc.Path) == "." {
		return ServerLocation{}, fmt.Errorf("%s: location %s has no repository path", name, RedactLocation(location))
	}
	return loc, nil
}

// RedactLocation replaces the password of a URL-like location by "xxxxx",
// without relying on the location being a valid URL.
func RedactLocation(location string) string {
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

// Redacted returns loc without its password:
// SCHEME://[USER@]HOST[:PORT]/PATH, with the port only if it is not
// defaultPort.
func (loc ServerLocation) Redacted(defaultPort int) string {
	host := loc.Host
	if loc.Port != 0 && loc.Port != defaultPort {
		host = net.JoinHostPort(loc.Host, strconv.Itoa(loc.Port))
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	u := url.URL{Scheme: loc.Scheme, Host: host, Path: "/" + loc.Path}
	if loc.User != "" {
		u.User = url.User(loc.User)
	}
	return u.String()
}
