package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoard-backup/hoard/dump/dumptest"
)

// TestE2ENewUserWorkflow is the django-dbbackup user's workflow, end to
// end, as README and docs/gpg.md describe it:
//
//   - a GPG key made by the real gpg on the "workstation";
//   - a write-only backup host: init --gpg-recipient --write-only-key, a
//     hoard.toml naming a PostgreSQL, a MariaDB and an SQLite database, a
//     media tree and [retention] with prune = true;
//   - hoard run twice from a cron-like environment (env -i with only what
//     README's crontab sets), with changes in between: exit 0 both times,
//     retention applied by the write-only key;
//   - "another machine" (a fresh HOME and cache, no hoard.toml) restores
//     all three databases and the media tree with the GPG secret key, and
//     they equal the sources.
//
// And nothing in the repository points outside it.
func TestE2ENewUserWorkflow(t *testing.T) {
	t.Parallel()
	pg := dumptest.Postgres(t)
	my := dumptest.MySQL(t)
	h := gpgNewHome(t)
	const gpgPass = "ops passphrase"
	fpr := h.genKey(t, "Ops <ops@example.com>", "future-default", "never", gpgPass)

	// The backup host.
	hostDir := t.TempDir()
	host := newEnvNoInit(t)
	host.mustRun("init", "--gpg-recipient", h.exportPublic(t, fpr), "--write-only-key", "--s2k", "iterated")

	_, pgURL := dumptest.NewPostgresDB(t, pg)
	dumptest.PSQL(t, pgURL, dumptest.PostgresFixture)
	myName, myURL := dumptest.NewMySQLDB(t, my)
	dumptest.MySQLExec(t, my, myName, dumptest.MySQLFixture)
	lite := filepath.Join(hostDir, "app.db")
	sqliteRun(t, lite, "PRAGMA journal_mode = WAL; CREATE TABLE notes (body TEXT, data BLOB);"+
		"INSERT INTO notes VALUES ('line one'||char(10)||'line two', x'00ff00'), ('', NULL);")
	media := filepath.Join(hostDir, "media")
	gpgMakeTree(t, media, testSeed(t, 23))

	cfg := filepath.Join(hostDir, "hoard.toml")
	gpgWriteFile(t, cfg, []byte(fmt.Sprintf(`[repository]
location = %q
password_file = %q

[databases.main]
url = %q

[databases.shop]
url = %q

[databases.lite]
path = %q

[media.uploads]
paths = [%q]

[retention]
keep_last = 1
prune = true
`, host.repo, host.pwFile, pgURL, myURL, lite, media)))

	hoard := hoardBinary(t)
	cronHome := filepath.Join(hostDir, "home")
	if err := os.MkdirAll(cronHome, 0o700); err != nil {
		t.Fatal(err)
	}
	// Only what README's crontab sets; the working directory is not the
	// config's.
	cron := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), "env", append([]string{"-i",
			"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + cronHome, "HOARD_CONFIG=" + cfg,
			"HOARD_CACHE_DIR=" + filepath.Join(hostDir, "cache"), hoard}, args...)...)
		cmd.Dir = "/"
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) || err != nil {
			t.Fatalf("cron: hoard %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out.String(), errb.String())
		}
		return out.String()
	}
	first := cron("run")
	if !strings.Contains(first, "database main") || !strings.Contains(first, "database lite") {
		t.Fatalf("first run:\n%s", first)
	}
	// A day later: rows, a media file and the SQLite database change.
	dumptest.PSQL(t, pgURL, "CREATE TABLE day2 (x int); INSERT INTO day2 VALUES (2);")
	dumptest.MySQLExec(t, my, myName, "CREATE TABLE day2 (x int); INSERT INTO day2 VALUES (2);")
	sqliteRun(t, lite, "INSERT INTO notes VALUES ('day two', NULL);")
	gpgWriteFile(t, filepath.Join(media, "media", "uploads", "new.jpg"), []byte("a new upload"))
	second := cron("run")
	if !containsAll(second, "removed 1 snapshot\n", "write-only key: only packs no kept snapshot uses were deleted") {
		t.Errorf("second run did not apply retention with the write-only key:\n%s", second)
	}
	cron("forget", "--dry-run")
	cron("snapshots")

	// Another machine: no hoard.toml, a fresh HOME and cache, the GPG
	// secret key exported from the workstation.
	other := t.TempDir()
	secret := h.exportSecret(t, fpr, gpgPass)
	passFile := filepath.Join(other, "gpg-pass")
	gpgWriteFile(t, passFile, []byte(gpgPass+"\n"))
	restorer := &env{t: t, repo: host.repo, pwFile: filepath.Join(other, "no-passphrase-file")}
	restorer.extraEnv = []string{"HOME=" + other, "HOARD_CACHE_DIR=" + filepath.Join(other, "cache"),
		"HOARD_GPG_SECRET_KEY=" + secret, "HOARD_GPG_PASSPHRASE_FILE=" + passFile, "HOARD_PASSWORD_FILE=", "GNUPGHOME=" + filepath.Join(other, "gnupg")}
	if ids := restorer.snapshotIDs(); len(ids) != 1 {
		t.Fatalf("after two runs with keep_last = 1: %d snapshots", len(ids))
	}

	pgNew := dumptest.Name("hoard_wf")
	dumptest.DropPostgresDBLater(t, pg, pgNew)
	if out := restorer.mustRun("db", "restore", "main", "latest", "--into", dumptest.WithDB(pg, pgNew)); !strings.Contains(out, "into "+pgNew) {
		t.Errorf("db restore main: %s", out)
	}
	dumptest.EqualState(t, dumptest.PostgresState(t, pgURL), dumptest.PostgresState(t, dumptest.WithDB(pg, pgNew)))

	myNew := dumptest.Name("hoard_wf")
	dumptest.DropMySQLDBLater(t, my, myNew)
	restorer.mustRun("db", "restore", "shop", "latest", "--into", dumptest.WithDB(my, myNew))
	dumptest.EqualState(t, dumptest.MySQLState(t, my, myName), dumptest.MySQLState(t, my, myNew))

	liteNew := filepath.Join(other, "restored.db")
	restorer.mustRun("db", "restore", "lite", "latest", "--into", "sqlite:///"+liteNew)
	if a, b := sqliteRun(t, lite, ".dump"), sqliteRun(t, liteNew, ".dump"); a != b || !strings.Contains(b, "day two") {
		t.Errorf("SQLite differs:\n%s\n%s", a, b)
	}

	target := filepath.Join(other, "restore")
	restorer.mustRun("restore", "latest", "--target", target, "--include", "/media")
	gpgSameSums(t, "media tree", gpgSums(t, media), gpgSums(t, filepath.Join(target, "media", "uploads", "media")))

	// The full key repacks what the write-only key left; all is sound.
	restorer.mustRun("prune")
	restorer.mustRun("check", "--read-data")

	// Nothing in the repository points outside it.
	outside := ".." + "/shared"
	// From the package's folder: the in-process S3 server of other tests
	// changes the working directory.
	err := filepath.WalkDir(filepath.Join(pkgDir, "..", ".."), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(outside)) {
			t.Errorf("%s points to %s", p, outside)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
