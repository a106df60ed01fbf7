package crypto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

// Errors of unlocking.
var (
	// ErrNotRecipient means a key file is protected by something the
	// unlocker does not hold: other GPG keys, or a passphrase where the
	// unlocker holds a GPG key. The caller tries the next key file.
	ErrNotRecipient = errors.New("crypto: the key file is not encrypted to this key")
	// ErrWrongKeyPassphrase means the passphrase of a GPG secret key is wrong.
	ErrWrongKeyPassphrase = errors.New("crypto: wrong passphrase for the GPG secret key")
	// ErrGPGKeyUnusable means gpg holds a secret key a key file is
	// encrypted to but could not use it (no pinentry, no or a wrong
	// passphrase, a refused smartcard PIN). The error names gpg's reason.
	ErrGPGKeyUnusable = errors.New("crypto: gpg has the secret key but could not use it")
)

// Unlocker opens key files. Implementations: Passphrase, *SecretKeys
// (a GPG secret key as `gpg --export-secret-keys` writes it) and
// *GPGCommand (the gpg program and its agent).
type Unlocker interface {
	// Unlock decrypts the key file and returns its secrets. An error that
	// wraps ErrWrongPassphrase or ErrNotRecipient means the key file is not
	// for this unlocker and the caller may try the next one; any other
	// error (a wrong passphrase for a GPG secret key, damage) is final.
	Unlock(ctx context.Context, keyFile []byte) (*Secrets, error)
	// String names the unlocker in messages: "passphrase", "GPG key <fpr>".
	String() string
}

// KeyDescriber is implemented by unlockers that can name the owner of a
// recipient key ID found in a key file (ParseKeyFile).
type KeyDescriber interface {
	// DescribeKey returns "FINGERPRINT (user ID)" of the primary key that
	// keyID (a primary key or a subkey) belongs to.
	DescribeKey(ctx context.Context, keyID uint64) (string, bool)
}

// IsNotForUnlocker reports whether err from Unlock means "try the next key file".
func IsNotForUnlocker(err error) bool {
	return errors.Is(err, ErrWrongPassphrase) || errors.Is(err, ErrNotRecipient)
}

// Passphrase unlocks passphrase key files.
type Passphrase []byte

// Unlock implements Unlocker.
func (p Passphrase) Unlock(ctx context.Context, keyFile []byte) (*Secrets, error) {
	info, err := ParseKeyFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w (%w)", err, ErrKeyFileDamaged)
	}
	if len(info.Passphrases) == 0 {
		return nil, fmt.Errorf("%w: it is encrypted to %s", ErrNotRecipient, info)
	}
	s, err := DecryptWithPassphrase(keyFile, p)
	if errors.Is(err, ErrWrongPassphrase) {
		if derr := diagnosePassphrase(keyFile, p); derr != nil {
			return nil, derr
		}
	}
	return s, err
}

func (p Passphrase) String() string { return "passphrase" }

// SecretKeys unlock key files encrypted to GPG keys whose secret halves they
// hold. Safe for concurrent use.
type SecretKeys struct {
	ring       openpgp.EntityList
	passphrase func() ([]byte, error)

	mu     sync.Mutex
	pass   []byte // the passphrase, once asked
	failed error  // a wrong passphrase, remembered so that it is asked once
}

// ReadSecretKeys reads GPG secret keys (armored or binary, as
// `gpg --export-secret-keys` writes them). passphrase is called, at most
// once and only if a key file needs a protected key, to get the keys'
// passphrase; it may be nil for unprotected keys.
func ReadSecretKeys(data []byte, passphrase func() ([]byte, error)) (*SecretKeys, error) {
	el, err := readKeyRing(data)
	if err != nil {
		return nil, fmt.Errorf("crypto: read GPG secret key: %w", err)
	}
	for _, e := range el {
		if e.PrivateKey != nil {
			return &SecretKeys{ring: el, passphrase: passphrase}, nil
		}
		for _, sk := range e.Subkeys {
			if sk.PrivateKey != nil {
				return &SecretKeys{ring: el, passphrase: passphrase}, nil
			}
		}
	}
	return nil, fmt.Errorf("crypto: %s is a public key, not a secret key: export it with `gpg --export-secret-keys %s`",
		describeEntity(el[0]), fingerprint(el[0]))
}

func (k *SecretKeys) String() string {
	names := make([]string, len(k.ring))
	for i, e := range k.ring {
		names[i] = describeEntity(e)
	}
	return "GPG key " + strings.Join(names, ", ")
}

// DescribeKey implements KeyDescriber.
func (k *SecretKeys) DescribeKey(_ context.Context, keyID uint64) (string, bool) {
	if es := k.ring.EntitiesById(keyID); len(es) > 0 {
		return describeEntity(es[0]), true
	}
	return "", false
}

// Unlock implements Unlocker.
func (k *SecretKeys) Unlock(ctx context.Context, keyFile []byte) (*Secrets, error) {
	return DecryptWithSecretKey(keyFile, k)
}

// DecryptWithSecretKey opens a key file encrypted to one of the GPG keys k
// holds. It returns ErrNotRecipient when the key file is encrypted to other
// keys, ErrWrongKeyPassphrase when the keys' passphrase is wrong.
func DecryptWithSecretKey(msg []byte, k *SecretKeys) (*Secrets, error) {
	if b, ok := dearmor(msg); ok {
		msg = b
	}
	info, err := ParseKeyFile(msg)
	if err != nil {
		return nil, err
	}
	if len(info.Recipients) == 0 {
		return nil, fmt.Errorf("%w: it is protected by a passphrase", ErrNotRecipient)
	}
	cfg := &packet.Config{}
	var keys []openpgp.Key
	for _, r := range info.Recipients {
		for _, e := range k.ring.EntitiesById(r.KeyID) {
			keys = append(keys, e.DecryptionKeys(r.KeyID, time.Time{}, cfg)...)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: it is encrypted to %s", ErrNotRecipient, info)
	}
	if err := k.unlockKeys(keys); err != nil {
		return nil, err
	}
	md, err := openpgp.ReadMessage(bytes.NewReader(msg), k.ring, nil, cfg)
	if err != nil {
		if errors.Is(err, pgperrors.ErrKeyIncorrect) {
			return nil, fmt.Errorf("crypto: key file does not decrypt with %s: %w", describeEntity(keys[0].Entity), ErrUnauthenticated)
		}
		return nil, fmt.Errorf("crypto: key file: %w", err)
	}
	return readPlaintext(md)
}

// unlockKeys makes one of keys usable, decrypting its secret half with
// the passphrase (asked once) if need be.
func (k *SecretKeys) unlockKeys(keys []openpgp.Key) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var missing []string
	var protected []openpgp.Key
	for _, key := range keys {
		pk := key.PrivateKey
		id := fmt.Sprintf("%016X", key.PublicKey.KeyId)
		switch {
		case pk == nil:
			missing = append(missing, "the secret of subkey "+id+" is not in the file")
		case pk.Dummy():
			missing = append(missing, "the secret of subkey "+id+" is on a smartcard or was not exported (use --gpg-agent)")
		case !pk.Encrypted:
			return nil
		default:
			protected = append(protected, key)
		}
	}
	if len(protected) == 0 {
		return fmt.Errorf("crypto: cannot use %s: %s", describeEntity(keys[0].Entity), strings.Join(missing, "; "))
	}
	if k.failed != nil {
		return k.failed
	}
	key := protected[0]
	if k.passphrase == nil {
		return fmt.Errorf("crypto: %s is protected by a passphrase: %w", describeEntity(key.Entity), ErrWrongKeyPassphrase)
	}
	if k.pass == nil {
		pass, err := k.passphrase()
		if err != nil {
			return err
		}
		k.pass = pass
	}
	if err := key.PrivateKey.Decrypt(k.pass); err != nil {
		k.failed = fmt.Errorf("%w %s", ErrWrongKeyPassphrase, describeEntity(key.Entity))
		return k.failed
	}
	return nil
}
