package config_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hoard-backup/hoard/config"
)

const full = `# hoard.toml
[repository]
location = "repo"
password_file = "secrets/passphrase"
host = "web1"

[databases.main]
url = "postgres://app@db.internal:5432/app?sslmode=require"
password_file = "/etc/hoard/pg-app"
restore_args = ["--no-owner"]
verify_after_run = true

[databases.shop]
engine = "mariadb"
url_env = "SHOP_DATABASE_URL"
dump_args = ["--single-transaction", "--quick"]

[databases.cms]
url = "sqlite:///data/cms.sqlite3"

[databases.legacy]
engine = "sqlite"
path = "/srv/legacy/db.sqlite3"

[media.uploads]
paths = ["/srv/app/media", "static"]
excludes = ["*.tmp", "cache"]
spot_check = "5%"

[retention]
keep_last = 3
keep_daily = 7
keep_weekly = 4
keep_monthly = 12
keep_within = "1y2m3d4h"
keep_tags = ["keep"]
`

func TestParse(t *testing.T) {
	c, err := config.Parse("/etc/hoard/hoard.toml", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if c.Repository.Location != "/etc/hoard/repo" || c.Repository.PasswordFile != "/etc/hoard/secrets/passphrase" || c.Repository.Host != "web1" {
		t.Errorf("repository %+v", c.Repository)
	}
	if got := c.DatabaseNames(); !reflect.DeepEqual(got, []string{"cms", "legacy", "main", "shop"}) {
		t.Errorf("databases %v", got)
	}
	m := c.Databases["main"]
	if m.Engine != config.Postgres || m.URL.Value == "" || m.Password.File != "/etc/hoard/pg-app" || m.DumpArgs != nil ||
		!reflect.DeepEqual(m.RestoreArgs, []string{"--no-owner"}) || !m.VerifyAfterRun {
		t.Errorf("main %+v", m)
	}
	if s := c.Databases["shop"]; s.Engine != config.MySQL || s.URL.Env != "SHOP_DATABASE_URL" || len(s.DumpArgs) != 2 || s.VerifyAfterRun {
		t.Errorf("shop %+v", s)
	}
	if s := c.Databases["cms"]; s.Engine != config.SQLite || s.Path != "/etc/hoard/data/cms.sqlite3" || s.URL.IsSet() {
		t.Errorf("cms %+v", s)
	}
	if s := c.Databases["legacy"]; s.Engine != config.SQLite || s.Path != "/srv/legacy/db.sqlite3" {
		t.Errorf("legacy %+v", s)
	}
	if u := c.Media["uploads"]; !reflect.DeepEqual(u.Paths, []string{"/srv/app/media", "/etc/hoard/static"}) || len(u.Excludes) != 2 || u.SpotCheck != "5%" {
		t.Errorf("uploads %+v", u)
	}
	r := c.Retention
	if r.KeepLast != 3 || r.KeepDaily != 7 || r.KeepWeekly != 4 || r.KeepMonthly != 12 ||
		r.KeepWithin != (config.Duration{Years: 1, Months: 2, Days: 3, Hours: 4}) || r.KeepWithin.String() != "1y2m3d4h" ||
		!reflect.DeepEqual(r.KeepTags, []string{"keep"}) {
		t.Errorf("retention %+v", r)
	}
}

// Every mistake names its line.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		line       int
		want       string
	}{
		{"unknown key", "[databases.main]\nurl = \"postgres://h/d\"\npasword = \"x\"\n", 3, "unknown key databases.main.pasword"},
		{"unknown table", "[repository]\nlocation = \"r\"\n\n[backups]\nx = 1\n", 4, "unknown key backups"},
		{"unknown top key", "repository = \"/srv/repo\"\n", 1, "repository"},
		{"bad type", "[retention]\nkeep_daily = \"seven\"\n", 2, "keep_daily"},
		{"negative", "[retention]\n\nkeep_weekly = -1\n", 3, "keep_weekly: must not be negative"},
		{"bad duration", "[retention]\nkeep_within = \"7 days\"\n", 2, "duration"},
		{"bad group_by", "[retention]\nkeep_last = 2\ngroup_by = \"host,disk\"\n", 3, `retention.group_by: unknown field "disk"`},
		{"prune without rule", "[retention]\nprune = true\n", 1, "need a keep_* rule"},
		{"bad engine", "[databases.x]\nengine = \"oracle\"\nurl = \"postgres://h/d\"\n", 2, `"oracle" is not postgres`},
		{"engine mismatch", "[databases.x]\nengine = \"mysql\"\nurl = \"postgres://h/d\"\n", 3, "a postgres URL for engine mysql"},
		{"bad scheme", "[databases.x]\nurl = \"oracle://h/d\"\n", 2, "not postgres, mysql or sqlite"},
		{"two secrets", "[databases.x]\nurl = \"mysql://h/d\"\npassword = \"a\"\npassword_file = \"b\"\n", 4, "give only one of password"},
		{"no url", "\n[databases.x]\nengine = \"mysql\"\n", 2, "needs url"},
		{"url and path", "[databases.x]\nurl = \"mysql://h/d\"\npath = \"x.db\"\n", 3, "url or path"},
		{"sqlite password", "[databases.x]\npath = \"x.db\"\npassword = \"p\"\n", 1, "no password"},
		{"physical mysql", "[databases.x]\nurl = \"mysql://h/d\"\nphysical = true\n", 3, "physical backups are for postgres"},
		{"drill of a physical backup", "[databases.x]\nurl = \"postgres://h/d\"\nphysical = true\nverify_after_run = true\n", 4, "needs a logical dump"},
		{"media without paths", "[media.x]\nexcludes = []\n", 1, "needs paths"},
		{"bad spot_check", "[media.x]\npaths = [\"/m\"]\nspot_check = \"0%\"\n", 3, "spot_check: want a number of files"},
		{"spot_check not a number", "[media.x]\npaths = [\"/m\"]\nspot_check = \"some\"\n", 3, "spot_check"},
		{"bad exclude", "[media.x]\npaths = [\"/a\"]\nexcludes = [\"[\"]\n", 3, "bad pattern"},
		{"exclude everything", "[media.x]\npaths = [\"/a\"]\nexcludes = [\"/\"]\n", 3, "would exclude everything"},
		{"exclude every top folder", "[media.x]\npaths = [\"/a\"]\nexcludes = [\"/*\"]\n", 3, "would exclude everything"},
		{"empty exclude", "[media.x]\npaths = [\"/a\"]\nexcludes = [\"\"]\n", 3, "empty pattern"},
		{"bad name", "[databases.\"a/b\"]\nurl = \"mysql://h/d\"\n", 1, "name"},
		{"syntax", "[repository]\nlocation = \n", 2, ""},
		{"two repository secrets", "[repository]\npassword_file = \"a\"\npassword_command = \"b\"\n", 3, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("/x/hoard.toml", []byte(tc.file))
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want a *config.Error", err, err)
			}
			if ce.Line != tc.line || !strings.Contains(ce.Msg, tc.want) || !strings.HasPrefix(err.Error(), "/x/hoard.toml:") {
				t.Errorf("error %q (line %d), want line %d and %q", err, ce.Line, tc.line, tc.want)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\r\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOARD_TEST_SECRET", "from-env")
	ctx := context.Background()
	for _, tc := range []struct {
		s    config.Secret
		want string
		err  string
	}{
		{config.Secret{Value: "literal"}, "literal", ""},
		{config.Secret{File: pwFile}, "from-file", ""},
		{config.Secret{Command: "printf 'from-command\\nmore'"}, "from-command", ""},
		{config.Secret{Env: "HOARD_TEST_SECRET"}, "from-env", ""},
		{config.Secret{}, "", ""},
		{config.Secret{Env: "HOARD_TEST_UNSET", Key: "databases.x.password"}, "", "HOARD_TEST_UNSET is not set"},
		{config.Secret{File: filepath.Join(dir, "missing"), Key: "k"}, "", "no such file"},
		{config.Secret{Command: "echo oops >&2; exit 3", Key: "k"}, "", "oops"},
	} {
		got, err := tc.s.Get(ctx)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: error %v, want %q", tc.s, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: %q, %v; want %q", tc.s, got, err, tc.want)
		}
	}
}

func TestSQLitePath(t *testing.T) {
	for in, want := range map[string]string{
		"sqlite:///db.sqlite3":         "db.sqlite3",
		"sqlite:////srv/app/db.sqlite": "/srv/app/db.sqlite",
		"sqlite3:///a/b.db":            "a/b.db",
	} {
		if got, err := config.SQLitePath(in); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"sqlite://host/db", "sqlite://", "sqlite:///:memory:"} {
		if _, err := config.SQLitePath(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hoard.toml")
	if err := os.WriteFile(p, []byte("[repository]\nlocation = \"r\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != p || c.Repository.Location != filepath.Join(dir, "r") {
		t.Errorf("%+v", c)
	}
	if _, err := config.Load(filepath.Join(dir, "missing.toml")); err == nil {
		t.Error("missing file: no error")
	}
}
