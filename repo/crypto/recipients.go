package crypto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

// ErrBadRecipient means a GPG public key cannot protect a key file: it is
// expired, revoked, has no encryption subkey, or is of a kind gpg 2.2 cannot
// use. The *RecipientError that wraps it names the key and the reason.
var ErrBadRecipient = errors.New("crypto: unusable recipient key")

// RecipientError says which key cannot be a recipient and why.
type RecipientError struct {
	Fingerprint string // upper-case hex, as gpg prints it
	UserID      string
	Reason      string
}

func (e *RecipientError) Error() string {
	uid := ""
	if e.UserID != "" {
		uid = " (" + e.UserID + ")"
	}
	return fmt.Sprintf("crypto: GPG key %s%s %s", e.Fingerprint, uid, e.Reason)
}

// Unwrap returns ErrBadRecipient.
func (e *RecipientError) Unwrap() error { return ErrBadRecipient }

// Recipient is a user's GPG public key that key files are encrypted to.
type Recipient struct {
	entity *openpgp.Entity
}

// Fingerprint returns the primary key's fingerprint, upper-case hex.
func (r *Recipient) Fingerprint() string { return fingerprint(r.entity) }

// UserID returns the primary user ID, e.g. "Ops <ops@example.com>".
func (r *Recipient) UserID() string { return userID(r.entity) }

// String returns the fingerprint and the user ID.
func (r *Recipient) String() string { return describeEntity(r.entity) }

func fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

func userID(e *openpgp.Entity) string {
	if _, id := e.PrimaryIdentity(time.Time{}, &packet.Config{}); id != nil {
		return id.Name
	}
	names := make([]string, 0, len(e.Identities))
	for n := range e.Identities {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 0 {
		return names[0]
	}
	return ""
}

func describeEntity(e *openpgp.Entity) string {
	if uid := userID(e); uid != "" {
		return fingerprint(e) + " (" + uid + ")"
	}
	return fingerprint(e)
}

// readKeyRing reads OpenPGP keys, armored or binary, as gpg --export and
// --export-secret-keys write them.
func readKeyRing(data []byte) (openpgp.EntityList, error) {
	t := bytes.TrimLeft(data, " \t\r\n")
	var (
		el  openpgp.EntityList
		err error
	)
	if bytes.HasPrefix(t, []byte("-----BEGIN PGP")) {
		el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(t))
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, err
	}
	if len(el) == 0 {
		return nil, errors.New("no OpenPGP key found")
	}
	return el, nil
}

// ReadRecipients reads the public keys in data (armored or binary, as
// `gpg --export` writes them; several keys are several recipients) and
// checks that each can protect a key file at time now.
func ReadRecipients(data []byte, now time.Time) ([]*Recipient, error) {
	el, err := readKeyRing(data)
	if err != nil {
		return nil, fmt.Errorf("crypto: read GPG public key: %w", err)
	}
	out := make([]*Recipient, 0, len(el))
	for _, e := range el {
		if e.PrivateKey != nil {
			// A secret key on a backup host is the very thing a
			// write-only key exists to avoid: refuse, do not strip it.
			return nil, &RecipientError{Fingerprint: fingerprint(e), UserID: userID(e),
				Reason: "is a secret key (gpg --export-secret-keys); this must be a public key: gpg --armor --export " + fingerprint(e) +
					" (and do not leave the secret key on this host)"}
		}
		if err := checkRecipient(e, now); err != nil {
			return nil, err
		}
		out = append(out, &Recipient{entity: e})
	}
	return out, nil
}

// checkRecipient returns a *RecipientError when e cannot be encrypted to at
// time now in a way gpg 2.2 reads.
func checkRecipient(e *openpgp.Entity, now time.Time) error {
	bad := func(format string, a ...any) error {
		return &RecipientError{Fingerprint: fingerprint(e), UserID: userID(e), Reason: fmt.Sprintf(format, a...)}
	}
	if v := e.PrimaryKey.Version; v != 4 {
		return bad("is a version %d key: key files must open with gpg 2.2, which reads only version 4 keys", v)
	}
	cfg := &packet.Config{}
	if e.Revoked(now) {
		return bad("is revoked%s", revocationText(e.Revocations))
	}
	sig, err := e.VerifyPrimaryKey(now, cfg)
	switch {
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return bad("is revoked%s", revocationText(e.Revocations))
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return bad("expired %s", expiryText(e.PrimaryKey, sig))
	case err != nil:
		return bad("has no valid self-signature (%v)", err)
	}
	if bits, err := e.PrimaryKey.BitLength(); err == nil && isRSA(e.PrimaryKey.PubKeyAlgo) && bits < 2048 {
		return bad("is RSA of %d bits, too weak (at least 2048)", bits)
	}
	if _, err := e.EncryptionKeyWithError(now, cfg); err == nil {
		return nil
	}
	// Say why no subkey will do.
	var reasons []string
	for i := range e.Subkeys {
		sk := &e.Subkeys[i]
		bsig, err := sk.LatestValidBindingSignature(time.Time{}, cfg)
		if err != nil || !(bsig.FlagEncryptCommunications || bsig.FlagEncryptStorage) || !bsig.FlagsValid {
			continue
		}
		id := fmt.Sprintf("%016X", sk.PublicKey.KeyId)
		if _, err := sk.Verify(now, cfg); err != nil {
			switch {
			case errors.Is(err, pgperrors.ErrKeyRevoked):
				reasons = append(reasons, "its encryption subkey "+id+" is revoked")
			case errors.Is(err, pgperrors.ErrKeyExpired):
				reasons = append(reasons, "its encryption subkey "+id+" expired "+expiryText(sk.PublicKey, bsig))
			default:
				reasons = append(reasons, "its encryption subkey "+id+" is not valid ("+err.Error()+")")
			}
			continue
		}
		if bits, err := sk.PublicKey.BitLength(); err == nil && isRSA(sk.PublicKey.PubKeyAlgo) && bits < 2048 {
			reasons = append(reasons, fmt.Sprintf("its encryption subkey %s is RSA of %d bits, too weak (at least 2048)", id, bits))
			continue
		}
		reasons = append(reasons, "its encryption subkey "+id+" uses an unsupported algorithm")
	}
	if len(reasons) == 0 {
		algo := "cv25519"
		if isRSA(e.PrimaryKey.PubKeyAlgo) {
			algo = "rsa4096"
		}
		return bad("has no encryption-capable subkey (a signing-only key?): add one with `gpg --quick-add-key %s %s encr`", fingerprint(e), algo)
	}
	return bad("cannot encrypt: %s", strings.Join(reasons, "; "))
}

func isRSA(a packet.PublicKeyAlgorithm) bool {
	return a == packet.PubKeyAlgoRSA || a == packet.PubKeyAlgoRSAEncryptOnly
}

func expiryText(pk *packet.PublicKey, sig *packet.Signature) string {
	if sig != nil && sig.KeyLifetimeSecs != nil && *sig.KeyLifetimeSecs != 0 {
		return "on " + pk.CreationTime.Add(time.Duration(*sig.KeyLifetimeSecs)*time.Second).UTC().Format("2006-01-02")
	}
	if sig != nil && sig.SigLifetimeSecs != nil && *sig.SigLifetimeSecs != 0 {
		return "on " + sig.CreationTime.Add(time.Duration(*sig.SigLifetimeSecs)*time.Second).UTC().Format("2006-01-02")
	}
	return "(its self-signature expired)"
}

func revocationText(revs []*packet.VerifiableSignature) string {
	for _, r := range revs {
		if r.Packet != nil && r.Packet.RevocationReasonText != "" {
			return ": " + r.Packet.RevocationReasonText
		}
	}
	return ""
}

// EncryptToRecipients writes secrets as a key file encrypted to the
// recipients' GPG keys: PKESK v3 packets and SEIPD v1 with AES-256, which
// gpg 2.2 decrypts (`gpg -d keys/<name>`). Every recipient is checked again
// at time now.
func EncryptToRecipients(s *Secrets, recipients []*Recipient, now time.Time) ([]byte, error) {
	if len(recipients) == 0 {
		return nil, errors.New("crypto: no recipients")
	}
	payload, err := s.MarshalJSON()
	if err != nil {
		return nil, err
	}
	to := make([]*openpgp.Entity, len(recipients))
	for i, r := range recipients {
		if err := checkRecipient(r.entity, now); err != nil {
			return nil, err
		}
		forceSEIPDv1(r.entity)
		to[i] = r.entity
	}
	cfg := &packet.Config{
		DefaultCipher:          packet.CipherAES256,
		DefaultCompressionAlgo: packet.CompressionNone,
		Time:                   func() time.Time { return now },
	}
	var buf bytes.Buffer
	w, err := openpgp.Encrypt(&buf, to, nil, nil, nil, cfg)
	if err != nil {
		return nil, fmt.Errorf("crypto: encrypt key file: %w", err)
	}
	if _, err := w.Write(payload); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	// What gpg 2.2 reads is the contract: check it rather than trust the
	// library's choice.
	info, err := ParseKeyFile(buf.Bytes())
	if err != nil {
		return nil, err
	}
	if info.SEIPD != 1 || len(info.Recipients) != len(to) || len(info.Passphrases) != 0 {
		return nil, fmt.Errorf("crypto: encrypt key file: wrote SEIPD v%d with %d recipients, want v1 with %d", info.SEIPD, len(info.Recipients), len(to))
	}
	for _, r := range info.Recipients {
		if r.Version != 3 {
			return nil, fmt.Errorf("crypto: encrypt key file: wrote PKESK v%d, want v3", r.Version)
		}
	}
	return buf.Bytes(), nil
}

// forceSEIPDv1 clears the "SEIPD v2" feature on e's self-signatures, in
// memory only, so that go-crypto writes SEIPD v1 even to a key that
// advertises v2: gpg 2.2 cannot read v2.
func forceSEIPDv1(e *openpgp.Entity) {
	for _, id := range e.Identities {
		for _, s := range id.SelfCertifications {
			if s.Packet != nil {
				s.Packet.SEIPDv2 = false
			}
		}
	}
	for _, s := range e.DirectSignatures {
		if s.Packet != nil {
			s.Packet.SEIPDv2 = false
		}
	}
}

// readPlaintext reads a decrypted key file's body, bounded, and decodes it.
// Reading to the end checks the integrity of the message (the MDC).
func readPlaintext(md *openpgp.MessageDetails) (*Secrets, error) {
	payload, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, MaxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("crypto: key file: %w", ErrUnauthenticated)
	}
	if len(payload) > MaxKeyFileSize {
		return nil, fmt.Errorf("crypto: key file payload larger than %d bytes", MaxKeyFileSize)
	}
	return DecodeSecrets(payload)
}
