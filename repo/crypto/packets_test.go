package crypto

import (
	"context"
	"testing"
	"time"
)

// FuzzParseKeyFile: ParseKeyFile never panics, and whatever it accepts
// holds a session key packet and names an encrypted data packet.
func FuzzParseKeyFile(f *testing.F) {
	s, err := NewSecrets("abababababababababababababababababababababababababababababababab", time.Unix(1700000000, 0))
	if err != nil {
		f.Fatal(err)
	}
	pw, err := EncryptWithPassphrase(s, []byte("pw"), S2KIterated)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pw)
	f.Add([]byte{0xc1, 0x0a, 3, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0xd2, 0x01, 1})
	f.Add([]byte{0x84, 0x0a, 3, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0xd2, 0xe0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseKeyFile(data)
		if err != nil {
			return
		}
		if len(info.Passphrases)+len(info.Recipients) == 0 || len(info.Passphrases) > maxSKESK || len(info.Recipients) > maxPKESK {
			t.Fatalf("accepted %+v", info)
		}
		_ = info.String()
	})
}

func BenchmarkWrapPackKey(b *testing.B) {
	k := benchKeys(b)
	pk := NewPackKey()
	for b.Loop() {
		if _, err := k.WrapPackKey(pk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrapPackKey(b *testing.B) {
	k := benchKeys(b)
	var wrapped [][]byte
	for range 64 {
		w, err := k.WrapPackKey(NewPackKey())
		if err != nil {
			b.Fatal(err)
		}
		wrapped = append(wrapped, w)
	}
	i := 0
	for b.Loop() {
		k.mu.Lock()
		clear(k.unwraped) // measure the unwrapping, not the cache
		k.mu.Unlock()
		if _, err := k.UnwrapPackKey(wrapped[i%len(wrapped)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkUnlock(b *testing.B) {
	s, err := NewSecrets("abababababababababababababababababababababababababababababababab", time.Unix(1700000000, 0))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, mode := range []S2K{S2KArgon2, S2KIterated} {
		msg, err := EncryptWithPassphrase(s, []byte("pw"), mode)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("passphrase-"+string(mode), func(b *testing.B) {
			for b.Loop() {
				if _, err := Passphrase("pw").Unlock(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchKeys(b *testing.B) *Keys {
	b.Helper()
	s, err := NewSecrets("abababababababababababababababababababababababababababababababab", time.Unix(1700000000, 0))
	if err != nil {
		b.Fatal(err)
	}
	k, err := NewKeys(s)
	if err != nil {
		b.Fatal(err)
	}
	return k
}
