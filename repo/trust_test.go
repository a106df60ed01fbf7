package repo_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
)

// forgeFullKey writes what a write-only holder can: a full key file under
// pass holding the repository's writer secrets (from wo) and a data keypair
// of its own, unsigned or signed by that keypair. It returns its name and
// the forged data key's fingerprint.
func forgeFullKey(t *testing.T, be backends.Backend, wo *crypto.Secrets, pass string, signed bool) (string, string) {
	t.Helper()
	evil, err := crypto.NewSecrets(wo.Repository, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := *wo
	f.Kind, f.DataPublic, f.DataSecret, f.Fingerprint = crypto.Full, evil.DataPublic, evil.DataSecret, evil.Fingerprint
	f.Signature = nil
	if signed {
		k, err := crypto.NewKeys(&f)
		if err != nil {
			t.Fatal(err)
		}
		if f.Signature, err = k.Sign(f.KeyStatement(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	msg, err := crypto.EncryptWithPassphrase(&f, []byte(pass), crypto.S2KIterated)
	if err != nil {
		t.Fatal(err)
	}
	name := id.Hash(msg).String()
	if err := be.Save(context.Background(), backends.Handle{Type: backends.KeyFile, Name: name}, backends.NewByteReader(msg)); err != nil {
		t.Fatal(err)
	}
	return name, evil.Fingerprint
}

// TestKeySubstitution: a forged full key file (same passphrase, another
// data key) is refused when the data key is pinned, and makes a first open
// refuse to choose; SkipUntrusted passes over it.
func TestKeySubstitution(t *testing.T) {
	ctx := context.Background()
	for _, signed := range []bool{false, true} {
		r, be := newRepo(t)
		real := r.DataKeyFingerprint()
		if !r.KeySigned() || !r.ConfigSigned() || len(real) != 40 {
			t.Fatalf("new repository: signed %v, config signed %v, fingerprint %q", r.KeySigned(), r.ConfigSigned(), real)
		}
		rogue, evil := forgeFullKey(t, be, r.Keys().Secrets.WriteOnlyCopy(), passphrase, signed)
		var ue *repo.UntrustedError

		// First use: the two key files the passphrase opens disagree.
		_, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte(passphrase)})
		if !errors.Is(err, repo.ErrUntrusted) || !errors.As(err, &ue) || !strings.Contains(err.Error(), evil) || !strings.Contains(err.Error(), real) {
			t.Fatalf("first open with a forged key file: %v", err)
		}
		// Pinned (or given): the forged one is refused if met, never used.
		r2, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte(passphrase), DataKeyFingerprint: real})
		switch {
		case err == nil && r2.DataKeyFingerprint() != real:
			t.Fatalf("pinned open used data key %s", r2.DataKeyFingerprint())
		case err != nil && (!errors.As(err, &ue) || ue.File != "keys/"+rogue):
			t.Fatalf("pinned open: %v", err)
		}
		r3, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte(passphrase), DataKeyFingerprint: real, SkipUntrusted: true})
		if err != nil || r3.DataKeyFingerprint() != real {
			t.Fatalf("open passing over the forged key: %v", err)
		}
		keys, err := r3.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if k.Name == rogue && (k.Trusted || !errors.Is(k.Err, repo.ErrUntrusted) || k.Fingerprint != evil) {
				t.Fatalf("ListKeys: forged key %+v", k)
			}
			if k.Name != rogue && (!k.Trusted || !k.Signed || k.Err != nil) {
				t.Fatalf("ListKeys: real key %+v", k)
			}
		}
		// Pinned to the forged key: the real one is refused.
		if _, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte(passphrase), DataKeyFingerprint: evil}); !errors.Is(err, repo.ErrUntrusted) {
			t.Fatalf("open pinned to the other key: %v", err)
		}
	}
}

// TestKeyFileSignature: a key file whose signature does not verify, or
// whose stated fingerprint is not its key's, is refused; so is an
// unsigned one where signed ones are required.
func TestKeyFileSignature(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t)
	base := r.Keys().Secrets
	for _, tc := range []struct {
		name   string
		change func(s *crypto.Secrets)
		opts   repo.Options
	}{
		{"signature of other secrets", func(s *crypto.Secrets) { s.IDKey = make([]byte, 32) }, repo.Options{}},
		{"damaged signature", func(s *crypto.Secrets) {
			s.Signature = append([]byte(nil), s.Signature...)
			s.Signature[len(s.Signature)-5] ^= 1
		}, repo.Options{}},
		{"wrong fingerprint", func(s *crypto.Secrets) { s.Fingerprint = strings.Repeat("AB", 20) }, repo.Options{}},
		{"unsigned where signed is required", func(s *crypto.Secrets) { s.Signature = nil }, repo.Options{RequireSigned: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := mem.New()
			cfg, err := backends.LoadAll(ctx, r.Backend(), backends.Handle{Type: backends.ConfigFile})
			if err != nil {
				t.Fatal(err)
			}
			if err := be.Save(ctx, backends.Handle{Type: backends.ConfigFile}, backends.NewByteReader(cfg)); err != nil {
				t.Fatal(err)
			}
			s := *base
			tc.change(&s)
			msg, err := crypto.EncryptWithPassphrase(&s, []byte(passphrase), crypto.S2KIterated)
			if err != nil {
				t.Fatal(err)
			}
			name := id.Hash(msg).String()
			if err := be.Save(ctx, backends.Handle{Type: backends.KeyFile, Name: name}, backends.NewByteReader(msg)); err != nil {
				t.Fatal(err)
			}
			o := tc.opts
			o.Passphrase = []byte(passphrase)
			var ue *repo.UntrustedError
			if _, err := repo.Open(ctx, be, o); !errors.As(err, &ue) || ue.File != "keys/"+name {
				t.Fatalf("open: %v, want the key file refused", err)
			}
		})
	}
}

// TestConfigSignature: a config whose fingerprint or signature does not
// match the data key is refused; a version 1 config (neither) is accepted.
func TestConfigSignature(t *testing.T) {
	ctx := context.Background()
	_, be := newRepo(t)
	raw, err := backends.LoadAll(ctx, be, backends.Handle{Type: backends.ConfigFile})
	if err != nil {
		t.Fatal(err)
	}
	evil, err := crypto.NewSecrets(strings.Repeat("ab", 32), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	evilKeys, err := crypto.NewKeys(evil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(m map[string]any)
		ok     bool
	}{
		{"as written", func(m map[string]any) {}, true},
		{"version 1 (no fingerprint, no signature)", func(m map[string]any) { delete(m, "signature"); delete(m, "data_key_fingerprint") }, true},
		{"other fingerprint", func(m map[string]any) { m["data_key_fingerprint"] = evil.Fingerprint }, false},
		{"no signature", func(m map[string]any) { delete(m, "signature") }, false},
		{"signed by another key", func(m map[string]any) {
			stmt := crypto.ConfigStatement(m["id"].(string), 1, m["data_key_fingerprint"].(string), m["body"].(string))
			sig, err := evilKeys.Sign(stmt, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			m["signature"] = base64.StdEncoding.EncodeToString(sig)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			tc.change(m)
			b, _ := json.Marshal(m)
			be2 := copyBackend(t, be)
			if err := be2.Save(ctx, backends.Handle{Type: backends.ConfigFile}, backends.NewByteReader(b)); err != nil {
				t.Fatal(err)
			}
			_, err := repo.Open(ctx, be2, repo.Options{Passphrase: []byte(passphrase)})
			if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, repo.ErrUntrusted) {
				t.Fatalf("open: %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestVersion1KeyUpgrade: a version 1 key file (no fingerprint, signature
// or snapshot key) still opens; a key added by its full key is signed and
// has a snapshot key; a write-only key added by a write-only version 1 key
// is unsigned, and passwd keeps the snapshot key.
func TestVersion1KeyUpgrade(t *testing.T) {
	ctx := context.Background()
	r, be := newRepo(t)
	v1 := *r.Keys().Secrets
	v1.Fingerprint, v1.Signature, v1.SnapshotKey = "", nil, nil
	b, err := v1.MarshalJSON()
	if err != nil || !strings.Contains(string(b), `"hoard_key":1`) {
		t.Fatalf("version 1 payload: %v %s", err, b)
	}
	msg, err := crypto.EncryptWithPassphrase(&v1, []byte("v1 pass"), crypto.S2KIterated)
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Save(ctx, backends.Handle{Type: backends.KeyFile, Name: id.Hash(msg).String()}, backends.NewByteReader(msg)); err != nil {
		t.Fatal(err)
	}
	old, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte("v1 pass"), DataKeyFingerprint: r.DataKeyFingerprint()})
	if err != nil || old.KeySigned() || old.Keys().Writer() != "" {
		t.Fatalf("open with the version 1 key: %v", err)
	}
	if _, err := old.AddKey(ctx, repo.AddKeyOptions{Kind: crypto.Full, Passphrase: []byte("v2 pass"), S2K: crypto.S2KIterated}); err != nil {
		t.Fatal(err)
	}
	up, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte("v2 pass"), RequireSigned: true})
	if err != nil || !up.KeySigned() || up.Keys().Writer() == "" || up.DataKeyFingerprint() != r.DataKeyFingerprint() {
		t.Fatalf("open with the upgraded key: %v", err)
	}
	// A version 1 write-only key adds an unsigned key.
	wo := r.Keys().Secrets.WriteOnlyCopy()
	wo.Fingerprint, wo.Signature, wo.SnapshotKey = "", nil, nil
	msg, _ = crypto.EncryptWithPassphrase(wo, []byte("wo pass"), crypto.S2KIterated)
	if err := be.Save(ctx, backends.Handle{Type: backends.KeyFile, Name: id.Hash(msg).String()}, backends.NewByteReader(msg)); err != nil {
		t.Fatal(err)
	}
	w, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte("wo pass")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ChangePassphrase(ctx, []byte("wo pass 2"), crypto.S2KIterated, "", ""); err != nil {
		t.Fatal(err)
	}
	w2, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte("wo pass 2")})
	if err != nil || w2.KeySigned() || w2.Keys().Writer() == "" {
		t.Fatalf("after passwd of a version 1 write-only key: %v, signed %v", err, w2 != nil && w2.KeySigned())
	}
	if _, err := w2.ChangePassphrase(ctx, []byte("wo pass 3"), crypto.S2KIterated, "", ""); err != nil {
		t.Fatal(err)
	}
	w3, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte("wo pass 3")})
	if err != nil || w3.Keys().Writer() != w2.Keys().Writer() {
		t.Fatalf("passwd changed the snapshot key: %v", err)
	}
}

// TestInitPolynomialSigned: a repository made with a given chunker
// polynomial is signed over that polynomial.
func TestInitPolynomialSigned(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	pol, err := crypto.NewSecrets(strings.Repeat("cd", 32), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Init(ctx, be, repo.InitOptions{Options: repo.Options{Passphrase: []byte(passphrase)},
		S2K: crypto.S2KIterated, Polynomial: pol.Polynomial}); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte(passphrase), RequireSigned: true})
	if err != nil || r.Polynomial() != pol.Polynomial || !r.KeySigned() {
		t.Fatalf("open: %v", err)
	}
}

// TestPreferKey: a key file planted for the same passphrase, with the real
// data key and signature but a snapshot key its writer knows, passes every
// data key check; the client that tries the key file it opened last first
// never uses it.
func TestPreferKey(t *testing.T) {
	ctx := context.Background()
	r, be := newRepo(t)
	own := r.KeyName()
	planted := r.Keys().Secrets.WriteOnlyCopy() // a fresh snapshot key
	var name string
	for {
		msg, err := crypto.EncryptWithPassphrase(planted, []byte(passphrase), crypto.S2KIterated)
		if err != nil {
			t.Fatal(err)
		}
		if name = id.Hash(msg).String(); name < own {
			if err := be.Save(ctx, backends.Handle{Type: backends.KeyFile, Name: name}, backends.NewByteReader(msg)); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	pin := repo.Pin{Fingerprint: r.DataKeyFingerprint(), RequireSigned: true}
	o := repo.Options{Passphrase: []byte(passphrase), Pinned: func(string) (repo.Pin, error) { return pin, nil }}
	if r2, err := repo.Open(ctx, be, o); err != nil || r2.KeyName() != name {
		t.Fatalf("without a preferred key: %v, key %v (the planted one sorts first)", err, r2 != nil && r2.KeyName() == name)
	}
	pin.KeyFile = own
	r3, err := repo.Open(ctx, be, o)
	if err != nil || r3.KeyName() != own || r3.Keys().Writer() != r.Keys().Writer() {
		t.Fatalf("with the preferred key: %v", err)
	}
}
