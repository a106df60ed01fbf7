package crypto

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func newTestSecrets(t *testing.T) *Secrets {
	t.Helper()
	s, err := NewSecrets(strings.Repeat("ab", 32), time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeyFileRoundTrip(t *testing.T) {
	s := newTestSecrets(t)
	for _, mode := range []S2K{S2KArgon2, S2KIterated} {
		t.Run(string(mode), func(t *testing.T) {
			start := time.Now()
			msg, err := EncryptWithPassphrase(s, []byte("correct horse"), mode)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecryptWithPassphrase(msg, []byte("correct horse"))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: encrypt+decrypt %v, %d bytes", mode, time.Since(start), len(msg))
			if !bytes.Equal(got.MetaKey, s.MetaKey) || !bytes.Equal(got.IDKey, s.IDKey) ||
				got.Polynomial != s.Polynomial || got.DataSecret != s.DataSecret || got.Kind != Full {
				t.Fatalf("secrets differ after round trip")
			}
			if _, err := DecryptWithPassphrase(msg, []byte("wrong")); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("wrong passphrase: got %v", err)
			}
			bad := append([]byte(nil), msg...)
			bad[len(bad)-5] ^= 1
			if _, err := DecryptWithPassphrase(bad, []byte("correct horse")); err == nil {
				t.Fatal("damaged key file opened")
			}
		})
	}
}

func TestPackKeyWrap(t *testing.T) {
	s := newTestSecrets(t)
	k, err := NewKeys(s)
	if err != nil {
		t.Fatal(err)
	}
	pk := NewPackKey()
	w, err := k.WrapPackKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wrapped pack key: %d bytes", len(w))
	got, err := k.UnwrapPackKey(w)
	if err != nil || !bytes.Equal(got, pk) {
		t.Fatalf("unwrap: %v", err)
	}
	wo, err := NewKeys(s.WriteOnlyCopy())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wo.UnwrapPackKey(w); !errors.Is(err, ErrWriteOnly) {
		t.Fatalf("write-only unwrap: %v", err)
	}
	w2, err := wo.WrapPackKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.UnwrapPackKey(w2); err != nil || !bytes.Equal(got, pk) {
		t.Fatalf("unwrap of write-only wrap: %v", err)
	}
	bad := append([]byte(nil), w...)
	bad[len(bad)-3] ^= 1
	k2, _ := NewKeys(s)
	if _, err := k2.UnwrapPackKey(bad); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("damaged wrap: %v", err)
	}
}

func TestAEAD(t *testing.T) {
	a, err := NewAEAD(NewPackKey())
	if err != nil {
		t.Fatal(err)
	}
	sealed := a.Seal(nil, []byte("hello"), []byte("ad"))
	if got, err := a.Open(nil, sealed, []byte("ad")); err != nil || string(got) != "hello" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := a.Open(nil, sealed, []byte("other")); !errors.Is(err, ErrUnauthenticated) {
		t.Fatal("wrong additional data accepted")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := a.Open(nil, sealed, []byte("ad")); !errors.Is(err, ErrUnauthenticated) {
		t.Fatal("flipped bit accepted")
	}
}
