package crypto

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

// testEntity makes a v4 key with go-crypto, created at created and valid
// for lifetime (0: forever).
func testEntity(t *testing.T, name string, created time.Time, lifetime time.Duration) *openpgp.Entity {
	t.Helper()
	cfg := pgpConfig(created)
	cfg.KeyLifetimeSecs = uint32(lifetime / time.Second)
	e, err := openpgp.NewEntity(name, "", name+"@example.com", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func exportPublic(t *testing.T, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.Bytes()
}

func exportSecret(t *testing.T, e *openpgp.Entity, passphrase string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := e.SerializePrivate(&buf, &packet.Config{}); err != nil {
		t.Fatal(err)
	}
	el, err := openpgp.ReadKeyRing(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if passphrase != "" {
		if err := el[0].EncryptPrivateKeys([]byte(passphrase), &packet.Config{}); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := el[0].SerializePrivateWithoutSigning(&out, &packet.Config{}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func fixedPass(p string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(p), nil }
}

func TestRecipientRoundTrip(t *testing.T) {
	now := time.Now()
	alice := testEntity(t, "alice", now.Add(-time.Hour), 0)
	bob := testEntity(t, "bob", now.Add(-time.Hour), 0)
	var rs []*Recipient
	for _, e := range []*openpgp.Entity{alice, bob} {
		r, err := ReadRecipients(exportPublic(t, e), now)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r...)
	}
	if rs[0].Fingerprint() != fingerprint(alice) || !strings.Contains(rs[0].String(), "alice@example.com") {
		t.Fatalf("recipient %s", rs[0])
	}
	s := newTestSecrets(t)
	msg, err := EncryptToRecipients(s, rs, now)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ParseKeyFile(msg)
	if err != nil {
		t.Fatal(err)
	}
	if info.SEIPD != 1 || len(info.Recipients) != 2 || len(info.Passphrases) != 0 || info.Recipients[0].Version != 3 {
		t.Fatalf("packets: %+v", info)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		e    *openpgp.Entity
		pass string
	}{{"alice", alice, "alice's passphrase"}, {"bob", bob, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			asked := 0
			sk, err := ReadSecretKeys(exportSecret(t, tc.e, tc.pass), func() ([]byte, error) { asked++; return []byte(tc.pass), nil })
			if err != nil {
				t.Fatal(err)
			}
			got, err := sk.Unlock(ctx, msg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.MetaKey, s.MetaKey) || got.DataSecret != s.DataSecret {
				t.Fatal("secrets differ")
			}
			if want := map[bool]int{true: 1, false: 0}[tc.pass != ""]; asked != want {
				t.Fatalf("passphrase asked %d times, want %d", asked, want)
			}
			if d, ok := sk.DescribeKey(ctx, info.Recipients[0].KeyID); tc.name == "alice" && (!ok || !strings.Contains(d, fingerprint(alice))) {
				t.Fatalf("DescribeKey: %q %v", d, ok)
			}
		})
	}
	t.Run("wrong key passphrase", func(t *testing.T) {
		sk, err := ReadSecretKeys(exportSecret(t, alice, "right"), fixedPass("wrong"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sk.Unlock(ctx, msg); !errors.Is(err, ErrWrongKeyPassphrase) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("other key", func(t *testing.T) {
		carol := testEntity(t, "carol", now, 0)
		sk, err := ReadSecretKeys(exportSecret(t, carol, ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sk.Unlock(ctx, msg); !errors.Is(err, ErrNotRecipient) || !IsNotForUnlocker(err) {
			t.Fatalf("got %v", err)
		}
		pw, err := EncryptWithPassphrase(s, []byte("pw"), S2KIterated)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sk.Unlock(ctx, pw); !errors.Is(err, ErrNotRecipient) {
			t.Fatalf("passphrase key file: got %v", err)
		}
		if _, err := Passphrase("pw").Unlock(ctx, msg); !errors.Is(err, ErrNotRecipient) {
			t.Fatalf("passphrase unlocker on a recipient key file: got %v", err)
		}
	})
	t.Run("public key as secret key", func(t *testing.T) {
		if _, err := ReadSecretKeys(exportPublic(t, alice), nil); err == nil || !strings.Contains(err.Error(), "public key") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("damaged", func(t *testing.T) {
		sk, err := ReadSecretKeys(exportSecret(t, bob, ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(msg)
		bad[len(bad)-3] ^= 1
		if _, err := sk.Unlock(ctx, bad); err == nil || IsNotForUnlocker(err) {
			t.Fatalf("damaged key file: got %v", err)
		}
	})
}

func TestRecipientRefused(t *testing.T) {
	now := time.Now()
	expired := testEntity(t, "expired", now.Add(-48*time.Hour), 24*time.Hour)
	revoked := testEntity(t, "revoked", now.Add(-time.Hour), 0)
	if err := revoked.Revoke(packet.KeySuperseded, "replaced by a new key", pgpConfig(now.Add(-time.Minute))); err != nil {
		t.Fatal(err)
	}
	signOnly := testEntity(t, "signonly", now.Add(-time.Hour), 0)
	signOnly.Subkeys = nil
	subExpired := testEntity(t, "subexpired", now.Add(-48*time.Hour), 0)
	cfg := pgpConfig(now.Add(-47 * time.Hour))
	cfg.KeyLifetimeSecs = 3600
	if err := subExpired.AddEncryptionSubkey(cfg); err != nil {
		t.Fatal(err)
	}
	subExpired.Subkeys = subExpired.Subkeys[1:]
	v6 := func() *openpgp.Entity {
		c := pgpConfig(now.Add(-time.Hour))
		c.V6Keys = true
		c.Algorithm = packet.PubKeyAlgoEd25519
		e, err := openpgp.NewEntity("v6", "", "v6@example.com", c)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}()
	for _, tc := range []struct {
		name   string
		e      *openpgp.Entity
		reason string
	}{
		{"expired", expired, "expired on"},
		{"revoked", revoked, "revoked: replaced by a new key"},
		{"sign-only", signOnly, "no encryption-capable subkey"},
		{"subkey expired", subExpired, "encryption subkey"},
		{"v6", v6, "version 6 key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadRecipients(exportPublic(t, tc.e), now)
			var re *RecipientError
			if !errors.As(err, &re) || !errors.Is(err, ErrBadRecipient) {
				t.Fatalf("got %v", err)
			}
			if re.Fingerprint != fingerprint(tc.e) || !strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), re.Fingerprint) {
				t.Fatalf("error %q: want the fingerprint and %q", err, tc.reason)
			}
			t.Log(err)
		})
	}
}

func TestParseKeyFile(t *testing.T) {
	s := newTestSecrets(t)
	for _, mode := range []S2K{S2KArgon2, S2KIterated} {
		msg, err := EncryptWithPassphrase(s, []byte("pw"), mode)
		if err != nil {
			t.Fatal(err)
		}
		info, err := ParseKeyFile(msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Passphrases) != 1 || info.Passphrases[0].S2K != string(mode) || info.SEIPD != 1 || len(info.Recipients) != 0 {
			t.Fatalf("%s: %+v", mode, info)
		}
		if got := info.String(); got != "passphrase ("+string(mode)+" S2K)" {
			t.Fatalf("String: %q", got)
		}
		// Armored, as gpg -a writes it.
		var buf bytes.Buffer
		w, _ := armor.Encode(&buf, "PGP MESSAGE", nil)
		w.Write(msg)
		w.Close()
		if _, err := ParseKeyFile(buf.Bytes()); err != nil {
			t.Fatalf("armored: %v", err)
		}
		if _, err := DecryptWithPassphrase(buf.Bytes(), []byte("pw")); err != nil {
			t.Fatalf("armored: %v", err)
		}
		// Every truncation fails cleanly.
		for n := 0; n < 40 && n < len(msg); n++ {
			if _, err := ParseKeyFile(msg[:n]); err == nil {
				t.Fatalf("truncated to %d bytes: accepted", n)
			}
		}
	}
	for _, bad := range [][]byte{nil, {0}, {0xc3, 0x05, 4, 9, 4}, []byte("{\"hoard_key\":1}"), {0xcb, 0x01, 'b'}} {
		if _, err := ParseKeyFile(bad); err == nil {
			t.Fatalf("%x accepted", bad)
		}
	}
}

// TestCheckS2KEveryPacket: a hostile second passphrase packet cannot ask
// argon2 for more memory than the cap.
func TestCheckS2KEveryPacket(t *testing.T) {
	s := newTestSecrets(t)
	msg, err := EncryptWithPassphrase(s, []byte("pw"), S2KIterated)
	if err != nil {
		t.Fatal(err)
	}
	// A v4 SKESK with argon2 asking 2^30 KiB, in front of the real one.
	skesk := append([]byte{4, byte(packet.CipherAES256), 4}, make([]byte, 16)...)
	skesk = append(skesk, 1, 1, 30)
	hostile := append([]byte{0xc3, byte(len(skesk))}, skesk...)
	hostile = append(hostile, msg...)
	if _, err := DecryptWithPassphrase(hostile, []byte("pw")); err == nil || !strings.Contains(err.Error(), "argon2 memory") {
		t.Fatalf("got %v", err)
	}
}

// TestCheckS2KPasses: a key file cannot ask for argon2 passes without bound
// (255 passes over 1 GiB would take some 20 minutes), nor for many passes
// over the largest memory allowed; the refusal is immediate.
func TestCheckS2KPasses(t *testing.T) {
	s := newTestSecrets(t)
	msg, err := EncryptWithPassphrase(s, []byte("pw"), S2KIterated)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ passes, memExp byte }{{255, 10}, {17, 3}, {5, 20}, {255, 20}} {
		skesk := append([]byte{4, byte(packet.CipherAES256), 4}, make([]byte, 16)...)
		skesk = append(skesk, c.passes, 1, c.memExp)
		hostile := append([]byte{0xc3, byte(len(skesk))}, skesk...)
		hostile = append(hostile, msg...)
		start := time.Now()
		_, err := DecryptWithPassphrase(hostile, []byte("pw"))
		if err == nil || !strings.Contains(err.Error(), "argon2 passes") {
			t.Errorf("%d passes over 2^%d KiB: got %v", c.passes, c.memExp, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%d passes over 2^%d KiB: refused after %v", c.passes, c.memExp, d)
		}
	}
	// What hoard writes still opens.
	msg, err = EncryptWithPassphrase(s, []byte("pw"), S2KArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecryptWithPassphrase(msg, []byte("pw")); err != nil {
		t.Fatal(err)
	}
}
