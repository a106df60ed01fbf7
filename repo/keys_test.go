package repo_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
)

// ktGPGKey makes a GPG-like key pair with go-crypto: the recipient (public
// half) and an unlocker holding the secret half.
func ktGPGKey(t *testing.T, name string) ([]*crypto.Recipient, *crypto.SecretKeys) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Curve: packet.Curve25519})
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	w, _ := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var sec bytes.Buffer
	if err := e.SerializePrivate(&sec, &packet.Config{}); err != nil {
		t.Fatal(err)
	}
	rs, err := crypto.ReadRecipients(pub.Bytes(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sk, err := crypto.ReadSecretKeys(sec.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return rs, sk
}

func ktOpen(t *testing.T, be backends.Backend, u crypto.Unlocker) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), be, repo.Options{Unlocker: u})
	if err != nil {
		t.Fatalf("open with %s: %v", u, err)
	}
	return r
}

func ktKey(t *testing.T, keys []repo.KeyInfo, name string) repo.KeyInfo {
	t.Helper()
	for _, k := range keys {
		if k.Name == name {
			return k
		}
	}
	t.Fatalf("no key %s", name)
	return repo.KeyInfo{}
}

func TestKeyManagement(t *testing.T) {
	ctx := context.Background()
	rs, sk := ktGPGKey(t, "ops")
	be := mem.New()
	r, err := repo.Init(ctx, be, repo.InitOptions{Recipients: rs, Host: "web1", Username: "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	gpgName := r.KeyName()
	wo, err := r.AddKey(ctx, repo.AddKeyOptions{Kind: crypto.WriteOnly, Passphrase: []byte("wo"), S2K: crypto.S2KIterated, Host: "web1"})
	if err != nil {
		t.Fatal(err)
	}

	// The write-only key opens the repository and cannot read.
	w := ktOpen(t, be, crypto.Passphrase("wo"))
	if w.CanRead() || w.KeyName() != wo {
		t.Fatalf("write-only: CanRead %v, key %s", w.CanRead(), w.KeyName())
	}
	if _, err := w.AddKey(ctx, repo.AddKeyOptions{Kind: crypto.Full, Passphrase: []byte("x")}); !errors.Is(err, repo.ErrWriteOnly) {
		t.Fatalf("full key from a write-only key: %v", err)
	}
	keys, err := w.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if k := ktKey(t, keys, wo); !k.InUse || !k.Opened || k.Kind != crypto.WriteOnly || k.Host != "web1" || k.Protection.Passphrases[0].S2K != "iterated" {
		t.Fatalf("write-only key: %+v", k)
	}
	if k := ktKey(t, keys, gpgName); k.InUse || k.Opened || len(k.Protection.Recipients) != 1 {
		t.Fatalf("GPG key seen from the write-only key: %+v", k)
	}
	if err := w.RemoveKey(ctx, gpgName, false); !errors.Is(err, repo.ErrWriteOnly) {
		t.Fatalf("write-only removes a key it cannot open: %v", err)
	}

	// The GPG key reads, and sees both kinds.
	g := ktOpen(t, be, sk)
	if !g.CanRead() || g.KeyName() != gpgName {
		t.Fatal("GPG key cannot read")
	}
	if err := g.RemoveKey(ctx, gpgName, false); !errors.Is(err, repo.ErrKeyInUse) {
		t.Fatalf("remove in use: %v", err)
	}
	if err := g.RemoveKey(ctx, gpgName, true); !errors.Is(err, repo.ErrLastFullKey) {
		t.Fatalf("remove the last full key: %v", err)
	}
	full2, err := g.AddKey(ctx, repo.AddKeyOptions{Kind: crypto.Full, Passphrase: []byte("full"), S2K: crypto.S2KIterated})
	if err != nil {
		t.Fatal(err)
	}
	// The GPG key cannot open the passphrase key, so it still cannot prove
	// another full key exists.
	if err := g.RemoveKey(ctx, gpgName, true); !errors.Is(err, repo.ErrLastFullKey) {
		t.Fatalf("remove with an unprovable second full key: %v", err)
	}
	// Opened with the new passphrase key, the GPG key file can go.
	f := ktOpen(t, be, crypto.Passphrase("full"))
	if err := f.RemoveKey(ctx, gpgName, false); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Open(ctx, be, repo.Options{Unlocker: sk}); !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("removed GPG key still opens: %v", err)
	}

	// passwd: the new file first, then the old one goes.
	n, err := f.ChangePassphrase(ctx, []byte("full2"), crypto.S2KIterated, "h", "u")
	if err != nil {
		t.Fatal(err)
	}
	if f.KeyName() != n || n == full2 {
		t.Fatalf("key in use after passwd: %s", f.KeyName())
	}
	if _, err := repo.Open(ctx, be, repo.Options{Passphrase: []byte("full")}); !errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("old passphrase: %v", err)
	}
	ktOpen(t, be, crypto.Passphrase("full2"))
	if err := f.RemoveKey(ctx, "nonexistent", false); !errors.Is(err, repo.ErrKeyNotFound) {
		t.Fatalf("remove a missing key: %v", err)
	}
	names, err := f.KeyNames(ctx)
	if err != nil || len(names) != 2 {
		t.Fatalf("key files: %v %v", names, err)
	}
}

func TestOpenKeyOfAnotherRepository(t *testing.T) {
	ctx := context.Background()
	rs, sk := ktGPGKey(t, "ops")
	a, b := mem.New(), mem.New()
	ra, err := repo.Init(ctx, a, repo.InitOptions{Recipients: rs})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := repo.Init(ctx, b, repo.InitOptions{Recipients: rs})
	if err != nil {
		t.Fatal(err)
	}
	kb, err := backends.LoadAll(ctx, b, backends.Handle{Type: backends.KeyFile, Name: rb.KeyName()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Remove(ctx, backends.Handle{Type: backends.KeyFile, Name: ra.KeyName()}); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx, backends.Handle{Type: backends.KeyFile, Name: rb.KeyName()}, backends.NewByteReader(kb)); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Open(ctx, a, repo.Options{Unlocker: sk}); err == nil || errors.Is(err, repo.ErrWrongPassword) {
		t.Fatalf("foreign key file: %v", err)
	}
}
