package crypto

import (
	"bytes"
	"encoding/hex"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const goldenPassphrase = "golden key file passphrase (test only)"

// TestGoldenKeyFile freezes the key file (FORMAT.md section 4): the JSON
// payload round-trips byte for byte, and key files written by version 1
// with each S2K open with the passphrase to that payload. Its secrets are
// test data. Key files take random salts and keys, so they are written
// only with -update.
func TestGoldenKeyFile(t *testing.T) {
	var payload []byte
	var files = map[S2K][]byte{}
	if *update {
		s, err := NewSecrets(strings.Repeat("ab", 32), time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		s.Host, s.Username = "golden", "test"
		if payload, err = s.MarshalJSON(); err != nil {
			t.Fatal(err)
		}
		for _, mode := range []S2K{S2KIterated, S2KArgon2} {
			if files[mode], err = EncryptWithPassphrase(s, []byte(goldenPassphrase), mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	payload = testenv.Golden(t, "testdata/secrets-v1.golden.json", payload, *update)
	s, err := DecodeSecrets(payload)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.MarshalJSON(); err != nil || !bytes.Equal(again, payload) {
		t.Errorf("the golden payload does not round-trip: %v\n%s\n%s", err, again, payload)
	}
	if _, err := NewKeys(s); err != nil {
		t.Errorf("NewKeys of the golden secrets: %v", err)
	}
	for mode, s2k := range map[S2K]string{S2KIterated: "iterated", S2KArgon2: "argon2"} {
		file := testenv.Golden(t, "testdata/keyfile-"+string(mode)+"-v1.golden", files[mode], *update)
		info, err := ParseKeyFile(file)
		if err != nil || len(info.Passphrases) != 1 || info.Passphrases[0].S2K != s2k || info.SEIPD != 1 {
			t.Errorf("%s key file: %+v, %v", mode, info, err)
		}
		got, err := DecryptWithPassphrase(file, []byte(goldenPassphrase))
		if err != nil {
			t.Errorf("%s key file: %v", mode, err)
			continue
		}
		if b, _ := got.MarshalJSON(); !bytes.Equal(b, payload) {
			t.Errorf("%s key file opens to\n%s\nwant\n%s", mode, b, payload)
		}
	}
}

// TestGoldenBlobID freezes the derivation of blob IDs (FORMAT.md 2.2):
// every ID in every repository depends on it.
func TestGoldenBlobID(t *testing.T) {
	h := NewIDHasher(bytes.Repeat([]byte{7}, KeySize))
	got := h.Sum([]byte("hoard golden blob"))
	want := testenv.Golden(t, "testdata/blobid-v1.golden", []byte(hex.EncodeToString(got[:])+"\n"), *update)
	if string(want) != hex.EncodeToString(got[:])+"\n" {
		t.Errorf("blob ID %x, golden %s", got, want)
	}
}
