package crypto

// Tests against the real gpg (GnuPG 2.2 on the project's machines): keys
// made by gpg work as recipients and secret keys, gpg decrypts the key files
// hoard writes, and hoard opens the ones gpg writes. They skip when gpg is
// missing, except in CI (CI set), where they fail.

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/internal/testenv"
)

// gpgTestHome is a temporary GNUPGHOME.
type gpgTestHome struct {
	t   *testing.T
	dir string
}

func newGPGTestHome(t *testing.T) *gpgTestHome {
	t.Helper()
	testenv.NeedPrograms(t, "gpg")
	// A short path: gpg-agent's socket lives here.
	dir, err := os.MkdirTemp("", "hoard-gpg-")
	if err != nil {
		t.Fatal(err)
	}
	h := &gpgTestHome{t: t, dir: dir}
	conf := "allow-preset-passphrase\nallow-loopback-pinentry\npinentry-program /bin/false\n"
	if err := os.WriteFile(filepath.Join(dir, "gpg-agent.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "all")
		cmd.Env = h.env()
		_ = cmd.Run()
		os.RemoveAll(dir)
	})
	return h
}

func (h *gpgTestHome) env() []string { return append(os.Environ(), "GNUPGHOME="+h.dir) }

// gpg runs gpg --batch with args and stdin, and returns its output.
func (h *gpgTestHome) gpg(stdin []byte, args ...string) []byte {
	h.t.Helper()
	cmd := exec.Command("gpg", append([]string{"--batch", "--quiet", "--no-tty"}, args...)...)
	cmd.Env = h.env()
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		h.t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// genKey makes a key (algo as --quick-gen-key takes it) and returns its fingerprint.
func (h *gpgTestHome) genKey(uid, algo, passphrase string) string {
	h.t.Helper()
	start := time.Now()
	args := []string{"--passphrase", passphrase, "--pinentry-mode", "loopback", "--quick-gen-key", uid, algo, "default", "never"}
	h.gpg(nil, args...)
	fpr := h.fingerprint(uid)
	if strings.HasPrefix(algo, "rsa") {
		// --quick-gen-key with an RSA algorithm makes a sign-only primary
		// key and no subkey: add the encryption subkey gpg's full dialog makes.
		h.gpg(nil, "--passphrase", passphrase, "--pinentry-mode", "loopback", "--quick-add-key", fpr, algo, "encr", "never")
	}
	h.t.Logf("gpg --quick-gen-key %s: %v", algo, time.Since(start).Round(time.Millisecond))
	return fpr
}

func (h *gpgTestHome) fingerprint(uid string) string {
	h.t.Helper()
	out := h.gpg(nil, "--with-colons", "--list-keys", uid)
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" {
			return f[9]
		}
	}
	h.t.Fatalf("no fingerprint for %s", uid)
	return ""
}

func (h *gpgTestHome) exportSecret(fpr, passphrase string) []byte {
	h.t.Helper()
	return h.gpg(nil, "--pinentry-mode", "loopback", "--passphrase", passphrase, "--export-secret-keys", fpr)
}

// presetPassphrase gives gpg-agent the passphrase of every key of fpr.
func (h *gpgTestHome) presetPassphrase(fpr, passphrase string) {
	h.t.Helper()
	out := h.gpg(nil, "--with-colons", "--with-keygrip", "--list-secret-keys", fpr)
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Split(line, ":"); f[0] == "grp" {
			cmd := exec.Command("gpg-connect-agent", "PRESET_PASSPHRASE "+f[9]+" -1 "+hex.EncodeToString([]byte(passphrase)), "/bye")
			cmd.Env = h.env()
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
				h.t.Fatalf("preset passphrase: %v %s", err, out)
			}
		}
	}
}

func TestGPGInterop(t *testing.T) {
	h := newGPGTestHome(t)
	ctx := context.Background()
	s := newTestSecrets(t)
	for _, algo := range []string{"rsa2048", "future-default"} {
		t.Run(algo, func(t *testing.T) {
			h.t = t
			uid := "Test " + algo + " <" + algo + "@example.com>"
			pass := "pass of " + algo
			fpr := h.genKey(uid, algo, pass)
			rs, err := ReadRecipients(h.gpg(nil, "--armor", "--export", fpr), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 || rs[0].Fingerprint() != fpr {
				t.Fatalf("recipients %v, want %s", rs, fpr)
			}
			msg, err := EncryptToRecipients(s, rs, time.Now())
			if err != nil {
				t.Fatal(err)
			}

			// gpg decrypts hoard's key file and prints the JSON.
			plain := h.gpg(msg, "--pinentry-mode", "loopback", "--passphrase", pass, "--decrypt")
			want, _ := s.MarshalJSON()
			if !bytes.Equal(plain, want) {
				t.Fatalf("gpg -d printed %q", plain)
			}
			pkts := string(h.gpg(msg, "--list-packets"))
			if !strings.Contains(pkts, "pubkey enc packet: version 3") || !strings.Contains(pkts, "mdc_method: 2") {
				t.Fatalf("packets:\n%s", pkts)
			}

			// The exported secret key (binary, passphrase-protected) opens it.
			sk, err := ReadSecretKeys(h.exportSecret(fpr, pass), fixedPass(pass))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := sk.Unlock(ctx, msg); err != nil || !bytes.Equal(got.IDKey, s.IDKey) {
				t.Fatalf("secret key: %v", err)
			}
			wrong, _ := ReadSecretKeys(h.exportSecret(fpr, pass), fixedPass("wrong"))
			if _, err := wrong.Unlock(ctx, msg); !errors.Is(err, ErrWrongKeyPassphrase) {
				t.Fatalf("wrong passphrase: %v", err)
			}

			// A key file gpg wrote (compressed, as gpg does by default) opens.
			byGPG := h.gpg(want, "--trust-model", "always", "--encrypt", "--recipient", fpr)
			if got, err := sk.Unlock(ctx, byGPG); err != nil || got.Repository != s.Repository {
				t.Fatalf("gpg --encrypt key file: %v", err)
			}
			armored := h.gpg(want, "--trust-model", "always", "--armor", "--encrypt", "--recipient", fpr)
			if _, err := sk.Unlock(ctx, armored); err != nil {
				t.Fatalf("gpg --armor --encrypt key file: %v", err)
			}

			// gpg and its agent open it.
			h.presetPassphrase(fpr, pass)
			g := &GPGCommand{Env: h.env()}
			if got, err := g.Unlock(ctx, msg); err != nil || !bytes.Equal(got.MetaKey, s.MetaKey) {
				t.Fatalf("gpg-agent: %v", err)
			}
			if d, ok := g.DescribeKey(ctx, mustParse(t, msg).Recipients[0].KeyID); !ok || !strings.HasPrefix(d, fpr) {
				t.Fatalf("DescribeKey: %q %v", d, ok)
			}
		})
	}

	t.Run("passphrase key file", func(t *testing.T) {
		h.t = t
		msg, err := EncryptWithPassphrase(s, []byte("correct horse"), S2KIterated)
		if err != nil {
			t.Fatal(err)
		}
		plain := h.gpg(msg, "--pinentry-mode", "loopback", "--passphrase", "correct horse", "--decrypt")
		if !bytes.Contains(plain, []byte(`"hoard_key":2`)) {
			t.Fatalf("gpg -d printed %q", plain)
		}
		// And one gpg made with its defaults (iterated S2K, AES-256 here).
		byGPG := h.gpg(plain, "--pinentry-mode", "loopback", "--passphrase", "correct horse", "--symmetric", "--cipher-algo", "AES256")
		if _, err := Passphrase("correct horse").Unlock(context.Background(), byGPG); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("gpg-agent without the key", func(t *testing.T) {
		h.t = t
		other := newGPGTestHome(t)
		other.genKey("Other <o@example.com>", "future-default", "")
		rs, err := ReadRecipients(h.gpg(nil, "--export"), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		msg, err := EncryptToRecipients(s, rs, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		g := &GPGCommand{Env: other.env()}
		if _, err := g.Unlock(ctx, msg); !errors.Is(err, ErrNotRecipient) {
			t.Fatalf("got %v", err)
		}
		pw, _ := EncryptWithPassphrase(s, []byte("x"), S2KIterated)
		if _, err := g.Unlock(ctx, pw); !errors.Is(err, ErrNotRecipient) {
			t.Fatalf("passphrase key file: got %v", err)
		}
		missing := &GPGCommand{Path: filepath.Join(t.TempDir(), "no-gpg")}
		if _, err := missing.Unlock(ctx, msg); err == nil || IsNotForUnlocker(err) {
			t.Fatalf("missing gpg: got %v", err)
		}
	})
}

func mustParse(t *testing.T, msg []byte) *KeyFileInfo {
	t.Helper()
	info, err := ParseKeyFile(msg)
	if err != nil {
		t.Fatal(err)
	}
	return info
}
