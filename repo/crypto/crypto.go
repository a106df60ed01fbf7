// Package crypto holds a repository's secrets and the constructions that use
// them: sealing of metadata and blobs with AES-256-GCM, keyed blob IDs, the
// data keypair that pack keys are wrapped to, and key files, which are
// standard OpenPGP messages. See docs/FORMAT.md, sections 2 and 4.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/hoard-backup/hoard/repo/id"
)

// Sentinel errors.
var (
	// ErrUnauthenticated means sealed bytes failed to open: a wrong key or damaged data.
	ErrUnauthenticated = errors.New("crypto: authentication failed (wrong key or damaged data)")
	// ErrWrongPassphrase means no key file opened with the passphrase given.
	ErrWrongPassphrase = errors.New("crypto: wrong passphrase")
	// ErrWriteOnly means the key can write to the repository but not read file content.
	ErrWriteOnly = errors.New("crypto: this key can write backups but cannot read their content (write-only key)")
	// ErrInconsistentKey means a key file's parts do not belong together:
	// its signature does not verify under its data key, its stated
	// fingerprint is not its data key's, or its data secret key is not the
	// secret half of its data public key.
	ErrInconsistentKey = errors.New("crypto: the key file is not consistent with its data key")
)

// KeySize is the size of symmetric keys.
const KeySize = 32

// NonceSize is the size of the random nonce in front of every sealed object.
const NonceSize = 12

// Overhead is the number of bytes sealing adds.
const Overhead = NonceSize + 16

// Labels that bind sealed metadata to its role (FORMAT.md 2.1).
const (
	LabelConfig     = "hoard config v1"
	LabelPackHeader = "hoard pack header v1"
	LabelIndex      = "hoard index v1"
	LabelSnapshot   = "hoard snapshot v1"
	LabelLock       = "hoard lock v1"
	LabelWAL        = "hoard wal v1"
)

// AEAD seals and opens objects under one key. Safe for concurrent use.
type AEAD struct {
	aead cipher.AEAD
}

// NewAEAD returns an AES-256-GCM sealer for a 32-byte key.
func NewAEAD(key []byte) (*AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("crypto: key of %d bytes, want %d", len(key), KeySize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &AEAD{aead: g}, nil
}

// Seal appends nonce || ciphertext || tag of plaintext to dst.
func (a *AEAD) Seal(dst, plaintext, ad []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, NonceSize)...)
	if _, err := rand.Read(dst[n:]); err != nil {
		panic("crypto: no randomness: " + err.Error())
	}
	return a.aead.Seal(dst, dst[n:n+NonceSize], plaintext, ad)
}

// Open appends the plaintext of sealed to dst, or returns ErrUnauthenticated.
func (a *AEAD) Open(dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, ErrUnauthenticated
	}
	out, err := a.aead.Open(dst, sealed[:NonceSize], sealed[NonceSize:], ad)
	if err != nil {
		return nil, ErrUnauthenticated
	}
	return out, nil
}

// NewPackKey returns a fresh random pack key.
func NewPackKey() []byte {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		panic("crypto: no randomness: " + err.Error())
	}
	return k
}

// IDHasher computes keyed blob IDs. It is safe for concurrent use; each call
// takes a fresh HMAC state.
type IDHasher struct {
	key []byte
}

// NewIDHasher returns a hasher for the repository's ID key.
func NewIDHasher(key []byte) *IDHasher { return &IDHasher{key: append([]byte(nil), key...)} }

// New returns an HMAC-SHA256 state; Sum it into an id.ID.
func (h *IDHasher) New() hash.Hash { return hmac.New(sha256.New, h.key) }

// Sum returns the blob ID of plaintext.
func (h *IDHasher) Sum(plaintext []byte) id.ID {
	m := hmac.New(sha256.New, h.key)
	m.Write(plaintext)
	var out id.ID
	m.Sum(out[:0])
	return out
}

// randomBytes returns n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		panic("crypto: no randomness: " + err.Error())
	}
	return b
}
