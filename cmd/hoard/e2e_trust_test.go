package main

// End-to-end tests of what a write-only key holder must not be able to do
// to other hosts and to the admin (docs/gpg.md, FORMAT.md 4.1 and 9.1).
// Each runs a repository with an admin (a full key file encrypted to a GPG
// key the real gpg made), a victim host A and an attacker host B, each
// with a write-only key of its own and its own file of pinned data keys
// (another machine). The attacker acts with everything its key file holds.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
	"github.com/hoard-backup/hoard/snapshot"
)

// trustWorld is one repository and its three parties.
type trustWorld struct {
	h           *gpgHome
	fingerprint string // of the data key, as init printed it
	admin       *env   // full key through the admin's GPG secret key
	hostA       *env   // write-only key, the victim
	attacker    *env   // write-only key, host B
	adminFull   string // the admin's full key file
	attackerKey string // host B's key file
}

func newTrustWorld(t *testing.T) *trustWorld {
	t.Helper()
	h := gpgNewHome(t)
	const adminPass = "admin passphrase"
	adminFpr := h.genKey(t, "Admin <admin@example.com>", "future-default", "never", adminPass)
	w := &trustWorld{h: h}
	w.hostA = newEnvNoInit(t)
	w.hostA.extraEnv = []string{"GNUPGHOME=" + h.dir}
	var initOut struct {
		Key         string `json:"key"`
		Fingerprint string `json:"data_key_fingerprint"`
	}
	w.hostA.mustRunJSON(&initOut, "init", "--gpg-recipient", h.exportPublic(t, adminFpr), "--write-only-key", "--s2k", "iterated")
	if len(initOut.Fingerprint) != 40 {
		t.Fatalf("init printed data key fingerprint %q", initOut.Fingerprint)
	}
	w.fingerprint, w.adminFull = initOut.Fingerprint, initOut.Key
	dir := t.TempDir()
	adminPassFile := filepath.Join(dir, "admin-pass")
	gpgWriteFile(t, adminPassFile, []byte(adminPass+"\n"))
	w.admin = gpgWith(t, w.hostA, "HOARD_GPG_SECRET_KEY="+h.exportSecret(t, adminFpr, adminPass), "HOARD_GPG_PASSPHRASE_FILE="+adminPassFile)
	w.admin.knownKeys = filepath.Join(dir, "admin-known_keys")
	attackerPass := filepath.Join(dir, "attacker-pass")
	gpgWriteFile(t, attackerPass, []byte("attacker passphrase\n"))
	var added struct{ ID string }
	w.admin.mustRunJSON(&added, "key", "add", "--write-only", "--s2k", "iterated", "--new-password-file", attackerPass)
	w.attackerKey = added.ID
	w.attacker = w.hostA.on(t)
	w.attacker.pwFile = attackerPass
	w.attacker.knownKeys = filepath.Join(dir, "attacker-known_keys")

	// Every party sees the same, signed and trusted data key.
	for _, e := range []*env{w.admin, w.hostA, w.attacker} {
		var keys []struct {
			InUse   bool   `json:"in_use"`
			DataKey string `json:"data_key_fingerprint"`
			Signed  *bool  `json:"signed"`
			Trusted *bool  `json:"trusted"`
		}
		e.on(t).mustRunJSON(&keys, "key", "list")
		for _, k := range keys {
			if k.InUse && (k.DataKey != w.fingerprint || k.Signed == nil || !*k.Signed || !*k.Trusted) {
				t.Fatalf("key list: key in use %+v, want signed and trusted data key %s", k, w.fingerprint)
			}
		}
	}
	return w
}

// TestE2ETrustKeySubstitution: the attacker writes a "full" key file
// encrypted to the admin's GPG public key, holding the real writer secrets
// and a data keypair of its own. The admin's hoard must refuse it, with or
// without the data key pinned, and must never wrap data to the attacker.
func TestE2ETrustKeySubstitution(t *testing.T) {
	t.Parallel()
	w := newTrustWorld(t)
	h := w.h
	src := filepath.Join(t.TempDir(), "site")
	gpgMakeTree(t, src, 23)
	w.hostA.mustBackup(nil, src)

	// The attacker opens its own key file (a passphrase key file with an
	// iterated S2K, so gpg opens it) and forges a full key around a data
	// keypair of its own, made by gpg.
	keysDir := filepath.Join(w.hostA.repo, "keys")
	plain := h.gpg(t, nil, "--pinentry-mode", "loopback", "--passphrase", "attacker passphrase", "--decrypt", filepath.Join(keysDir, w.attackerKey))
	evilFpr := h.genKey(t, "Evil data key", "future-default", "never", "")
	evilPub := h.gpg(t, nil, "--armor", "--export", evilFpr)
	evilSec := h.gpg(t, nil, "--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys", evilFpr)
	forge := func(t *testing.T, selfSigned bool) []byte {
		var m map[string]any
		if err := json.Unmarshal(plain, &m); err != nil {
			t.Fatal(err)
		}
		m["kind"], m["data_public_key"], m["data_secret_key"] = "full", string(evilPub), string(evilSec)
		m["data_key_fingerprint"] = evilFpr
		delete(m, "signature")
		b, _ := json.Marshal(m)
		if selfSigned {
			// Signed, as hoard would sign it, by the attacker's data key.
			sec, err := crypto.DecodeSecrets(b)
			if err != nil {
				t.Fatal(err)
			}
			stmt := filepath.Join(t.TempDir(), "statement")
			gpgWriteFile(t, stmt, sec.KeyStatement())
			sig := h.gpg(t, nil, "--pinentry-mode", "loopback", "--passphrase", "", "--digest-algo", "SHA256", "-u", evilFpr, "--detach-sign", "-o", "-", stmt)
			m["signature"] = sig
			b, _ = json.Marshal(m) // []byte marshals as base64
		}
		return b
	}
	// plant writes the forged key file encrypted to the admin's key under
	// a name that sorts before the admin's own (so that, without the fix,
	// the admin's hoard picks it first).
	plant := func(t *testing.T, payload []byte) string {
		t.Helper()
		adminFpr := h.fingerprint(t, "admin@example.com")
		for range 64 {
			msg := h.gpg(t, payload, "--trust-model", "always", "--encrypt", "--recipient", adminFpr)
			sum := sha256.Sum256(msg)
			if name := hex.EncodeToString(sum[:]); name < w.adminFull {
				gpgWriteFile(t, filepath.Join(keysDir, name), msg)
				return name
			}
		}
		t.Fatal("no name sorts before the admin's key file")
		return ""
	}

	for _, selfSigned := range []bool{false, true} {
		name := "unsigned"
		if selfSigned {
			name = "self-signed"
		}
		t.Run(name, func(t *testing.T) {
			rogue := plant(t, forge(t, selfSigned))
			defer os.Remove(filepath.Join(keysDir, rogue))
			before := gpgSums(t, w.hostA.repo)

			// The admin, whose machine pinned the data key: refused, loudly.
			for _, args := range [][]string{{"snapshots"}, {"backup", src}, {"key", "add", "--write-only", "--new-password-file", w.attacker.pwFile}} {
				gpgExpectFail(t, w.admin, exitUntrusted, []string{"keys/" + rogue, evilFpr, w.fingerprint}, args...)
			}
			// A new machine of the admin's, nothing pinned: the key files
			// disagree, so it refuses to choose.
			fresh := w.admin.on(t)
			fresh.knownKeys = filepath.Join(t.TempDir(), "known_keys")
			gpgExpectFail(t, fresh, exitUntrusted, []string{rogue, evilFpr, w.fingerprint}, "snapshots")
			// ... and with the fingerprint given, it refuses the forged file.
			withFpr := gpgWith(t, fresh, "HOARD_DATA_KEY_FINGERPRINT="+strings.ToLower(w.fingerprint))
			gpgExpectFail(t, withFpr, exitUntrusted, []string{"keys/" + rogue, evilFpr}, "snapshots")
			gpgSameSums(t, "refused opens: repository files", before, gpgSums(t, w.hostA.repo))

			// key list shows the forged file as untrusted; key remove removes it.
			var keys []struct {
				ID      string `json:"id"`
				DataKey string `json:"data_key_fingerprint"`
				Trusted *bool  `json:"trusted"`
				Error   string `json:"error"`
			}
			w.admin.on(t).mustRunJSON(&keys, "key", "list")
			found := false
			for _, k := range keys {
				if k.ID == rogue {
					found = true
					if k.DataKey != evilFpr || k.Trusted == nil || *k.Trusted || k.Error == "" {
						t.Fatalf("key list shows the forged key file as %+v", k)
					}
				}
			}
			if !found {
				t.Fatalf("key list does not show the forged key file: %+v", keys)
			}
			if out := w.admin.on(t).mustRun("key", "list"); !strings.Contains(out, "UNTRUSTED "+evilFpr) || !strings.Contains(out, w.fingerprint) {
				t.Fatalf("key list:\n%s", out)
			}
			w.admin.on(t).mustRun("key", "remove", rogue[:12])
			if _, err := os.Stat(filepath.Join(keysDir, rogue)); !os.IsNotExist(err) {
				t.Fatalf("key remove left the forged key file: %v", err)
			}
		})
	}

	// Without the forged file, the admin reads host A's backup, and a new
	// admin backup's packs open with the real data key only.
	own := w.admin.mustBackup(nil, src)
	dst := t.TempDir()
	w.admin.mustRun("restore", own.ID, "--target", dst)
	gpgSameSums(t, "admin restore", gpgSums(t, src), gpgSums(t, filepath.Join(dst, "site")))
}

// TestE2ETrustParentPoisoning: the attacker writes a newer snapshot of
// host A's paths whose tree points A's unchanged-looking files at blobs of
// its own. Host A's next backup must not reuse them, and the admin must
// restore A's real bytes from A's newest snapshot.
func TestE2ETrustParentPoisoning(t *testing.T) {
	t.Parallel()
	w := newTrustWorld(t)
	src := filepath.Join(t.TempDir(), "site")
	gpgMakeTree(t, src, 29)
	want := gpgSums(t, src)
	first := w.hostA.mustBackup(nil, "--host", "hostA", src)

	poisoned := trustPoison(t, w, first.ID)

	// Writer column: the admin verifies host A's snapshot and finds the
	// forged one invalid; host A knows its own.
	trust := func(e *env) map[string]string {
		var sns []struct {
			ID    string `json:"id"`
			Trust string `json:"writer_trust"`
		}
		e.on(t).mustRunJSON(&sns, "snapshots")
		m := map[string]string{}
		for _, s := range sns {
			m[s.ID] = s.Trust
		}
		return m
	}
	if m := trust(w.admin); m[first.ID] != "verified" || m[poisoned] != "invalid" {
		t.Fatalf("admin's snapshots: %v", m)
	}
	if m := trust(w.hostA); m[first.ID] != "this-key" || m[poisoned] != "invalid" {
		t.Fatalf("host A's snapshots: %v", m)
	}

	// Host A's next backup takes its own snapshot as parent, not the
	// newer forged one.
	var out bytes.Buffer
	stderr, code := w.hostA.runIO(nil, &out, "--json", "backup", "--host", "hostA", src)
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, stderr)
	}
	var second backupResult
	if err := json.Unmarshal(out.Bytes(), &second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "not written by this key") {
		t.Errorf("backup does not warn of the forged newest snapshot:\n%s", stderr)
	}
	// With the forged snapshot forced as parent, every file is read.
	stderr2 := ""
	out.Reset()
	stderr2, code = w.hostA.runIO(nil, &out, "--json", "backup", "--host", "hostA", "--parent", poisoned, src)
	if code != 0 {
		t.Fatalf("backup --parent: exit %d: %s", code, stderr2)
	}
	var third backupResult
	if err := json.Unmarshal(out.Bytes(), &third); err != nil {
		t.Fatal(err)
	}
	if third.Summary.FilesUnmodified != 0 || !strings.Contains(stderr2, "parent "+poisoned[:8]+" was not written by this key; reading all files") {
		t.Fatalf("backup with the forged parent: %+v\n%s", third.Summary, stderr2)
	}
	for _, id := range []string{second.ID, third.ID} {
		dst := t.TempDir()
		w.admin.mustRun("restore", id, "--target", dst)
		gpgSameSums(t, "admin restore of host A's snapshot "+id[:8], want, gpgSums(t, filepath.Join(dst, "site")))
	}
	if m := trust(w.admin); m[second.ID] != "verified" || m[third.ID] != "verified" {
		t.Fatalf("admin's snapshots after: %v", m)
	}
}

// trustPoison does what a write-only holder can: it stores blobs of its
// own, rewrites host A's tree so that every file points at them (size,
// times and inode unchanged), and writes a newer snapshot of A's host and
// paths that claims A's writer fields. It returns the snapshot's ID.
func trustPoison(t *testing.T, w *trustWorld, victimID string) string {
	t.Helper()
	ctx := context.Background()
	be, err := registry(slog.New(slog.DiscardHandler)).Open(ctx, w.attacker.repo)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := os.ReadFile(w.attacker.pwFile)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, be, repo.Options{Passphrase: bytes.TrimSpace(pw)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	victim, err := snapshot.Find(ctx, r, victimID, snapshot.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var rewrite func(tid id.ID, path string) id.ID
	rewrite = func(tid id.ID, path string) id.ID {
		tree, err := snapshot.LoadTree(ctx, r, tid)
		if err != nil {
			t.Fatal(err)
		}
		for i := range tree.Nodes {
			n := &tree.Nodes[i]
			switch n.Type {
			case snapshot.TypeDir:
				st := rewrite(*n.Subtree, path+"/"+n.Name)
				n.Subtree = &st
			case snapshot.TypeFile:
				// Content of the file's own size, so that nothing but
				// the bytes gives it away.
				evil := bytes.Repeat([]byte("EVIL content planted by host B for "+path+"/"+n.Name+"\n"), int(n.Size)/40+1)[:n.Size]
				n.Content = n.Content[:0]
				for len(evil) > 0 {
					piece := evil[:min(len(evil), 1<<20)]
					evil = evil[len(piece):]
					res, err := r.SaveBlob(ctx, pack.DataBlob, piece)
					if err != nil {
						t.Fatal(err)
					}
					n.Content = append(n.Content, res.ID)
				}
			}
		}
		nid, _, err := snapshot.SaveTree(ctx, r, tree)
		if err != nil {
			t.Fatal(err)
		}
		return nid
	}
	root := rewrite(victim.Tree, "")
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	forged := *victim
	forged.Tree = root
	forged.Time = victim.Time.Add(60e9)
	forged.Parent = nil
	b, err := json.Marshal(&forged) // the victim's writer, writer_key and mac, copied
	if err != nil {
		t.Fatal(err)
	}
	name, err := r.SaveUnpacked(ctx, backends.SnapshotFile, b)
	if err != nil {
		t.Fatal(err)
	}
	return name.String()
}
