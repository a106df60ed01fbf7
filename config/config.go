// Package config reads hoard.toml: the repository and how to open it, the
// databases and media trees to back up, and the retention policy. See
// docs/config.md for the file's reference.
//
// Unknown keys and bad values are errors that name the file and the line.
// Secrets (passwords, URLs holding passwords) may be given literally, or as
// KEY_file (read a file), KEY_command (run a shell command) or KEY_env (read
// an environment variable) instead; they are read only when used.
//
// The package is a leaf: it knows the file, not the engines or the
// repository, and cmd/hoard turns what it reads into their options.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/hoard-backup/hoard/chunk"
)

// DefaultFile is the config file looked for in the working directory.
const DefaultFile = "hoard.toml"

// Engine names.
const (
	Postgres = "postgres"
	MySQL    = "mysql"
	SQLite   = "sqlite"
)

// Config is a parsed hoard.toml.
type Config struct {
	// File is the absolute path the config was read from.
	File       string
	Repository Repository
	Databases  map[string]*Database
	Media      map[string]*Media
	Retention  Retention
	Monitoring Monitoring
	// Copies are the repositories `hoard copy --target NAME` and
	// `hoard run` copy snapshots to ([copy.NAME] sections).
	Copies map[string]*CopyTarget
}

// CopyTarget is another repository snapshots are copied to, and how to
// open it: the keys of [repository].
type CopyTarget struct {
	Name              string
	Location          string
	PasswordFile      string
	PasswordCommand   string
	GPGSecretKey      string
	GPGPassphraseFile string
	GPGAgent          bool
	// AfterRun: hoard run copies its snapshots here after a successful
	// backup (default true).
	AfterRun bool
}

// Monitoring says how hoard reports the commands that change the
// repository (see package report).
type Monitoring struct {
	// Textfile is a Prometheus textfile (node_exporter's textfile
	// collector) the last run of each command is recorded in.
	Textfile string `toml:"textfile"`
	// PingURL receives /start, success and /fail requests
	// (healthchecks.io conventions).
	PingURL string `toml:"ping_url"`
	// OnFailure is a shell command run when a command fails.
	OnFailure string `toml:"on_failure"`
}

// Repository says where the repository is and how to open it.
type Repository struct {
	Location          string // a local path or a backend URL, like -r
	PasswordFile      string
	PasswordCommand   string
	GPGSecretKey      string
	GPGPassphraseFile string
	GPGAgent          bool
	// Host is the host name snapshots record; empty means the machine's.
	Host string
}

// Database is one named database.
type Database struct {
	Name   string
	Engine string // Postgres, MySQL or SQLite; empty until known (a URL read from a secret)
	// URL is the connection URL (postgres://, mysql://, sqlite:///path).
	URL Secret
	// Password, when set, replaces the URL's password.
	Password Secret
	// Path is the SQLite database file.
	Path string
	// Tools and their arguments; empty means the engine's defaults.
	DumpCommand    string
	DumpArgs       []string // nil: the engine's defaults
	RestoreCommand string
	RestoreArgs    []string
	ClientCommand  string
	// TempDir is where SQLite's consistent copy is made.
	TempDir string
	// Physical makes backups of this PostgreSQL database physical base
	// backups of its whole cluster (pg_basebackup) for point-in-time
	// recovery with the archived WAL (docs/pitr.md).
	Physical bool
	// BaseBackupCommand is pg_basebackup; empty means from PATH.
	BaseBackupCommand string
	// ChunkProfile is the chunk size profile of the dump ("dump" or
	// "large"); empty: what the last snapshot used, else the repository's.
	ChunkProfile string
	// VerifyAfterRun makes hoard run drill the dump it just saved of
	// this database (hoard db verify) after the backup.
	VerifyAfterRun bool
	// Line is where the database's table starts in the file.
	Line int
}

// Media is one named tree of files.
type Media struct {
	Name     string
	Paths    []string // absolute
	Excludes []string
	// ChunkProfile is the chunk size profile of the tree ("dump" or
	// "large"); empty: what the last snapshot used, else "large".
	ChunkProfile string
	// SpotCheck, when set, makes hoard run spot check the tree after each
	// backup: a number of files ("20") or a share of them ("5%").
	SpotCheck string
	Line      int
}

// Retention says which snapshots to keep. It is read and checked here and
// applied by hoard run after each successful backup.
type Retention struct {
	KeepLast    int      `toml:"keep_last"`
	KeepHourly  int      `toml:"keep_hourly"`
	KeepDaily   int      `toml:"keep_daily"`
	KeepWeekly  int      `toml:"keep_weekly"`
	KeepMonthly int      `toml:"keep_monthly"`
	KeepYearly  int      `toml:"keep_yearly"`
	KeepWithin  Duration `toml:"keep_within"`
	KeepTags    []string `toml:"keep_tags"`
	// GroupBy is the comma-separated fields the policy groups snapshots
	// by (host, paths, tags, source; "" for one group); nil means
	// "host,paths", as hoard forget.
	GroupBy *string `toml:"group_by"`
	// Prune removes the data the forgotten snapshots alone needed.
	Prune bool `toml:"prune"`
}

// IsZero reports whether no rule is set.
func (r Retention) IsZero() bool {
	return r.KeepLast == 0 && r.KeepHourly == 0 && r.KeepDaily == 0 && r.KeepWeekly == 0 && r.KeepMonthly == 0 &&
		r.KeepYearly == 0 && r.KeepWithin.IsZero() && len(r.KeepTags) == 0
}

// Error is a problem in the file, at a line (0 when not known).
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// raw* mirror the file; strict decoding rejects any other key.
type rawFile struct {
	Repository rawRepository        `toml:"repository"`
	Databases  map[string]*rawDB    `toml:"databases"`
	Media      map[string]*rawMedia `toml:"media"`
	Retention  Retention            `toml:"retention"`
	Monitoring Monitoring           `toml:"monitoring"`
	Copy       map[string]*rawCopy  `toml:"copy"`
}

type rawCopy struct {
	Location          string `toml:"location"`
	PasswordFile      string `toml:"password_file"`
	PasswordCommand   string `toml:"password_command"`
	GPGSecretKey      string `toml:"gpg_secret_key"`
	GPGPassphraseFile string `toml:"gpg_passphrase_file"`
	GPGAgent          bool   `toml:"gpg_agent"`
	AfterRun          *bool  `toml:"after_run"`
}

type rawRepository struct {
	Location          string `toml:"location"`
	PasswordFile      string `toml:"password_file"`
	PasswordCommand   string `toml:"password_command"`
	GPGSecretKey      string `toml:"gpg_secret_key"`
	GPGPassphraseFile string `toml:"gpg_passphrase_file"`
	GPGAgent          bool   `toml:"gpg_agent"`
	Host              string `toml:"host"`
}

type rawDB struct {
	Engine          string    `toml:"engine"`
	URL             string    `toml:"url"`
	URLFile         string    `toml:"url_file"`
	URLCommand      string    `toml:"url_command"`
	URLEnv          string    `toml:"url_env"`
	Password        string    `toml:"password"`
	PasswordFile    string    `toml:"password_file"`
	PasswordCommand string    `toml:"password_command"`
	PasswordEnv     string    `toml:"password_env"`
	Path            string    `toml:"path"`
	DumpCommand     string    `toml:"dump_command"`
	DumpArgs        *[]string `toml:"dump_args"`
	RestoreCommand  string    `toml:"restore_command"`
	RestoreArgs     []string  `toml:"restore_args"`
	ClientCommand   string    `toml:"client_command"`
	TempDir         string    `toml:"temp_dir"`
	Physical        bool      `toml:"physical"`
	BaseBackupCmd   string    `toml:"basebackup_command"`
	ChunkProfile    string    `toml:"chunk_profile"`
	VerifyAfterRun  bool      `toml:"verify_after_run"`
}

type rawMedia struct {
	Paths        []string `toml:"paths"`
	Excludes     []string `toml:"excludes"`
	ChunkProfile string   `toml:"chunk_profile"`
	SpotCheck    string   `toml:"spot_check"`
}

// engineName normalizes an engine's name.
func engineName(s string) (string, error) {
	switch strings.ToLower(s) {
	case "":
		return "", nil
	case "postgres", "postgresql":
		return Postgres, nil
	case "mysql", "mariadb":
		return MySQL, nil
	case "sqlite", "sqlite3":
		return SQLite, nil
	}
	return "", fmt.Errorf("%q is not postgres, mysql or sqlite", s)
}

// Load reads and checks a config file.
func Load(file string) (*Config, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(abs, data)
}

// Parse checks the config in data; file names it in errors and relative
// paths are taken from its directory.
func Parse(file string, data []byte) (*Config, error) {
	var raw rawFile
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, decodeError(file, err)
	}
	lines := keyLines(data)
	fail := func(key, format string, a ...any) error {
		return &Error{File: file, Line: lines.find(key), Msg: key + ": " + fmt.Sprintf(format, a...)}
	}
	dir := filepath.Dir(file)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c := &Config{File: file, Databases: map[string]*Database{}, Media: map[string]*Media{}, Retention: raw.Retention, Monitoring: raw.Monitoring}

	rr := raw.Repository
	c.Repository = Repository{Location: rr.Location, PasswordFile: abs(rr.PasswordFile), PasswordCommand: rr.PasswordCommand,
		GPGSecretKey: abs(rr.GPGSecretKey), GPGPassphraseFile: abs(rr.GPGPassphraseFile), GPGAgent: rr.GPGAgent, Host: rr.Host}
	if loc := rr.Location; loc != "" && !strings.Contains(loc, "://") && !strings.HasPrefix(loc, "local:") {
		c.Repository.Location = abs(loc)
	}
	if rr.PasswordFile != "" && rr.PasswordCommand != "" {
		return nil, fail("repository.password_command", "give password_file or password_command, not both")
	}

	for name, rd := range raw.Databases {
		key := "databases." + name
		if err := checkName(name); err != nil {
			return nil, fail(key, "%v", err)
		}
		if rd == nil {
			rd = &rawDB{}
		}
		engine, err := engineName(rd.Engine)
		if err != nil {
			return nil, fail(key+".engine", "%v", err)
		}
		d := &Database{Name: name, Engine: engine, Path: abs(rd.Path), DumpCommand: rd.DumpCommand,
			RestoreCommand: rd.RestoreCommand, RestoreArgs: rd.RestoreArgs, ClientCommand: rd.ClientCommand,
			TempDir: abs(rd.TempDir), Physical: rd.Physical, BaseBackupCommand: rd.BaseBackupCmd, ChunkProfile: rd.ChunkProfile, VerifyAfterRun: rd.VerifyAfterRun, Line: lines.find(key)}
		if err := checkProfile(rd.ChunkProfile); err != nil {
			return nil, fail(key+".chunk_profile", "%v", err)
		}
		if rd.DumpArgs != nil {
			d.DumpArgs = append([]string{}, (*rd.DumpArgs)...)
		}
		if d.URL, err = secret(key, "url", rd.URL, abs(rd.URLFile), rd.URLCommand, rd.URLEnv, lines, file); err != nil {
			return nil, err
		}
		if d.Password, err = secret(key, "password", rd.Password, abs(rd.PasswordFile), rd.PasswordCommand, rd.PasswordEnv, lines, file); err != nil {
			return nil, err
		}
		switch {
		case d.URL.IsSet() && d.Path != "":
			return nil, fail(key+".path", "give url or path, not both")
		case !d.URL.IsSet() && d.Path == "":
			return nil, fail(key, "needs url (or url_file, url_command, url_env), or path for sqlite")
		case d.Path != "":
			if d.Engine != "" && d.Engine != SQLite {
				return nil, fail(key+".path", "path is for sqlite databases; %s needs url", d.Engine)
			}
			d.Engine = SQLite
		case d.URL.Value != "":
			eng, err := EngineOf(d.URL.Value)
			if err != nil {
				return nil, fail(key+".url", "%v", err)
			}
			if d.Engine != "" && d.Engine != eng {
				return nil, fail(key+".url", "a %s URL for engine %s", eng, d.Engine)
			}
			d.Engine = eng
			if eng == SQLite {
				// Relative SQLite paths are the config file's directory's.
				p, err := SQLitePath(d.URL.Value)
				if err != nil {
					return nil, fail(key+".url", "%v", err)
				}
				d.URL = Secret{}
				d.Path = abs(p)
			}
		}
		if d.Engine == SQLite && d.Password.IsSet() {
			return nil, fail(key, "sqlite databases have no password")
		}
		if d.Physical && d.Engine != "" && d.Engine != Postgres {
			return nil, fail(key+".physical", "physical backups are for postgres databases, not %s", d.Engine)
		}
		if d.Physical && d.VerifyAfterRun {
			return nil, fail(key+".verify_after_run", "a restore drill needs a logical dump, not a physical backup")
		}
		c.Databases[name] = d
	}

	for name, rm := range raw.Media {
		key := "media." + name
		if err := checkName(name); err != nil {
			return nil, fail(key, "%v", err)
		}
		if rm == nil || len(rm.Paths) == 0 {
			return nil, fail(key, "needs paths")
		}
		m := &Media{Name: name, Excludes: rm.Excludes, ChunkProfile: rm.ChunkProfile, SpotCheck: strings.TrimSpace(rm.SpotCheck), Line: lines.find(key)}
		if err := checkProfile(rm.ChunkProfile); err != nil {
			return nil, fail(key+".chunk_profile", "%v", err)
		}
		if !validSample(m.SpotCheck) {
			return nil, fail(key+".spot_check", "want a number of files (\"20\") or a percentage (\"5%%\"), not %q", rm.SpotCheck)
		}
		for _, p := range rm.Paths {
			if p == "" {
				return nil, fail(key+".paths", "empty path")
			}
			m.Paths = append(m.Paths, filepath.Clean(abs(p)))
		}
		for _, e := range rm.Excludes {
			if _, err := filepath.Match(e, ""); err != nil {
				return nil, fail(key+".excludes", "bad pattern %q: %v", e, err)
			}
			// An empty pattern, or one matching "/" (so everything), is
			// what an unset variable makes of "$DIR" or "$DIR/".
			if strings.TrimSpace(e) == "" {
				return nil, fail(key+".excludes", "empty pattern")
			}
			if ok, _ := filepath.Match(filepath.Clean(e), "/"); ok && strings.Contains(e, "/") {
				return nil, fail(key+".excludes", "pattern %q matches / and would exclude everything", e)
			}
		}
		c.Media[name] = m
	}

	c.Copies = map[string]*CopyTarget{}
	for name, rc := range raw.Copy {
		key := "copy." + name
		if err := checkName(name); err != nil {
			return nil, fail(key, "%v", err)
		}
		if rc == nil || rc.Location == "" {
			return nil, fail(key, "needs location")
		}
		if rc.PasswordFile != "" && rc.PasswordCommand != "" {
			return nil, fail(key+".password_command", "give password_file or password_command, not both")
		}
		t := &CopyTarget{Name: name, Location: rc.Location, PasswordFile: abs(rc.PasswordFile), PasswordCommand: rc.PasswordCommand,
			GPGSecretKey: abs(rc.GPGSecretKey), GPGPassphraseFile: abs(rc.GPGPassphraseFile), GPGAgent: rc.GPGAgent, AfterRun: true}
		if !strings.Contains(t.Location, "://") && !strings.HasPrefix(t.Location, "local:") {
			t.Location = abs(t.Location)
		}
		if rc.AfterRun != nil {
			t.AfterRun = *rc.AfterRun
		}
		if t.Location == c.Repository.Location {
			return nil, fail(key+".location", "is the repository itself")
		}
		c.Copies[name] = t
	}

	r := raw.Retention
	for k, v := range map[string]int{"keep_last": r.KeepLast, "keep_hourly": r.KeepHourly, "keep_daily": r.KeepDaily,
		"keep_weekly": r.KeepWeekly, "keep_monthly": r.KeepMonthly, "keep_yearly": r.KeepYearly} {
		if v < 0 {
			return nil, fail("retention."+k, "must not be negative, not %d", v)
		}
	}
	if r.GroupBy != nil {
		for _, f := range strings.Split(*r.GroupBy, ",") {
			switch strings.TrimSpace(f) {
			case "", "host", "paths", "tags", "source":
			default:
				return nil, fail("retention.group_by", "unknown field %q (use host, paths, tags, source)", strings.TrimSpace(f))
			}
		}
	}
	if r.IsZero() && (r.GroupBy != nil || r.Prune) {
		return nil, fail("retention", "group_by and prune need a keep_* rule")
	}
	return c, nil
}

// checkName allows names that are file names in the snapshot and words on
// a command line.
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, "-") || strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/\\\x00 \t\n") {
		return fmt.Errorf("name %q: use letters, digits, '-', '_' and '.' (not first)", name)
	}
	return nil
}

// DatabaseNames returns the names of the databases, sorted.
func (c *Config) DatabaseNames() []string { return sortedKeys(c.Databases) }

// MediaNames returns the names of the media trees, sorted.
func (c *Config) MediaNames() []string { return sortedKeys(c.Media) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// EngineOf returns the engine a URL's scheme names.
func EngineOf(u string) (string, error) {
	scheme, _, ok := strings.Cut(u, "://")
	if !ok {
		scheme, _, ok = strings.Cut(u, ":")
	}
	if !ok {
		return "", errors.New("not a URL (postgres://, mysql://, sqlite:///)")
	}
	e, err := engineName(scheme)
	if err != nil || e == "" {
		return "", fmt.Errorf("URL scheme %q is not postgres, mysql or sqlite", scheme)
	}
	return e, nil
}

// SQLitePath returns the file of an sqlite URL, as dj-database-url reads
// it: sqlite:///relative/db.sqlite3 and sqlite:////absolute/db.sqlite3.
func SQLitePath(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("malformed sqlite URL")
	}
	if u.Host != "" {
		return "", fmt.Errorf("sqlite URL with a host %q: use sqlite:///relative/path or sqlite:////absolute/path", u.Host)
	}
	p := strings.TrimPrefix(u.Path, "/")
	if p == "" || p == ":memory:" {
		return "", errors.New("sqlite URL names no file")
	}
	return p, nil
}

// decodeError turns the TOML library's errors into Errors with lines.
func decodeError(file string, err error) error {
	var sm *toml.StrictMissingError
	if errors.As(err, &sm) && len(sm.Errors) > 0 {
		var msgs []string
		line := 0
		for i := range sm.Errors {
			e := &sm.Errors[i]
			row, _ := e.Position()
			if line == 0 {
				line = row
			}
			msgs = append(msgs, fmt.Sprintf("line %d: unknown key %s", row, strings.Join(e.Key(), ".")))
		}
		msg := strings.TrimPrefix(msgs[0], fmt.Sprintf("line %d: ", line))
		if len(msgs) > 1 {
			msg += " (and " + strings.Join(msgs[1:], ", ") + ")"
		}
		return &Error{File: file, Line: line, Msg: msg}
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if k := de.Key(); len(k) > 0 {
			msg = strings.Join(k, ".") + ": " + msg
		}
		return &Error{File: file, Line: row, Msg: msg}
	}
	return &Error{File: file, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
}

// lineMap maps dotted keys to the line that sets them.
type lineMap map[string]int

// find returns the line of key, or of its nearest parent that has one.
func (m lineMap) find(key string) int {
	for key != "" {
		if l, ok := m[key]; ok {
			return l
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// keyLines finds the line of every table header and key in a valid file.
func keyLines(data []byte) lineMap {
	m := lineMap{}
	p := unstable.Parser{}
	p.Reset(data)
	var table []string
	keyOf := func(n *unstable.Node) ([]string, int) {
		var parts []string
		line := 0
		it := n.Key()
		for it.Next() {
			k := it.Node()
			parts = append(parts, string(k.Data))
			if line == 0 {
				line = p.Shape(k.Raw).Start.Line
			}
		}
		return parts, line
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, line := keyOf(e)
			table = parts
			for i := range parts {
				k := strings.Join(parts[:i+1], ".")
				if _, ok := m[k]; !ok {
					m[k] = line
				}
			}
		case unstable.KeyValue:
			parts, line := keyOf(e)
			m[strings.Join(append(append([]string(nil), table...), parts...), ".")] = line
		}
	}
	return m
}

// checkProfile accepts an empty profile name or one chunk.Profile knows.
// validSample reports whether s is empty, a number of files (1 or more)
// or a percentage above 0 and at most 100, as hoard media verify --sample
// takes.
func validSample(s string) bool {
	if s == "" {
		return true
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		return err == nil && v > 0 && v <= 100
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1
}

func checkProfile(name string) error {
	if name == "" {
		return nil
	}
	_, err := chunk.Profile(name)
	return err
}
