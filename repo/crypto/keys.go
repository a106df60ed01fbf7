package crypto

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/hoard-backup/hoard/chunk"
)

// Kind says what a key file can do.
type Kind string

// Key kinds.
const (
	Full      Kind = "full"
	WriteOnly Kind = "write-only"
)

// MaxKeyFileSize bounds a key file; larger files are refused before parsing.
const MaxKeyFileSize = 1 << 20

// Secrets are the secrets one key file holds (FORMAT.md section 4).
type Secrets struct {
	Repository string
	Kind       Kind
	Created    time.Time
	Host       string
	Username   string
	Polynomial chunk.Pol
	IDKey      []byte
	MetaKey    []byte
	DataPublic string // armored public key
	DataSecret string // armored secret key; empty for write-only keys

	// Fingerprint is the data key's fingerprint as the key file states it
	// (40 hex digits, upper case); empty in version 1 key files. NewKeys
	// checks it against DataPublic.
	Fingerprint string
	// Signature is a detached OpenPGP signature by the data key over
	// KeyStatement; nil in key files a full key never signed (FORMAT.md
	// section 4.1). NewKeys verifies it.
	Signature []byte
	// SnapshotKey authenticates the snapshots this key file's holder
	// writes (FORMAT.md section 9.1); nil in version 1 key files.
	SnapshotKey []byte
}

type secretsJSON struct {
	Version    int       `json:"hoard_key"`
	Repository string    `json:"repository"`
	Kind       Kind      `json:"kind"`
	Created    time.Time `json:"created"`
	Host       string    `json:"host,omitempty"`
	Username   string    `json:"username,omitempty"`
	Polynomial string    `json:"chunker_polynomial"`
	IDKey      string    `json:"id_key"`
	MetaKey    string    `json:"metadata_key"`
	DataPublic string    `json:"data_public_key"`
	DataSecret string    `json:"data_secret_key,omitempty"`
	// Version 2 (FORMAT.md section 4.1).
	Fingerprint string `json:"data_key_fingerprint,omitempty"`
	Signature   string `json:"signature,omitempty"`
	SnapshotKey string `json:"snapshot_key,omitempty"`
}

// NewSecrets returns fresh secrets for a new repository with a full key.
func NewSecrets(repository string, now time.Time) (*Secrets, error) {
	pol, err := chunk.RandomPolynomial()
	if err != nil {
		return nil, err
	}
	ent, err := openpgp.NewEntity("hoard data key", repository[:16], "", pgpConfig(now))
	if err != nil {
		return nil, fmt.Errorf("crypto: generate data keypair: %w", err)
	}
	var pub, sec bytes.Buffer
	aw, err := armor.Encode(&pub, "PGP PUBLIC KEY BLOCK", nil)
	if err != nil {
		return nil, err
	}
	if err := ent.Serialize(aw); err != nil {
		return nil, err
	}
	aw.Close()
	aw, err = armor.Encode(&sec, "PGP PRIVATE KEY BLOCK", nil)
	if err != nil {
		return nil, err
	}
	if err := ent.SerializePrivate(aw, pgpConfig(now)); err != nil {
		return nil, err
	}
	aw.Close()
	s := &Secrets{
		Repository: repository, Kind: Full, Created: now.UTC(), Polynomial: pol,
		IDKey: randomBytes(KeySize), MetaKey: randomBytes(KeySize),
		DataPublic: pub.String(), DataSecret: sec.String(),
		Fingerprint: Fingerprint(ent), SnapshotKey: randomBytes(KeySize),
	}
	if s.Signature, err = detachSign(ent, s.KeyStatement(), now); err != nil {
		return nil, err
	}
	return s, nil
}

// WriteOnlyCopy returns the secrets without the data secret key, with a
// snapshot key of its own (each key file has its own, FORMAT.md 9.1).
func (s *Secrets) WriteOnlyCopy() *Secrets {
	c := s.NewCopy()
	c.Kind = WriteOnly
	c.DataSecret = ""
	return c
}

// NewCopy returns a copy of the secrets for a new key file: the same
// repository secrets and signature, a fresh snapshot key.
func (s *Secrets) NewCopy() *Secrets {
	c := *s
	c.SnapshotKey = randomBytes(KeySize)
	return &c
}

// MarshalJSON encodes the key file payload.
// Secrets with a fingerprint or a snapshot key are written as version 2.
func (s *Secrets) MarshalJSON() ([]byte, error) {
	j := secretsJSON{
		Version: 1, Repository: s.Repository, Kind: s.Kind, Created: s.Created,
		Host: s.Host, Username: s.Username, Polynomial: s.Polynomial.String()[2:],
		IDKey:      base64.StdEncoding.EncodeToString(s.IDKey),
		MetaKey:    base64.StdEncoding.EncodeToString(s.MetaKey),
		DataPublic: s.DataPublic, DataSecret: s.DataSecret,
	}
	if s.Fingerprint != "" || s.SnapshotKey != nil || s.Signature != nil {
		j.Version = 2
		j.Fingerprint = s.Fingerprint
		j.SnapshotKey = base64.StdEncoding.EncodeToString(s.SnapshotKey)
		if s.Signature != nil {
			j.Signature = base64.StdEncoding.EncodeToString(s.Signature)
		}
	}
	return json.Marshal(j)
}

// DecodeSecrets parses and validates a key file payload.
func DecodeSecrets(data []byte) (*Secrets, error) {
	var j secretsJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("crypto: key file payload: %w", err)
	}
	switch {
	case j.Version == 1 && (j.Fingerprint != "" || j.Signature != "" || j.SnapshotKey != ""):
		return nil, errors.New("crypto: version 1 key file with version 2 fields")
	case j.Version != 1 && j.Version != 2:
		return nil, fmt.Errorf("crypto: key file version %d not supported", j.Version)
	}
	s := &Secrets{Repository: j.Repository, Kind: j.Kind, Created: j.Created, Host: j.Host,
		Username: j.Username, DataPublic: j.DataPublic, DataSecret: j.DataSecret}
	var err error
	if s.Polynomial, err = chunk.ParsePolynomial(j.Polynomial); err != nil {
		return nil, err
	}
	if s.IDKey, err = decodeKey(j.IDKey); err != nil {
		return nil, fmt.Errorf("crypto: id_key: %w", err)
	}
	if s.MetaKey, err = decodeKey(j.MetaKey); err != nil {
		return nil, fmt.Errorf("crypto: metadata_key: %w", err)
	}
	if j.Version == 2 {
		if s.Fingerprint, err = ParseFingerprint(j.Fingerprint); err != nil || s.Fingerprint != j.Fingerprint {
			return nil, fmt.Errorf("crypto: data_key_fingerprint %q: want 40 upper-case hex digits", j.Fingerprint)
		}
		if s.SnapshotKey, err = decodeKey(j.SnapshotKey); err != nil {
			return nil, fmt.Errorf("crypto: snapshot_key: %w", err)
		}
		if j.Signature != "" {
			if s.Signature, err = base64.StdEncoding.DecodeString(j.Signature); err != nil || len(s.Signature) == 0 || len(s.Signature) > maxSignatureSize {
				return nil, errors.New("crypto: signature: not a base64 signature of at most 4096 bytes")
			}
		}
	}
	switch s.Kind {
	case Full:
		if s.DataSecret == "" {
			return nil, errors.New("crypto: full key file without data_secret_key")
		}
	case WriteOnly:
		if s.DataSecret != "" {
			return nil, errors.New("crypto: write-only key file holds a data_secret_key")
		}
	default:
		return nil, fmt.Errorf("crypto: unknown key kind %q", s.Kind)
	}
	if len(s.Repository) != 64 {
		return nil, fmt.Errorf("crypto: key file names repository %q", s.Repository)
	}
	return s, nil
}

func decodeKey(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) != KeySize {
		return nil, fmt.Errorf("%d bytes, want %d", len(b), KeySize)
	}
	return b, nil
}

func pgpConfig(now time.Time) *packet.Config {
	return &packet.Config{
		DefaultCipher:          packet.CipherAES256,
		DefaultHash:            crypto.SHA256,
		DefaultCompressionAlgo: packet.CompressionNone,
		Algorithm:              packet.PubKeyAlgoEdDSA,
		Curve:                  packet.Curve25519,
		Time:                   func() time.Time { return now },
	}
}

// S2K selects how a passphrase key file stretches its passphrase.
type S2K string

// S2K choices (FORMAT.md section 4).
const (
	// S2KArgon2 is RFC 9580 argon2: strong, but stock gpg 2.2 cannot open it.
	S2KArgon2 S2K = "argon2"
	// S2KIterated is iterated+salted SHA-256, which gpg 2.2 opens.
	S2KIterated S2K = "iterated"
)

// EncryptWithPassphrase writes secrets as a passphrase-encrypted key file.
func EncryptWithPassphrase(s *Secrets, passphrase []byte, mode S2K) ([]byte, error) {
	payload, err := s.MarshalJSON()
	if err != nil {
		return nil, err
	}
	cfg := &packet.Config{DefaultCipher: packet.CipherAES256, DefaultCompressionAlgo: packet.CompressionNone}
	switch mode {
	case S2KArgon2, "":
		cfg.S2KConfig = &s2k.Config{S2KMode: s2k.Argon2S2K,
			Argon2Config: &s2k.Argon2Config{NumberOfPasses: 3, DegreeOfParallelism: 4, Memory: 64 << 10}}
	case S2KIterated:
		cfg.S2KConfig = &s2k.Config{S2KMode: s2k.IteratedSaltedS2K, Hash: crypto.SHA256, S2KCount: 65011712}
	default:
		return nil, fmt.Errorf("crypto: unknown s2k %q (argon2 or iterated)", mode)
	}
	var buf bytes.Buffer
	w, err := openpgp.SymmetricallyEncrypt(&buf, passphrase, nil, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(payload); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxArgon2MemoryExp caps the argon2 memory a key file may ask for (2^20 KiB = 1 GiB),
// so that a hostile key file cannot make hoard allocate without bound.
const maxArgon2MemoryExp = 20

// maxArgon2Passes and maxArgon2Work cap the time of one argon2 S2K: at most
// 16 passes, and passes times memory at most 4 GiB (4 passes over 1 GiB, 16
// over 256 MiB; hoard writes 3 over 64 MiB), a few seconds.
const (
	maxArgon2Passes = 16
	maxArgon2Work   = 4 << 20 // KiB
)

// dearmor returns the binary form of an ASCII-armored OpenPGP message.
func dearmor(msg []byte) ([]byte, bool) {
	t := bytes.TrimLeft(msg, " \t\r\n")
	if !bytes.HasPrefix(t, []byte("-----BEGIN PGP MESSAGE-----")) {
		return nil, false
	}
	blk, err := armor.Decode(bytes.NewReader(t))
	if err != nil {
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(blk.Body, MaxKeyFileSize+1))
	if err != nil || len(b) > MaxKeyFileSize {
		return nil, false
	}
	return b, true
}

// DecryptWithPassphrase opens a passphrase key file. A wrong passphrase is
// ErrWrongPassphrase; damage is another error.
func DecryptWithPassphrase(msg, passphrase []byte) (*Secrets, error) {
	if len(msg) > MaxKeyFileSize {
		return nil, fmt.Errorf("crypto: key file of %d bytes is too large", len(msg))
	}
	if b, ok := dearmor(msg); ok {
		msg = b
	}
	if err := checkS2K(msg); err != nil {
		return nil, fmt.Errorf("%w (%w)", err, ErrKeyFileDamaged)
	}
	tried := false
	prompt := func(keys []openpgp.Key, symmetric bool) ([]byte, error) {
		if tried || !symmetric {
			return nil, ErrWrongPassphrase
		}
		tried = true
		return passphrase, nil
	}
	md, err := openpgp.ReadMessage(bytes.NewReader(msg), nil, prompt, &packet.Config{})
	if err != nil {
		// Once the passphrase was tried, any failure means it was wrong (or
		// the file is damaged: authenticated encryption cannot tell them
		// apart). go-crypto does not rely on SEIPD v1's quick check, so a
		// wrong key may surface as a parse or integrity error.
		if tried || errors.Is(err, ErrWrongPassphrase) || errors.Is(err, pgperrors.ErrKeyIncorrect) {
			return nil, ErrWrongPassphrase
		}
		return nil, fmt.Errorf("crypto: key file: %w", err)
	}
	// Read to the end (one byte past the limit), so that the integrity check
	// at the end of the message is verified.
	payload, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, MaxKeyFileSize+1))
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	if len(payload) > MaxKeyFileSize {
		return nil, fmt.Errorf("crypto: key file content over %d bytes", MaxKeyFileSize)
	}
	return DecodeSecrets(payload)
}

// Keys are the opened secrets of a repository, ready to use. Safe for
// concurrent use.
type Keys struct {
	Secrets *Secrets
	Meta    *AEAD
	IDs     *IDHasher

	dataPub *openpgp.Entity
	dataSec *openpgp.Entity

	fingerprint string // of dataPub
	writer      string // WriterID of Secrets.SnapshotKey; empty without one

	mu       sync.Mutex
	unwraped map[string][]byte // wrapped key (as string) -> pack key; bounded
	// wrappedSnapshotKey is the snapshot key wrapped to the data key, made once (under mu).
	wrappedSnapshotKey []byte
	// pgpMu serialises use of the data key entities: go-crypto caches
	// signature checks in them lazily, which is not safe for concurrent use.
	pgpMu sync.Mutex
}

// NewKeys prepares secrets for use.
func NewKeys(s *Secrets) (*Keys, error) {
	meta, err := NewAEAD(s.MetaKey)
	if err != nil {
		return nil, err
	}
	k := &Keys{Secrets: s, Meta: meta, IDs: NewIDHasher(s.IDKey), unwraped: map[string][]byte{}}
	pub, err := readOneKey(s.DataPublic)
	if err != nil {
		return nil, fmt.Errorf("crypto: data public key: %w", err)
	}
	k.dataPub = pub
	k.fingerprint = Fingerprint(pub)
	if s.Fingerprint != "" && s.Fingerprint != k.fingerprint {
		return nil, fmt.Errorf("crypto: the key file names data key %s but holds %s: %w", s.Fingerprint, k.fingerprint, ErrInconsistentKey)
	}
	if s.Signature != nil {
		if err := verifyDetached(pub, s.KeyStatement(), s.Signature); err != nil {
			return nil, fmt.Errorf("crypto: the key file's signature by data key %s: %w", k.fingerprint, err)
		}
	}
	if s.SnapshotKey != nil {
		k.writer = WriterID(s.SnapshotKey)
	}
	if s.DataSecret != "" {
		sec, err := readOneKey(s.DataSecret)
		if err != nil {
			return nil, fmt.Errorf("crypto: data secret key: %w", err)
		}
		if sec.PrivateKey == nil || sec.PrimaryKey.Fingerprint == nil ||
			!bytes.Equal(sec.PrimaryKey.Fingerprint, pub.PrimaryKey.Fingerprint) {
			return nil, fmt.Errorf("crypto: the data secret key does not match the data public key %s: %w", k.fingerprint, ErrInconsistentKey)
		}
		k.dataSec = sec
	}
	return k, nil
}

func readOneKey(armored string) (*openpgp.Entity, error) {
	el, err := openpgp.ReadArmoredKeyRing(strings.NewReader(armored))
	if err != nil {
		return nil, err
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("%d keys, want 1", len(el))
	}
	return el[0], nil
}

// CanRead reports whether the keys can open data blobs.
func (k *Keys) CanRead() bool { return k.dataSec != nil }

// WrapPackKey encrypts a data pack key to the data public key.
func (k *Keys) WrapPackKey(packKey []byte) ([]byte, error) {
	var buf bytes.Buffer
	cfg := &packet.Config{DefaultCipher: packet.CipherAES256, DefaultCompressionAlgo: packet.CompressionNone}
	k.pgpMu.Lock()
	defer k.pgpMu.Unlock()
	w, err := openpgp.Encrypt(&buf, []*openpgp.Entity{k.dataPub}, nil, nil, nil, cfg)
	if err != nil {
		return nil, fmt.Errorf("crypto: wrap pack key: %w", err)
	}
	if _, err := w.Write(packKey); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// UnwrapPackKey opens a wrapped data pack key. Without the data secret key it
// returns ErrWriteOnly. Results are cached.
func (k *Keys) UnwrapPackKey(wrapped []byte) ([]byte, error) {
	if k.dataSec == nil {
		return nil, ErrWriteOnly
	}
	k.mu.Lock()
	if pk, ok := k.unwraped[string(wrapped)]; ok {
		k.mu.Unlock()
		return pk, nil
	}
	k.mu.Unlock()
	if len(wrapped) > 4096 {
		return nil, fmt.Errorf("crypto: wrapped pack key of %d bytes: %w", len(wrapped), ErrUnauthenticated)
	}
	k.pgpMu.Lock()
	md, err := openpgp.ReadMessage(bytes.NewReader(wrapped), openpgp.EntityList{k.dataSec}, nil, &packet.Config{})
	if err != nil {
		k.pgpMu.Unlock()
		return nil, fmt.Errorf("crypto: unwrap pack key: %w", ErrUnauthenticated)
	}
	pk, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, KeySize+1))
	k.pgpMu.Unlock()
	if err != nil || len(pk) != KeySize {
		return nil, fmt.Errorf("crypto: unwrap pack key: %w", ErrUnauthenticated)
	}
	k.mu.Lock()
	if len(k.unwraped) > 4096 {
		clear(k.unwraped)
	}
	k.unwraped[string(wrapped)] = pk
	k.mu.Unlock()
	return pk, nil
}
