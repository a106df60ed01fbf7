package fuzz

import (
	"bytes"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/hoard-backup/hoard/repo/crypto"
)

// checkSecrets asserts what DecodeSecrets promises of secrets it accepts.
func checkSecrets(t *testing.T, s *crypto.Secrets) {
	t.Helper()
	if len(s.IDKey) != crypto.KeySize || len(s.MetaKey) != crypto.KeySize {
		t.Fatalf("accepted keys of %d and %d bytes", len(s.IDKey), len(s.MetaKey))
	}
	if s.Polynomial.Deg() != 53 || !s.Polynomial.Irreducible() {
		t.Fatalf("accepted polynomial %v", s.Polynomial)
	}
	if len(s.Repository) != 64 {
		t.Fatalf("accepted repository %q", s.Repository)
	}
	switch {
	case s.Kind == crypto.Full && s.DataSecret != "":
	case s.Kind == crypto.WriteOnly && s.DataSecret == "":
	default:
		t.Fatalf("accepted kind %q with data secret key %v", s.Kind, s.DataSecret != "")
	}
	// Version 2 fields come with a fingerprint and a snapshot key;
	// version 1 has none of them.
	if s.Fingerprint == "" && (s.SnapshotKey != nil || s.Signature != nil) ||
		s.Fingerprint != "" && (len(s.Fingerprint) != 40 || len(s.SnapshotKey) != crypto.KeySize) || len(s.Signature) > 4096 {
		t.Fatalf("accepted fingerprint %q, snapshot key of %d bytes, signature of %d", s.Fingerprint, len(s.SnapshotKey), len(s.Signature))
	}
}

func sameSecrets(a, b *crypto.Secrets) bool {
	return a.Repository == b.Repository && a.Kind == b.Kind && a.Created.Equal(b.Created) &&
		a.Host == b.Host && a.Username == b.Username && a.Polynomial == b.Polynomial &&
		bytes.Equal(a.IDKey, b.IDKey) && bytes.Equal(a.MetaKey, b.MetaKey) &&
		a.DataPublic == b.DataPublic && a.DataSecret == b.DataSecret &&
		a.Fingerprint == b.Fingerprint && bytes.Equal(a.Signature, b.Signature) && bytes.Equal(a.SnapshotKey, b.SnapshotKey)
}

// FuzzKeyPayload feeds crypto.DecodeSecrets (the JSON inside a key file)
// arbitrary bytes. Accepted secrets are well formed and survive MarshalJSON
// and DecodeSecrets unchanged.
func FuzzKeyPayload(f *testing.F) {
	s := testSecrets(f)
	v1 := *s
	v1.Fingerprint, v1.Signature, v1.SnapshotKey = "", nil, nil
	unsigned := s.WriteOnlyCopy()
	unsigned.Signature = nil
	for _, sec := range []*crypto.Secrets{s, s.WriteOnlyCopy(), &v1, unsigned} {
		b, err := sec.MarshalJSON()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"hoard_key":1,"kind":"full","chunker_polynomial":"3da3358b4dc172"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sec, err := crypto.DecodeSecrets(data)
		if err != nil {
			return
		}
		checkSecrets(t, sec)
		b, err := sec.MarshalJSON()
		if err != nil {
			t.Fatalf("accepted secrets do not marshal: %v", err)
		}
		sec2, err := crypto.DecodeSecrets(b)
		if err != nil {
			t.Fatalf("marshalled secrets rejected: %v\n%s", err, b)
		}
		if !sameSecrets(sec, sec2) {
			t.Fatalf("round trip changed the secrets:\n%+v\n%+v", sec, sec2)
		}
	})
}

const keyFilePassphrase = "correct horse"

// The S2K budget of one fuzz input, so that the target stays fast. Inputs
// over it that hoard must run anyway (argon2 up to 2^20 KiB, iterated
// counts summed over up to 8 packets) are skipped. Inputs with an argon2
// packet over 2^20 KiB (1 GiB, crypto.maxArgon2MemoryExp), anywhere in front
// of the encrypted data, are run: hoard must refuse them without running
// the S2K, and the allocation check below catches it if it does not (at
// 2^31 KiB the fuzz worker dies, which fails the run as well).
const (
	maxArgon2Exp     = 20       // hoard's limit
	maxArgon2KiB     = 64 << 10 // budget: memory of one argon2 S2K
	maxArgon2Work    = 256 << 10
	maxIteratedBytes = 65011712 // one SKESK of the largest count, as hoard writes it
	maxSKESK         = 8
)

// s2kVerdict says what the target does with an input.
type s2kVerdict int

const (
	s2kRun        s2kVerdict = iota // cheap enough
	s2kSkip                         // allowed, but over the fuzzing budget
	s2kMustRefuse                   // asks for more than hoard allows
)

// s2kCost reads the packets in front of the encrypted data and judges their
// S2K specifiers. It parses the framing with go-crypto's opaque reader,
// which shares its header code with the reader that
// crypto.DecryptWithPassphrase hands the message to, not with hoard's own
// packet walk: a difference between the two is what this target looks for.
func s2kCost(msg []byte) s2kVerdict {
	rd := packet.NewOpaqueReader(bytes.NewReader(msg))
	var argonWork, iterated uint64
	verdict := s2kRun
	for n := 0; ; {
		p, err := rd.Next()
		if err != nil {
			return verdict
		}
		switch p.Tag {
		case 9, 18, 20: // encrypted data: ReadMessage stops looking for keys
			return verdict
		case 3: // symmetric-key encrypted session key
		default:
			continue
		}
		if n++; n > maxSKESK && verdict == s2kRun {
			verdict = s2kSkip
		}
		b := p.Contents
		var off int
		switch {
		case len(b) > 0 && b[0] == 4:
			off = 2
		case len(b) > 0 && b[0] == 5:
			off = 3
		case len(b) > 0 && b[0] == 6:
			off = 5
		default:
			continue
		}
		if off >= len(b) {
			continue
		}
		spec := b[off:]
		switch spec[0] {
		case 3: // type, hash, salt[8], count
			if len(spec) >= 11 {
				c := spec[10]
				iterated += uint64(16+c&15) << (c>>4 + 6)
			}
		case 4: // type, salt[16], passes, parallelism, memory exponent
			if len(spec) < 20 || spec[19] > 31 {
				continue
			}
			if spec[19] > maxArgon2Exp {
				return s2kMustRefuse
			}
			kib := uint64(1) << spec[19]
			if kib > maxArgon2KiB {
				verdict = s2kSkip
			}
			argonWork += uint64(spec[17]) * kib
		}
		if argonWork > maxArgon2Work || iterated > maxIteratedBytes {
			verdict = s2kSkip
		}
	}
}

// keyFileSeeds returns key files that open with keyFilePassphrase: one made
// by hoard (iterated S2K, as `hoard init --s2k iterated` writes it), and
// cheap ones made with go-crypto directly so that mutations run fast.
func keyFileSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	s := testSecrets(tb)
	real, err := crypto.EncryptWithPassphrase(s, []byte(keyFilePassphrase), crypto.S2KIterated)
	if err != nil {
		tb.Fatal(err)
	}
	out := [][]byte{real}
	for _, c := range []struct {
		sec *crypto.Secrets
		s2k *s2k.Config
	}{
		{s, &s2k.Config{S2KMode: s2k.IteratedSaltedS2K, S2KCount: 65536}},
		{s.WriteOnlyCopy(), &s2k.Config{S2KMode: s2k.IteratedSaltedS2K, S2KCount: 65536}},
		{s, &s2k.Config{S2KMode: s2k.Argon2S2K, Argon2Config: &s2k.Argon2Config{NumberOfPasses: 1, DegreeOfParallelism: 1, Memory: 64}}},
	} {
		payload, err := c.sec.MarshalJSON()
		if err != nil {
			tb.Fatal(err)
		}
		var buf bytes.Buffer
		cfg := &packet.Config{DefaultCipher: packet.CipherAES256, DefaultCompressionAlgo: packet.CompressionNone, S2KConfig: c.s2k}
		w, err := openpgp.SymmetricallyEncrypt(&buf, []byte(keyFilePassphrase), nil, cfg)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := w.Write(payload); err != nil {
			tb.Fatal(err)
		}
		if err := w.Close(); err != nil {
			tb.Fatal(err)
		}
		out = append(out, buf.Bytes())
	}
	return out
}

// FuzzKeyFile feeds crypto.DecryptWithPassphrase arbitrary bytes with a fixed
// passphrase. It must not panic, must not allocate more than the S2K asked
// for justifies, and a file it opens must be encrypted: the same file must not
// open with another passphrase.
func FuzzKeyFile(f *testing.F) {
	seeds := keyFileSeeds(f)
	for _, seed := range seeds {
		if _, err := crypto.DecryptWithPassphrase(seed, []byte(keyFilePassphrase)); err != nil {
			f.Fatalf("seed key file does not open: %v", err)
		}
		f.Add(seed)
	}
	// The cheap one, armored as `gpg --armor` would write it.
	var armored bytes.Buffer
	aw, err := armor.Encode(&armored, "PGP MESSAGE", nil)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := aw.Write(seeds[1]); err != nil {
		f.Fatal(err)
	}
	if err := aw.Close(); err != nil {
		f.Fatal(err)
	}
	f.Add(armored.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		verdict := s2kRun
		if len(data) <= crypto.MaxKeyFileSize {
			verdict = s2kCost(data)
		}
		if verdict == s2kSkip {
			t.Skip("S2K over the fuzzing budget")
		}
		var (
			sec *crypto.Secrets
			err error
		)
		n := allocated(func() { sec, err = crypto.DecryptWithPassphrase(data, []byte(keyFilePassphrase)) })
		if limit := uint64(maxArgon2KiB<<10 + 32<<20); n > limit {
			t.Fatalf("allocated %d MiB for a key file of %d bytes", n>>20, len(data))
		}
		if verdict == s2kMustRefuse && err == nil {
			t.Fatalf("opened a key file with an argon2 S2K over 2^%d KiB", maxArgon2Exp)
		}
		if err != nil {
			return
		}
		checkSecrets(t, sec)
		if _, err := crypto.DecryptWithPassphrase(data, []byte("another passphrase")); err == nil {
			t.Fatal("key file opens with any passphrase")
		}
	})
}
