package main

// End-to-end tests of GPG keys, write-only keys and key management, against
// the real gpg in a temporary GNUPGHOME. They skip when gpg is missing,
// except in CI (CI set), where they fail.
//
// gpg-agent: the test home's gpg-agent.conf allows preset passphrases and
// names /bin/false as pinentry, so that nothing can prompt or hang; the
// --gpg-agent runs get the key's passphrase preset into the agent
// (gpg-connect-agent PRESET_PASSPHRASE), as a user's agent holds it after
// the first use. Keys are made with --pinentry-mode loopback --passphrase.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/internal/testenv"
)

// gpgHome is a temporary GNUPGHOME with its own gpg-agent.
type gpgHome struct {
	dir string
}

// gpgRequire skips the test when gpg is missing, unless CI is set.
func gpgRequire(t *testing.T) {
	t.Helper()
	testenv.NeedPrograms(t, "gpg", "gpg-connect-agent", "gpgconf")
}

func gpgNewHome(t *testing.T) *gpgHome {
	t.Helper()
	gpgRequire(t)
	// A short path of its own: gpg-agent's socket may live in it.
	dir, err := os.MkdirTemp("", "hoard-e2e-gpg-")
	if err != nil {
		t.Fatal(err)
	}
	h := &gpgHome{dir: dir}
	conf := "allow-preset-passphrase\nallow-loopback-pinentry\npinentry-program /bin/false\n"
	gpgWriteFile(t, filepath.Join(dir, "gpg-agent.conf"), []byte(conf))
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "all")
		cmd.Env = h.env()
		_ = cmd.Run()
		os.RemoveAll(dir)
	})
	return h
}

func (h *gpgHome) env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GNUPGHOME=") {
			out = append(out, kv)
		}
	}
	return append(out, "GNUPGHOME="+h.dir)
}

// gpg runs `gpg --batch` and returns its standard output; it fails the test
// if gpg fails.
func (h *gpgHome) gpg(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--batch", "--quiet", "--no-tty"}, args...)...)
	cmd.Env = h.env()
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// genKey runs `gpg --quick-gen-key UID ALGO default EXPIRE` (with extra
// options in front) and returns the key's fingerprint. For RSA, which
// --quick-gen-key makes as a sign-only primary key, it adds an RSA
// encryption subkey as gpg's full dialog does.
func (h *gpgHome) genKey(t *testing.T, uid, algo, expire, passphrase string, extra ...string) string {
	t.Helper()
	start := time.Now()
	args := append(extra, "--pinentry-mode", "loopback", "--passphrase", passphrase, "--quick-gen-key", uid, algo, "default", expire)
	h.gpg(t, nil, args...)
	fpr := h.fingerprint(t, uid)
	if strings.HasPrefix(algo, "rsa") {
		h.gpg(t, nil, append(extra, "--pinentry-mode", "loopback", "--passphrase", passphrase, "--quick-add-key", fpr, algo, "encr", expire)...)
	}
	t.Logf("gpg key %s %s (%s): %v", algo, fpr, uid, time.Since(start).Round(time.Millisecond))
	return fpr
}

func (h *gpgHome) fingerprint(t *testing.T, uid string) string {
	t.Helper()
	for _, line := range strings.Split(string(h.gpg(t, nil, "--with-colons", "--list-keys", uid)), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" {
			return f[9]
		}
	}
	t.Fatalf("no key %s", uid)
	return ""
}

// exportPublic writes `gpg --armor --export FPR` to a file and returns its path.
func (h *gpgHome) exportPublic(t *testing.T, fpr string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), fpr[:8]+".asc")
	gpgWriteFile(t, p, h.gpg(t, nil, "--armor", "--export", fpr))
	return p
}

// exportSecret writes `gpg --export-secret-keys FPR` (binary) to a file.
func (h *gpgHome) exportSecret(t *testing.T, fpr, passphrase string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), fpr[:8]+".gpg")
	gpgWriteFile(t, p, h.gpg(t, nil, "--pinentry-mode", "loopback", "--passphrase", passphrase, "--export-secret-keys", fpr))
	return p
}

// preset gives gpg-agent the passphrase of every key of fpr.
func (h *gpgHome) preset(t *testing.T, fpr, passphrase string) {
	t.Helper()
	out := h.gpg(t, nil, "--with-colons", "--with-keygrip", "--list-secret-keys", fpr)
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Split(line, ":"); f[0] == "grp" {
			cmd := exec.Command("gpg-connect-agent", "PRESET_PASSPHRASE "+f[9]+" -1 "+hex.EncodeToString([]byte(passphrase)), "/bye")
			cmd.Env = h.env()
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
				t.Fatalf("preset passphrase: %v %s", err, out)
			}
		}
	}
}

func gpgWriteFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// gpgMarker is in every tree gpgMakeTree writes: no output of a write-only
// key may contain it.
const gpgMarker = "HOARD-GPG-E2E-CONTENT-MARKER-4b1d"

// gpgMakeTree writes a small tree of files (text with the marker, random
// data, one 9 MiB file of several chunks) under dir.
func gpgMakeTree(t *testing.T, dir string, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	if err := os.MkdirAll(filepath.Join(dir, "media", "uploads"), 0o755); err != nil {
		t.Fatal(err)
	}
	gpgWriteFile(t, filepath.Join(dir, "db.sql"), []byte(strings.Repeat("INSERT INTO secrets VALUES ('"+gpgMarker+"');\n", 2000)))
	for i := range 5 {
		b := make([]byte, 1000+rng.IntN(100000))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		gpgWriteFile(t, filepath.Join(dir, "media", "uploads", "img"+string(rune('a'+i))+".jpg"), b)
	}
	big := make([]byte, 9<<20)
	if _, err := io.ReadFull(newDataGen(seed), big); err != nil {
		t.Fatal(err)
	}
	copy(big[5<<20:], gpgMarker)
	gpgWriteFile(t, filepath.Join(dir, "big.bin"), big)
}

// gpgSums returns path -> SHA-256 of every regular file under root.
func gpgSums(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		sum := sha256.Sum256(b)
		m[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return m
}

// gpgSameSums fails unless the two maps are equal.
func gpgSameSums(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: nothing to compare", what)
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %s differs or is missing", what, p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: %s is extra", what, p)
		}
	}
}

// gpgWith returns a copy of e with more environment variables.
func gpgWith(t *testing.T, e *env, kv ...string) *env {
	c := e.on(t)
	c.extraEnv = append(c.extraEnv, kv...)
	return c
}

// gpgExpectFail runs hoard, wants exit code code and stderr containing every
// string in want, and returns stdout and stderr.
func gpgExpectFail(t *testing.T, e *env, code int, want []string, args ...string) (string, string) {
	t.Helper()
	out, stderr, got := e.run(args...)
	if got != code {
		t.Fatalf("hoard %s: exit %d, want %d\nstderr: %s", strings.Join(args, " "), got, code, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Fatalf("hoard %s: stderr %q does not say %q", strings.Join(args, " "), stderr, w)
		}
	}
	return out, stderr
}

// keyListEntry is one entry of `hoard --json key list`.
type keyListEntry struct {
	ID         string   `json:"id"`
	InUse      bool     `json:"in_use"`
	Kind       string   `json:"kind"`
	Protection string   `json:"protection"`
	S2K        []string `json:"s2k"`
	Recipients []struct {
		KeyID string `json:"key_id"`
		Key   string `json:"key"`
	} `json:"recipients"`
	Host  string `json:"host"`
	Error string `json:"error"`
}

func gpgKeyList(t *testing.T, e *env) []keyListEntry {
	t.Helper()
	var keys []keyListEntry
	e.on(t).mustRunJSON(&keys, "key", "list")
	return keys
}

func gpgInUse(t *testing.T, keys []keyListEntry) keyListEntry {
	t.Helper()
	for _, k := range keys {
		if k.InUse {
			return k
		}
	}
	t.Fatal("no key in use")
	return keyListEntry{}
}

// TestE2EGPG runs the GPG workflow with keys the real gpg made.
func TestE2EGPG(t *testing.T) {
	t.Parallel()
	h := gpgNewHome(t)
	const rsaPass, cvPass = "rsa passphrase", "cv passphrase"
	rsaFpr := h.genKey(t, "Test RSA <rsa@example.com>", "rsa4096", "never", rsaPass)
	cvFpr := h.genKey(t, "Test CV <cv@example.com>", "future-default", "never", cvPass)
	passFile := func(t *testing.T, p string) string {
		f := filepath.Join(t.TempDir(), "gpg-pass")
		gpgWriteFile(t, f, []byte(p+"\n"))
		return f
	}

	// newGPGRepo makes a repository whose full key is encrypted to fpr,
	// with a write-only key under the test passphrase, and returns the
	// write-only env (the backup host) and the secret-key env (the machine
	// that restores).
	newGPGRepo := func(t *testing.T, fpr, pass string) (writer, reader *env) {
		t.Helper()
		e := newEnvNoInit(t)
		e.extraEnv = []string{"GNUPGHOME=" + h.dir}
		out := e.mustRun("init", "--gpg-recipient", h.exportPublic(t, fpr), "--write-only-key", "--s2k", "iterated")
		if !strings.Contains(out, fpr) {
			t.Fatalf("init does not name the recipient:\n%s", out)
		}
		reader = gpgWith(t, e, "HOARD_GPG_SECRET_KEY="+h.exportSecret(t, fpr, pass), "HOARD_GPG_PASSPHRASE_FILE="+passFile(t, pass))
		return e, reader
	}

	for _, k := range []struct{ name, fpr, pass string }{{"rsa4096", rsaFpr, rsaPass}, {"cv25519", cvFpr, cvPass}} {
		t.Run(k.name, func(t *testing.T) {
			writer, reader := newGPGRepo(t, k.fpr, k.pass)
			src := filepath.Join(t.TempDir(), "site")
			gpgMakeTree(t, src, testSeed(t, 7))
			want := gpgSums(t, src)
			writer.mustBackup(nil, src)
			if wo := gpgInUse(t, gpgKeyList(t, writer)); wo.Kind != "write-only" {
				t.Fatalf("backup host's key is %q", wo.Kind)
			}

			dst := t.TempDir()
			reader.mustRun("restore", "latest", "--target", dst)
			gpgSameSums(t, "restore with --gpg-secret-key", want, gpgSums(t, filepath.Join(dst, "site")))

			h.preset(t, k.fpr, k.pass)
			agent := gpgWith(t, writer, "HOARD_GPG_AGENT=1")
			dst2 := t.TempDir()
			agent.mustRun("restore", "latest", "--target", dst2)
			gpgSameSums(t, "restore with --gpg-agent", want, gpgSums(t, filepath.Join(dst2, "site")))

			keys := gpgKeyList(t, agent)
			full := gpgInUse(t, keys)
			if full.Kind != "full" || full.Protection != "gpg" || len(full.Recipients) != 1 || !strings.HasPrefix(full.Recipients[0].Key, k.fpr) {
				t.Fatalf("key list with --gpg-agent: %+v", keys)
			}
		})
	}

	t.Run("interop", func(t *testing.T) {
		writer, reader := newGPGRepo(t, cvFpr, cvPass)
		src := filepath.Join(t.TempDir(), "site")
		gpgMakeTree(t, src, 11)
		writer.mustBackup(nil, src)
		var cfg struct {
			ID string `json:"id"`
		}
		reader.mustRunJSON(&cfg, "cat", "config")
		var fullName, woName string
		for _, k := range gpgKeyList(t, reader) {
			if k.InUse {
				fullName = k.ID
			} else {
				woName = k.ID
			}
		}
		keysDir := filepath.Join(writer.repo, "keys")

		// gpg -d of the recipient key file prints the secrets.
		type secrets struct {
			Version    int    `json:"hoard_key"`
			Repository string `json:"repository"`
			Kind       string `json:"kind"`
			DataSecret string `json:"data_secret_key"`
		}
		plain := h.gpg(t, nil, "--pinentry-mode", "loopback", "--passphrase", cvPass, "--decrypt", filepath.Join(keysDir, fullName))
		var s secrets
		if err := json.Unmarshal(plain, &s); err != nil || s.Version != 2 || s.Repository != cfg.ID || s.Kind != "full" || s.DataSecret == "" {
			t.Fatalf("gpg -d keys/%s: %v, kind %q, repository %q", fullName[:8], err, s.Kind, s.Repository)
		}
		// ... and of the passphrase key file made with --s2k iterated.
		woPlain := h.gpg(t, nil, "--pinentry-mode", "loopback", "--passphrase-file", writer.pwFile, "--decrypt", filepath.Join(keysDir, woName))
		var wo secrets
		if err := json.Unmarshal(woPlain, &wo); err != nil || wo.Kind != "write-only" || wo.DataSecret != "" || wo.Repository != cfg.ID {
			t.Fatalf("gpg -d keys/%s: %v, kind %q, repository %q", woName[:8], err, wo.Kind, wo.Repository)
		}

		// A key file written by gpg --encrypt replaces hoard's own.
		byGPG := h.gpg(t, plain, "--trust-model", "always", "--encrypt", "--recipient", cvFpr)
		sum := sha256.Sum256(byGPG)
		gpgName := hex.EncodeToString(sum[:])
		gpgWriteFile(t, filepath.Join(keysDir, gpgName), byGPG)
		if err := os.Remove(filepath.Join(keysDir, fullName)); err != nil {
			t.Fatal(err)
		}
		if k := gpgInUse(t, gpgKeyList(t, reader)); k.ID != gpgName || k.Kind != "full" {
			t.Fatalf("in use: %+v, want the key file gpg wrote", k)
		}
		dst := t.TempDir()
		reader.mustRun("restore", "latest", "--target", dst)
		gpgSameSums(t, "restore through gpg's key file", gpgSums(t, src), gpgSums(t, filepath.Join(dst, "site")))
	})

	t.Run("write-only reads no content", func(t *testing.T) {
		writer, reader := newGPGRepo(t, cvFpr, cvPass)
		src := filepath.Join(t.TempDir(), "site")
		gpgMakeTree(t, src, 13)
		first := writer.mustBackup(nil, src)
		big, err := os.ReadFile(filepath.Join(src, "big.bin"))
		if err != nil {
			t.Fatal(err)
		}
		// A second backup of the same content deduplicates against the first:
		// a copy under another path (so every file is read again) and the
		// big file as a stream.
		cp := filepath.Join(t.TempDir(), "copy")
		gpgMakeTree(t, cp, 13)
		second := writer.mustBackup(nil, cp)
		if second.Summary.DataBlobsNew != 0 || second.Summary.BytesAdded > 64<<10 || second.Summary.BytesRead < first.Summary.BytesRead {
			t.Fatalf("second backup: %+v, want no new data (first added %d bytes)", second.Summary, first.Summary.BytesAdded)
		}
		stream := writer.mustBackup(bytes.NewReader(big), "--stdin", "--stdin-filename", "big.bin")
		if stream.Summary.DataBlobsNew != 0 || stream.Summary.BytesAdded > 64<<10 {
			t.Fatalf("stream backup: %+v, want no new data", stream.Summary)
		}
		t.Logf("first backup added %d bytes; second %d, stream %d", first.Summary.BytesAdded, second.Summary.BytesAdded, stream.Summary.BytesAdded)

		// Structure works.
		writer.mustRun("snapshots")
		if out := writer.mustRun("ls", first.ID, "/site"); !strings.Contains(out, "big.bin") {
			t.Fatalf("ls:\n%s", out)
		}
		writer.mustRun("check")

		// Content does not.
		var outputs []string
		dst := t.TempDir()
		for _, args := range [][]string{
			{"restore", first.ID, "--target", dst},
			{"restore", stream.ID, "--target", dst, "--ignore-errors"},
			{"dump", first.ID, "/site/db.sql"},
			{"dump", stream.ID, "big.bin"},
			{"check", "--read-data"},
		} {
			out, stderr := gpgExpectFail(t, writer, exitWriteOnly, []string{"can write backups but cannot read their content"}, args...)
			if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 {
				t.Errorf("hoard %s: want one sentence, got:\n%s", strings.Join(args, " "), stderr)
			}
			if out != "" {
				t.Errorf("hoard %s printed %d bytes", strings.Join(args, " "), len(out))
			}
			outputs = append(outputs, out, stderr)
		}
		if got := gpgSums(t, dst); len(got) != 0 {
			t.Fatalf("restore with a write-only key wrote files: %v", got)
		}
		for _, args := range [][]string{{"cat", "config"}, {"cat", "snapshot", first.ID}, {"cat", "snapshot", stream.ID}, {"ls", "-l", first.ID}} {
			out, stderr, _ := writer.run(args...)
			outputs = append(outputs, out, stderr)
		}
		for _, o := range outputs {
			if strings.Contains(o, gpgMarker) || strings.Contains(o, string(big[:64])) {
				t.Fatal("a write-only command printed stored file content")
			}
		}
		// The reader still gets everything.
		dst2 := t.TempDir()
		reader.mustRun("restore", second.ID, "--target", dst2)
		gpgSameSums(t, "restore", gpgSums(t, cp), gpgSums(t, filepath.Join(dst2, "copy")))
	})

	t.Run("refusals", func(t *testing.T) {
		writer, reader := newGPGRepo(t, cvFpr, cvPass)
		src := filepath.Join(t.TempDir(), "site")
		gpgMakeTree(t, src, 17)
		writer.mustBackup(nil, src)
		state := gpgSums(t, writer.repo)
		unchanged := func(t *testing.T, what string) {
			t.Helper()
			gpgSameSums(t, what+": repository files", state, gpgSums(t, writer.repo))
		}

		t.Run("wrong secret key", func(t *testing.T) {
			otherFpr := h.genKey(t, "Other <other@example.com>", "future-default", "never", "")
			e := gpgWith(t, writer, "HOARD_GPG_SECRET_KEY="+h.exportSecret(t, otherFpr, ""))
			for _, args := range [][]string{{"snapshots"}, {"backup", src}, {"restore", "latest", "--target", t.TempDir()}} {
				gpgExpectFail(t, e, exitWrongKey, []string{"no key file is encrypted to", otherFpr}, args...)
			}
			unchanged(t, "wrong secret key")
		})
		t.Run("wrong gpg passphrase", func(t *testing.T) {
			e := gpgWith(t, reader, "HOARD_GPG_PASSPHRASE_FILE="+passFile(t, "not the passphrase"))
			for _, args := range [][]string{{"snapshots"}, {"backup", src}} {
				gpgExpectFail(t, e, exitWrongKey, []string{"wrong passphrase for the GPG secret key", cvFpr}, args...)
			}
			unchanged(t, "wrong gpg passphrase")
		})

		expiredFpr := h.genKey(t, "Expired <expired@example.com>", "future-default", "1y", "", "--faked-system-time", "20200101T000000")
		revokedFpr := h.genKey(t, "Revoked <revoked@example.com>", "future-default", "never", "")
		rev, err := os.ReadFile(filepath.Join(h.dir, "openpgp-revocs.d", revokedFpr+".rev"))
		if err != nil {
			t.Fatal(err)
		}
		// gpg writes the certificate with a ':' in front of the armor line
		// so that it is not imported by accident.
		h.gpg(t, bytes.ReplaceAll(rev, []byte(":-----BEGIN"), []byte("-----BEGIN")), "--import")
		// The issue's own command line makes a sign-only key.
		signFpr := h.genKey(t, "Sign <sign@example.com>", "ed25519", "never", "")
		for _, c := range []struct{ name, fpr, reason string }{
			{"expired", expiredFpr, "expired on 202"},
			{"revoked", revokedFpr, "is revoked"},
			{"sign-only", signFpr, "no encryption-capable subkey"},
		} {
			t.Run(c.name, func(t *testing.T) {
				pub := h.exportPublic(t, c.fpr)
				fresh := newEnvNoInit(t)
				gpgExpectFail(t, fresh, exitFailure, []string{c.fpr, c.reason}, "init", "--gpg-recipient", pub)
				if _, err := os.Stat(fresh.repo); !os.IsNotExist(err) {
					t.Fatalf("init with a refused key left %s: %v", fresh.repo, err)
				}
				gpgExpectFail(t, reader, exitFailure, []string{c.fpr, c.reason}, "key", "add", "--gpg-recipient", pub)
				gpgExpectFail(t, writer, exitFailure, []string{c.fpr, c.reason}, "key", "add", "--write-only", "--gpg-recipient", pub)
				unchanged(t, c.name)
			})
		}

		t.Run("key file of another repository", func(t *testing.T) {
			_, otherReader := newGPGRepo(t, cvFpr, cvPass)
			other := gpgInUse(t, gpgKeyList(t, otherReader))
			own := gpgInUse(t, gpgKeyList(t, reader))
			keysDir := filepath.Join(writer.repo, "keys")
			b, err := os.ReadFile(filepath.Join(otherReader.repo, "keys", other.ID))
			if err != nil {
				t.Fatal(err)
			}
			// Swap this repository's full key file for the other's.
			ownBytes, err := os.ReadFile(filepath.Join(keysDir, own.ID))
			if err != nil {
				t.Fatal(err)
			}
			gpgWriteFile(t, filepath.Join(keysDir, other.ID), b)
			if err := os.Remove(filepath.Join(keysDir, own.ID)); err != nil {
				t.Fatal(err)
			}
			swapped := gpgSums(t, writer.repo)
			for _, args := range [][]string{{"snapshots"}, {"backup", src}} {
				gpgExpectFail(t, reader, exitFailure, []string{"keys/" + other.ID, "belongs to another repository"}, args...)
			}
			gpgSameSums(t, "foreign key file: repository files", swapped, gpgSums(t, writer.repo))
			gpgWriteFile(t, filepath.Join(keysDir, own.ID), ownBytes)
			os.Remove(filepath.Join(keysDir, other.ID))
			unchanged(t, "after the swap back")
		})
	})

	t.Run("key management", func(t *testing.T) {
		p := newEnv(t) // full key under the test passphrase
		p.extraEnv = []string{"GNUPGHOME=" + h.dir}
		src := filepath.Join(t.TempDir(), "site")
		gpgMakeTree(t, src, 19)
		p.mustBackup(nil, src)
		woPass := passFile(t, "write-only passphrase")
		var added struct{ ID, Kind string }
		p.mustRunJSON(&added, "key", "add", "--write-only", "--s2k", "iterated", "--new-password-file", woPass)
		woID := added.ID
		p.mustRunJSON(&added, "key", "add", "--gpg-recipient", h.exportPublic(t, cvFpr))
		gpgID := added.ID
		if added.Kind != "full" {
			t.Fatalf("key add --gpg-recipient made a %q key", added.Kind)
		}
		pID := gpgInUse(t, gpgKeyList(t, p)).ID

		w := gpgWith(t, p, "HOARD_PASSWORD_FILE="+woPass)
		g := gpgWith(t, p, "HOARD_GPG_SECRET_KEY="+h.exportSecret(t, cvFpr, cvPass), "HOARD_GPG_PASSPHRASE_FILE="+passFile(t, cvPass))

		keys := gpgKeyList(t, g)
		if len(keys) != 3 {
			t.Fatalf("key list: %+v", keys)
		}
		for _, k := range keys {
			switch k.ID {
			case gpgID:
				if !k.InUse || k.Kind != "full" || k.Protection != "gpg" || !strings.HasPrefix(k.Recipients[0].Key, cvFpr) {
					t.Fatalf("gpg key: %+v", k)
				}
			case woID:
				if k.Kind != "" || k.Protection != "passphrase" || k.S2K[0] != "iterated" {
					t.Fatalf("write-only key seen with the GPG key: %+v", k)
				}
			case pID:
				if k.Kind != "" || k.Protection != "passphrase" || k.S2K[0] != "iterated" {
					t.Fatalf("passphrase key seen with the GPG key: %+v", k)
				}
			}
		}
		if out := g.mustRun("key", "list"); !strings.Contains(out, "*  "+gpgID[:8]) || !strings.Contains(out, cvFpr) {
			t.Fatalf("key list:\n%s", out)
		}

		// The write-only key backs up, and can neither read nor make a full key.
		if wo := gpgInUse(t, gpgKeyList(t, w)); wo.ID != woID || wo.Kind != "write-only" {
			t.Fatalf("write-only in use: %+v", wo)
		}
		w.mustBackup(nil, src)
		gpgExpectFail(t, w, exitWriteOnly, nil, "restore", "latest", "--target", t.TempDir())
		gpgExpectFail(t, w, exitWriteOnly, nil, "key", "add", "--new-password-file", woPass)
		gpgExpectFail(t, w, exitWriteOnly, []string{"cannot tell whether"}, "key", "remove", gpgID[:10])

		// Removing: not the key in use, not the last full key.
		gpgExpectFail(t, p, exitFailure, []string{"the one in use"}, "key", "remove", pID[:10])
		gpgExpectFail(t, p, exitFailure, []string{"last one known to read content"}, "key", "remove", "--force", pID[:10])
		g.mustRun("key", "remove", pID[:10])
		gpgExpectFail(t, g, exitFailure, []string{"last one known to read content"}, "key", "remove", "--force", gpgID[:10])
		gpgExpectFail(t, p, exitWrongKey, nil, "snapshots")

		// passwd replaces the write-only key file in use.
		woPass2 := passFile(t, "another write-only passphrase")
		var pw struct{ ID, Removed string }
		w.mustRunJSON(&pw, "key", "passwd", "--s2k", "iterated", "--new-password-file", woPass2)
		if pw.Removed != woID {
			t.Fatalf("passwd removed %s, want %s", pw.Removed, woID)
		}
		gpgExpectFail(t, w, exitWrongKey, nil, "snapshots")
		w2 := gpgWith(t, p, "HOARD_PASSWORD_FILE="+woPass2)
		if wo := gpgInUse(t, gpgKeyList(t, w2)); wo.ID != pw.ID || wo.Kind != "write-only" {
			t.Fatalf("after passwd: %+v", wo)
		}
		gpgExpectFail(t, g, exitFailure, []string{"not protected by a passphrase"}, "key", "passwd", "--new-password-file", woPass2)
		if ks := gpgKeyList(t, g); len(ks) != 2 {
			t.Fatalf("keys after passwd: %+v", ks)
		}
		dst := t.TempDir()
		g.mustRun("restore", "latest", "--target", dst)
		gpgSameSums(t, "restore after key changes", gpgSums(t, src), gpgSums(t, filepath.Join(dst, "site")))
	})
}
