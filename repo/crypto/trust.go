package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

// Key pinning and snapshot authentication (FORMAT.md sections 4.1 and 9.1).
// A write-only holder knows every repository secret but the data secret
// key, so what it must not forge is signed by that key, and what it must
// not forge for another writer is authenticated by that writer's own
// snapshot key.

// maxSignatureSize bounds a detached signature in a key file or config.
const maxSignatureSize = 4096

// Fingerprint returns the OpenPGP fingerprint of e's primary key as gpg
// prints it: upper-case hex without spaces.
func Fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

// ParseFingerprint normalises a data key fingerprint given by a user: 40
// hex digits, spaces allowed, any case. It returns the upper-case form.
func ParseFingerprint(s string) (string, error) {
	f := strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(strings.TrimSpace(s), "0x"), " ", ""))
	if len(f) != 40 || strings.Trim(f, "0123456789ABCDEF") != "" {
		return "", fmt.Errorf("crypto: %q is not a data key fingerprint (40 hex digits)", s)
	}
	return f, nil
}

// appendField appends a length-prefixed field (uint32 little-endian
// length, then the bytes) to a statement.
func appendField(b []byte, f []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
	return append(b, f...)
}

// Statement encodes a label and fields unambiguously: the label, a NUL,
// then each field as a uint32 little-endian length and its bytes.
func Statement(label string, fields ...[]byte) []byte {
	b := append([]byte(label), 0)
	for _, f := range fields {
		b = appendField(b, f)
	}
	return b
}

// Statement labels.
const (
	keyStatementLabel      = "hoard key statement v1"
	configStatementLabel   = "hoard config statement v1"
	snapshotStatementLabel = "hoard snapshot statement v1"
	writerIDLabel          = "hoard writer id v1"
)

// KeyStatement is what a key file's signature covers: the secrets every key
// file of the repository shares (not kind, dates, host, user, snapshot key).
func (s *Secrets) KeyStatement() []byte {
	return Statement(keyStatementLabel, []byte(s.Repository), []byte(s.Fingerprint),
		[]byte(s.Polynomial.String()[2:]), s.IDKey, s.MetaKey)
}

// ConfigStatement is what the config's signature covers.
func ConfigStatement(repository string, version int, fingerprint, body string) []byte {
	return Statement(configStatementLabel, []byte(repository), []byte(fmt.Sprint(version)),
		[]byte(fingerprint), []byte(body))
}

func detachSign(e *openpgp.Entity, msg []byte, now time.Time) ([]byte, error) {
	var buf bytes.Buffer
	if err := openpgp.DetachSign(&buf, []*openpgp.Entity{e}, bytes.NewReader(msg), pgpConfig(now)); err != nil {
		return nil, fmt.Errorf("crypto: sign with the data key: %w", err)
	}
	return buf.Bytes(), nil
}

func verifyDetached(pub *openpgp.Entity, msg, sig []byte) error {
	if len(sig) > maxSignatureSize {
		return fmt.Errorf("signature of %d bytes: %w", len(sig), ErrInconsistentKey)
	}
	// The signature's time is not checked against the clock: a signature
	// made at init stays valid, and the data key never expires.
	cfg := &packet.Config{Time: func() time.Time { return pub.PrimaryKey.CreationTime.Add(100 * 365 * 24 * time.Hour) }}
	if _, _, err := openpgp.VerifyDetachedSignature(openpgp.EntityList{pub}, bytes.NewReader(msg), bytes.NewReader(sig), cfg); err != nil {
		return fmt.Errorf("%v: %w", err, ErrInconsistentKey)
	}
	return nil
}

// Fingerprint returns the data key's fingerprint.
func (k *Keys) Fingerprint() string { return k.fingerprint }

// Signed reports whether the key file carried a signature by the data key
// (verified by NewKeys).
func (k *Keys) Signed() bool { return k.Secrets.Signature != nil }

// Sign signs msg with the data secret key; ErrWriteOnly without it.
func (k *Keys) Sign(msg []byte, now time.Time) ([]byte, error) {
	if k.dataSec == nil {
		return nil, ErrWriteOnly
	}
	k.pgpMu.Lock()
	defer k.pgpMu.Unlock()
	return detachSign(k.dataSec, msg, now)
}

// Verify checks a signature by the data key over msg; an error wraps
// ErrInconsistentKey.
func (k *Keys) Verify(msg, sig []byte) error {
	k.pgpMu.Lock()
	defer k.pgpMu.Unlock()
	return verifyDetached(k.dataPub, msg, sig)
}

// WriterID names a snapshot key without revealing it: the hex of the first
// 16 bytes of SHA-256(label || NUL || key).
func WriterID(snapshotKey []byte) string {
	h := sha256.New()
	h.Write([]byte(writerIDLabel))
	h.Write([]byte{0})
	h.Write(snapshotKey)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Writer returns the writer ID of the key file's snapshot key, or "" when
// the key file has none (version 1).
func (k *Keys) Writer() string { return k.writer }

// SnapshotStatement encodes the fields of a snapshot that its MAC covers.
func SnapshotStatement(fields ...[]byte) []byte {
	return Statement(snapshotStatementLabel, fields...)
}

// MACSnapshot returns the MAC of a snapshot statement under the key file's
// snapshot key, and the snapshot key wrapped to the data key, so that full
// keys can check it too. Without a snapshot key it returns nil, nil, nil.
func (k *Keys) MACSnapshot(statement []byte) (mac, wrapped []byte, err error) {
	if k.Secrets.SnapshotKey == nil {
		return nil, nil, nil
	}
	k.mu.Lock()
	wrapped = k.wrappedSnapshotKey
	k.mu.Unlock()
	if wrapped == nil {
		if wrapped, err = k.WrapPackKey(k.Secrets.SnapshotKey); err != nil {
			return nil, nil, err
		}
		k.mu.Lock()
		k.wrappedSnapshotKey = wrapped
		k.mu.Unlock()
	}
	return snapshotMAC(k.Secrets.SnapshotKey, statement), wrapped, nil
}

func snapshotMAC(key, statement []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(statement)
	return m.Sum(nil)
}

// Trust says what a client knows of who wrote a snapshot.
type Trust string

// Trust levels of a snapshot.
const (
	// TrustNone: the snapshot carries no MAC (written before version 2,
	// or by a key file without a snapshot key).
	TrustNone Trust = "none"
	// TrustThisKey: written by the key file in use; the MAC verifies.
	TrustThisKey Trust = "this-key"
	// TrustVerified: written by another key file; a full key unwrapped
	// its snapshot key, which matches the writer ID, and the MAC verifies.
	TrustVerified Trust = "verified"
	// TrustUnknown: written by another key file, which a write-only key
	// cannot check.
	TrustUnknown Trust = "unverified"
	// TrustInvalid: the MAC does not verify, or the wrapped snapshot key
	// does not match the writer ID: the snapshot was forged or damaged.
	TrustInvalid Trust = "invalid"
)

// CheckSnapshot says who wrote a snapshot with writer ID writer, wrapped
// snapshot key wrapped and MAC mac over statement.
func (k *Keys) CheckSnapshot(writer string, wrapped, statement, mac []byte) Trust {
	switch {
	case writer == "" && mac == nil:
		return TrustNone
	case writer == "" || mac == nil:
		return TrustInvalid
	case k.writer != "" && writer == k.writer:
		if hmac.Equal(snapshotMAC(k.Secrets.SnapshotKey, statement), mac) {
			return TrustThisKey
		}
		return TrustInvalid
	case !k.CanRead():
		return TrustUnknown
	}
	key, err := k.UnwrapPackKey(wrapped)
	if err != nil || WriterID(key) != writer || !hmac.Equal(snapshotMAC(key, statement), mac) {
		return TrustInvalid
	}
	return TrustVerified
}
