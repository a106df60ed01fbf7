// Package fuzz holds one fuzz target per decoder of repository bytes
// (docs/FORMAT.md): bytes read from a repository may be hostile. It is black-box: it imports only the
// exported decoders and encoders. Every target is seeded with valid inputs
// made by the encoders, asserts that the decoder never panics, that its
// errors carry the package's sentinel, and, where the format allows, that
// decoding, encoding and decoding again gives the same value.
//
// Run one target the way CI does:
//
//	go test ./fuzz/ -run '^$' -fuzz '^FuzzPackHeader$' -fuzztime 15s
package fuzz

import (
	"bytes"
	"crypto/sha256"
	"runtime"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/chunk"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
)

// testPolynomial is the polynomial of FORMAT.md's example key file.
const testPolynomial = "3da3358b4dc173"

// fixedKey returns a 32-byte key derived from label, so that every fuzz
// worker uses the same keys and seeds sealed by one worker open in another.
func fixedKey(label string) []byte {
	k := sha256.Sum256([]byte("hoard fuzz " + label))
	return k[:]
}

// fixedAEAD returns an AEAD under fixedKey(label).
func fixedAEAD(tb testing.TB, label string) *crypto.AEAD {
	tb.Helper()
	a, err := crypto.NewAEAD(fixedKey(label))
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// fixedID returns a blob or file ID derived from label.
func fixedID(label string) id.ID { return id.Hash([]byte("hoard fuzz id " + label)) }

func testPol(tb testing.TB) chunk.Pol {
	tb.Helper()
	p, err := chunk.ParsePolynomial(testPolynomial)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// testSecrets returns fresh full secrets for a fixed repository ID. The data
// keypair is random, which is fine for seeds.
func testSecrets(tb testing.TB) *crypto.Secrets {
	tb.Helper()
	s, err := crypto.NewSecrets(fixedID("repository").String(), time.Date(2026, 11, 21, 23, 59, 0, 0, time.UTC))
	if err != nil {
		tb.Fatal(err)
	}
	s.Host, s.Username = "web1", "deploy"
	return s
}

// allocated returns the bytes fn allocated (runtime.MemStats.TotalAlloc).
// The fuzz worker runs one input at a time, so the figure is fn's own.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// flip returns a copy of b with one bit of byte i changed.
func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x10
	return c
}
