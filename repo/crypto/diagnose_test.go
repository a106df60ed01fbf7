package crypto

import (
	"errors"
	"fmt"
	"testing"
)

// TestDiagnosePassphrase: a key file the passphrase opens but that was
// altered or cut short is reported as damaged (ErrKeyFileDamaged), not as
// a wrong passphrase; a wrong passphrase stays ErrWrongPassphrase, for
// every one of many tried.
func TestDiagnosePassphrase(t *testing.T) {
	s := newTestSecrets(t)
	msg, err := EncryptWithPassphrase(s, []byte("right"), S2KIterated)
	if err != nil {
		t.Fatal(err)
	}
	damaged := map[string][]byte{
		"flipped in the middle": flip(msg, len(msg)/2),
		"flipped near the end":  flip(msg, len(msg)-3),
		"cut in half":           msg[:len(msg)/2],
		"cut by one byte":       msg[:len(msg)-1],
	}
	for name, m := range damaged {
		_, err := Passphrase("right").Unlock(t.Context(), m)
		if !errors.Is(err, ErrKeyFileDamaged) || IsNotForUnlocker(err) {
			t.Errorf("%s: %v, want ErrKeyFileDamaged", name, err)
		}
	}
	if _, err := Passphrase("right").Unlock(t.Context(), []byte("hello\n")); !errors.Is(err, ErrKeyFileDamaged) {
		t.Errorf("garbage: %v, want ErrKeyFileDamaged", err)
	}
	for i := range 10 {
		pw := Passphrase(fmt.Sprintf("wrong %d", i))
		for _, m := range [][]byte{msg, damaged["flipped in the middle"]} {
			if _, err := pw.Unlock(t.Context(), m); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("passphrase %q: %v, want ErrWrongPassphrase", pw, err)
			}
		}
	}
	if _, err := Passphrase("right").Unlock(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x01
	return c
}
