package fuzz

import (
	"context"
	"errors"
	"testing"

	"github.com/hoard-backup/hoard/repo/crypto"
)

// FuzzKeyFileUnlock feeds crypto.Passphrase.Unlock arbitrary bytes, with the
// right passphrase and a wrong one: it must not panic (after a failure it
// parses the file again to tell damage from a wrong passphrase), a file it
// opens must not open with the wrong passphrase, and a failure is either a
// wrong passphrase, a damaged key file, or another error, never both of the
// first two.
func FuzzKeyFileUnlock(f *testing.F) {
	// The first seed is a real key file, whose S2K costs a tenth of a
	// second; the cheap ones exercise the same paths.
	for _, seed := range keyFileSeeds(f)[1:] {
		f.Add(seed)
		b := append([]byte(nil), seed...)
		b[len(b)/2] ^= 1
		f.Add(b)
		f.Add(seed[:len(seed)-5])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) <= crypto.MaxKeyFileSize && s2kCost(data) == s2kSkip {
			t.Skip("S2K over the fuzzing budget")
		}
		ctx := context.Background()
		sec, err := crypto.Passphrase(keyFilePassphrase).Unlock(ctx, data)
		if err == nil {
			checkSecrets(t, sec)
		}
		_, werr := crypto.Passphrase("another passphrase").Unlock(ctx, data)
		if err == nil && werr == nil {
			t.Fatal("key file opens with any passphrase")
		}
		for _, e := range []error{err, werr} {
			if errors.Is(e, crypto.ErrWrongPassphrase) && errors.Is(e, crypto.ErrKeyFileDamaged) {
				t.Fatalf("both a wrong passphrase and damage: %v", e)
			}
		}
	})
}
