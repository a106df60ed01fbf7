package fuzz

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/hoard-backup/hoard/repo/crypto"
)

// FuzzKeySignature feeds crypto.NewKeys a key file whose signature (the
// data key's, over the key statement) is arbitrary bytes. It must not
// panic, and a signature it accepts must bind the statement: it does not
// verify over another one.
func FuzzKeySignature(f *testing.F) {
	s := testSecrets(f)
	f.Add(s.Signature)
	f.Add(flip(s.Signature, len(s.Signature)-3))
	f.Add(s.Signature[:len(s.Signature)/2])
	f.Add([]byte{0x88, 0x00})
	f.Fuzz(func(t *testing.T, sig []byte) {
		c := *s
		c.Signature = sig
		k, err := crypto.NewKeys(&c)
		if err != nil {
			return
		}
		other := c
		other.IDKey = bytes.Repeat([]byte{7}, crypto.KeySize)
		if k.Verify(other.KeyStatement(), sig) == nil {
			t.Fatal("an accepted signature verifies over another statement")
		}
	})
}

// FuzzSnapshotWriter feeds Keys.CheckSnapshot arbitrary writer fields, as a
// snapshot file brings them, for a full key. It must not panic; it says
// this-key or verified only for a MAC of the statement under the key in
// use's snapshot key or the other writer's (the seed's) snapshot key.
func FuzzSnapshotWriter(f *testing.F) {
	s := testSecrets(f)
	own, err := crypto.NewKeys(s)
	if err != nil {
		f.Fatal(err)
	}
	other, err := crypto.NewKeys(s.WriteOnlyCopy())
	if err != nil {
		f.Fatal(err)
	}
	stmt := crypto.SnapshotStatement([]byte("repository"), []byte("tree"))
	for _, k := range []*crypto.Keys{own, other} {
		mac, wrapped, err := k.MACSnapshot(stmt)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(k.Writer(), wrapped, stmt, mac)
		f.Add(k.Writer(), wrapped, stmt, flip(mac, 3))
	}
	f.Add("", []byte(nil), stmt, []byte(nil))
	keys := [][]byte{s.SnapshotKey, other.Secrets.SnapshotKey}
	f.Fuzz(func(t *testing.T, writer string, wrapped, statement, mac []byte) {
		tr := own.CheckSnapshot(writer, wrapped, statement, mac)
		if tr != crypto.TrustThisKey && tr != crypto.TrustVerified {
			return
		}
		for _, key := range keys {
			m := hmac.New(sha256.New, key)
			m.Write(statement)
			if hmac.Equal(m.Sum(nil), mac) && crypto.WriterID(key) == writer {
				return
			}
		}
		t.Fatalf("trust %s for a MAC under no known snapshot key", tr)
	})
}
