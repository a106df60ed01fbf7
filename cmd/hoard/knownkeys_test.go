package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKnownKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "known_keys")
	id1, id2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	fpr := strings.Repeat("0123456789ABCDEF0123", 2)
	if known, err := readKnownKeys(path); err != nil || len(known) != 0 {
		t.Fatalf("missing file: %v %v", known, err)
	}
	if err := writeKnownKey(path, id1, knownKey{fingerprint: fpr}); err != nil {
		t.Fatal(err)
	}
	if err := writeKnownKey(path, id2, knownKey{fingerprint: fpr, signed: true}); err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("c", 64)
	if err := writeKnownKey(path, id1, knownKey{fingerprint: fpr, signed: true, keyFile: key}); err != nil {
		t.Fatal(err)
	}
	known, err := readKnownKeys(path)
	if err != nil || len(known) != 2 || known[id1] != (knownKey{fpr, true, key}) || known[id2] != (knownKey{fpr, true, ""}) {
		t.Fatalf("read back: %v %v", known, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", fi, err)
	}
	for _, bad := range []string{
		id1,                                // no fingerprint
		id1 + " " + fpr + " trusted",       // unknown flag
		"abc " + fpr,                       // short ID
		id1 + " " + fpr[:39],               // short fingerprint
		id1 + " " + fpr + " signed signed", // twice
		id1 + " " + fpr + " key=abc",       // short key file name
		id1 + " " + fpr + " signed key=" + strings.Repeat("c", 64) + " x", // too many fields
	} {
		if err := os.WriteFile(path, []byte("# comment\n\n"+bad+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := readKnownKeys(path); err == nil || !strings.Contains(err.Error(), "line 3") {
			t.Errorf("%q: %v, want an error naming line 3", bad, err)
		}
	}
	// Fingerprints are accepted in gpg's spaced, lower-case form.
	if err := os.WriteFile(path, []byte(id1+" "+strings.ToLower(fpr)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if known, err := readKnownKeys(path); err != nil || known[id1].fingerprint != fpr {
		t.Fatalf("lower case: %v %v", known, err)
	}
}
