package repo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
)

// Errors of key management.
var (
	ErrKeyNotFound = errors.New("repo: no such key file")
	ErrKeyInUse    = errors.New("repo: the key file is the one in use")
	ErrLastFullKey = errors.New("repo: the key file is the last one known to read content")
)

// KeyInfo describes one key file.
type KeyInfo struct {
	Name  string
	InUse bool // the key file that opened the repository
	// Protection is what the key file's packets say: passphrase (with its
	// S2K) or GPG recipients (key IDs). Nil when they do not parse.
	Protection *crypto.KeyFileInfo
	// Opened means the repository's unlocker opened the key file, so that
	// Kind, Created, Host and Username are known. A key file encrypted to
	// someone else's GPG key, or to another passphrase, stays closed.
	Opened   bool
	Kind     crypto.Kind
	Created  time.Time
	Host     string
	Username string
	// Fingerprint is the data key the opened key file holds; Signed says
	// whether it carries a valid signature by that key, Trusted whether
	// its data key is the one of the key in use (which Open checked
	// against the pin). Err is set for a key file whose parts do not
	// belong together (ErrUntrusted).
	Fingerprint      string
	Signed, Trusted  bool
	SnapshotWriterID string // the writer ID of its snapshot key, if any
	// Err says why the key file is unusable: damaged, of another
	// repository, or untrusted.
	Err error
}

// KeyNames returns the names of all key files, sorted.
func (r *Repository) KeyNames(ctx context.Context) ([]string, error) {
	var names []string
	err := r.be.List(ctx, backends.KeyFile, func(fi backends.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("repo: list keys: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// ListKeys describes every key file, sorted by name. It tries the unlocker
// that opened the repository on each (for passphrase key files, that costs
// one passphrase stretching each).
func (r *Repository) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	names, err := r.KeyNames(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, 0, len(names))
	for _, name := range names {
		ki := KeyInfo{Name: name, InUse: name == r.keyName}
		raw, err := loadKeyFile(ctx, r.be, name)
		if err != nil {
			ki.Err = err
			out = append(out, ki)
			continue
		}
		if ki.Protection, err = crypto.ParseKeyFile(raw); err != nil {
			ki.Err = err
			out = append(out, ki)
			continue
		}
		var sec *crypto.Secrets
		switch {
		case ki.InUse:
			sec = r.keys.Secrets
		case r.unlocker != nil:
			sec, err = r.unlocker.Unlock(ctx, raw)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil && !crypto.IsNotForUnlocker(err) {
				ki.Err = err
			}
		}
		if sec != nil {
			if sec.Repository != r.cfg.ID {
				ki.Err = fmt.Errorf("belongs to another repository (%s)", sec.Repository[:8])
			} else {
				ki.Opened, ki.Kind, ki.Created, ki.Host, ki.Username = true, sec.Kind, sec.Created, sec.Host, sec.Username
				k, err := crypto.NewKeys(sec)
				if err != nil {
					ki.Err = &UntrustedError{File: "keys/" + name, Reason: err.Error()}
				} else {
					ki.Fingerprint, ki.Signed, ki.SnapshotWriterID = k.Fingerprint(), k.Signed(), k.Writer()
					ki.Trusted = k.Fingerprint() == r.keys.Fingerprint()
					if !ki.Trusted {
						ki.Err = &UntrustedError{File: "keys/" + name, Reason: fmt.Sprintf("it holds data key %s, not the trusted %s", k.Fingerprint(), r.keys.Fingerprint())}
					}
				}
			}
		}
		out = append(out, ki)
	}
	return out, nil
}

// AddKeyOptions say what key file AddKey writes.
type AddKeyOptions struct {
	// Kind is crypto.Full or crypto.WriteOnly. A write-only key file holds
	// no data secret key: its holder can back up but not read content.
	Kind crypto.Kind
	// Passphrase protects the key file, stretched with S2K; or else
	// Recipients are the GPG public keys it is encrypted to.
	Passphrase []byte
	S2K        crypto.S2K
	Recipients []*crypto.Recipient
	// Host and Username are recorded in the key file.
	Host, Username string
}

// AddKey writes a new key file and returns its name. A full key needs a
// full key in use (else ErrWriteOnly).
//
// The new key file gets a snapshot key of its own, and is signed by the
// data key when the key in use can sign (a full key; this is how a
// version 1 repository's key files are upgraded, FORMAT.md 4.1); a
// write-only key copies its own key file's signature, if any.
func (r *Repository) AddKey(ctx context.Context, o AddKeyOptions) (string, error) {
	return r.addKey(ctx, o, false)
}

// addKey is AddKey; sameSnapshotKey keeps the snapshot key of the key in
// use (a new passphrase for the same key file).
func (r *Repository) addKey(ctx context.Context, o AddKeyOptions, sameSnapshotKey bool) (string, error) {
	var sec *crypto.Secrets
	switch o.Kind {
	case crypto.Full:
		if !r.CanRead() {
			return "", fmt.Errorf("repo: a full key can only be added with a full key: %w", ErrWriteOnly)
		}
		sec = r.keys.Secrets.NewCopy()
		sec.Kind = crypto.Full
	case crypto.WriteOnly:
		sec = r.keys.Secrets.WriteOnlyCopy()
	default:
		return "", fmt.Errorf("repo: unknown key kind %q", o.Kind)
	}
	if sameSnapshotKey && r.keys.Secrets.SnapshotKey != nil {
		sec.SnapshotKey = r.keys.Secrets.SnapshotKey
	}
	sec.Fingerprint = r.keys.Fingerprint()
	if sec.Signature == nil && r.CanRead() {
		sig, err := r.keys.Sign(sec.KeyStatement(), r.now())
		if err != nil {
			return "", err
		}
		sec.Signature = sig
	}
	sec.Created, sec.Host, sec.Username = r.now().UTC(), o.Host, o.Username
	var (
		keyFile []byte
		err     error
	)
	switch {
	case len(o.Recipients) > 0 && len(o.Passphrase) > 0:
		return "", errors.New("repo: add key: a key file is protected by a passphrase or by GPG recipients, not both")
	case len(o.Recipients) > 0:
		keyFile, err = crypto.EncryptToRecipients(sec, o.Recipients, sec.Created)
	case len(o.Passphrase) > 0:
		keyFile, err = crypto.EncryptWithPassphrase(sec, o.Passphrase, o.S2K)
	default:
		return "", errors.New("repo: add key: empty passphrase")
	}
	if err != nil {
		return "", err
	}
	name := id.Hash(keyFile).String()
	if err := r.be.Save(ctx, backends.Handle{Type: backends.KeyFile, Name: name}, backends.NewByteReader(keyFile)); err != nil {
		return "", fmt.Errorf("repo: save key: %w", err)
	}
	return name, nil
}

// RemoveKey removes the key file name. It refuses to remove the key file
// in use unless force is set, and never removes the last key file known to
// read content (ErrLastFullKey): kinds are known of the key files the
// repository's unlocker opens (ListKeys), so a key file it cannot open is
// removed only while a full key is in use, which remains.
func (r *Repository) RemoveKey(ctx context.Context, name string, force bool) error {
	keys, err := r.ListKeys(ctx)
	if err != nil {
		return err
	}
	var target *KeyInfo
	fullLeft := 0
	for i := range keys {
		k := &keys[i]
		if k.Name == name {
			target = k
			continue
		}
		if k.Opened && k.Err == nil && k.Kind == crypto.Full {
			fullLeft++
		}
	}
	if target == nil {
		return fmt.Errorf("%w: keys/%s", ErrKeyNotFound, name)
	}
	switch {
	case target.InUse && !force:
		return fmt.Errorf("%w: keys/%s opened the repository; open it with another key to remove this one, or force", ErrKeyInUse, short(name))
	case !target.Opened && target.Err == nil && !r.CanRead():
		return fmt.Errorf("repo: cannot tell whether keys/%s can read content, since this key cannot open it; remove it with a full key: %w", short(name), ErrWriteOnly)
	case (!target.Opened || target.Kind == crypto.Full) && target.Err == nil && fullLeft == 0:
		return fmt.Errorf("%w: without keys/%s no key file known to this key could read the backups' content", ErrLastFullKey, short(name))
	}
	if err := r.be.Remove(ctx, backends.Handle{Type: backends.KeyFile, Name: name}); err != nil {
		return fmt.Errorf("repo: remove key %s: %w", short(name), err)
	}
	return nil
}

// ChangePassphrase replaces the passphrase key file in use with a new one
// of the same kind under a new passphrase: the new file is written first,
// then the old one removed. It returns the new key file's name.
func (r *Repository) ChangePassphrase(ctx context.Context, passphrase []byte, s2k crypto.S2K, host, username string) (string, error) {
	raw, err := loadKeyFile(ctx, r.be, r.keyName)
	if err != nil {
		return "", err
	}
	info, err := crypto.ParseKeyFile(raw)
	if err != nil {
		return "", fmt.Errorf("repo: key file keys/%s: %w", r.keyName, err)
	}
	if len(info.Passphrases) == 0 {
		return "", fmt.Errorf("repo: the key in use (keys/%s) is encrypted to %s, not protected by a passphrase: add a key and remove this one instead", r.keyName[:8], info)
	}
	name, err := r.addKey(ctx, AddKeyOptions{Kind: r.keys.Secrets.Kind, Passphrase: passphrase, S2K: s2k, Host: host, Username: username}, true)
	if err != nil {
		return "", err
	}
	old := r.keyName
	if err := r.be.Remove(ctx, backends.Handle{Type: backends.KeyFile, Name: old}); err != nil {
		return name, fmt.Errorf("repo: new key file keys/%s written, but the old keys/%s is still there: %w", name[:8], old[:8], err)
	}
	r.keyName = name
	return name, nil
}

// short returns the first 8 characters of a file name, for messages.
func short(name string) string {
	if len(name) > 8 {
		return name[:8]
	}
	return name
}
