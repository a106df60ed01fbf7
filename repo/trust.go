package repo

import (
	"encoding/base64"
	"fmt"

	"github.com/hoard-backup/hoard/repo/crypto"
)

// Pin is what a client trusts of a repository (FORMAT.md 4.1): its data
// key, whether its key files must be signed, and the key file it opened
// last.
type Pin struct {
	Fingerprint   string
	RequireSigned bool
	KeyFile       string
}

// UntrustedError names a key file (or the config) that a client refuses
// because a write-only holder could have made it (FORMAT.md 4.1). It is
// ErrUntrusted to errors.Is.
type UntrustedError struct {
	File   string // "keys/<name>" or "config"
	Reason string
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("repo: refusing %s: %s", e.File, e.Reason)
}

// Is makes the error ErrUntrusted.
func (e *UntrustedError) Is(target error) bool { return target == ErrUntrusted }

// checkKeyTrust applies the pin (want), the signed requirement and the
// config's fingerprint to a key file that opened.
func checkKeyTrust(name string, k *crypto.Keys, oc *outerConfig, want string, requireSigned bool) *UntrustedError {
	fpr := k.Fingerprint()
	switch {
	case want != "" && fpr != want:
		return &UntrustedError{File: "keys/" + name, Reason: fmt.Sprintf("it holds data key %s, not the trusted %s "+
			"(pinned on this machine, or given with --data-key-fingerprint): a write-only key holder may have planted it", fpr, want)}
	case requireSigned && !k.Signed():
		return &UntrustedError{File: "keys/" + name, Reason: "it is not signed by the data key, and this machine has seen the repository's key files signed"}
	case oc.Fingerprint != "" && oc.Fingerprint != fpr:
		return &UntrustedError{File: "keys/" + name, Reason: fmt.Sprintf("it holds data key %s, but the config names %s", fpr, oc.Fingerprint)}
	}
	return nil
}

// checkConfigSignature verifies the config's signature, if any, under the
// data key of the key file in use, and reports whether there was one.
func checkConfigSignature(oc *outerConfig, k *crypto.Keys) (bool, error) {
	if oc.Signature == "" && oc.Fingerprint == "" {
		return false, nil
	}
	sig, err := base64.StdEncoding.DecodeString(oc.Signature)
	if err != nil || oc.Signature == "" {
		return false, &UntrustedError{File: "config", Reason: "its signature is missing or not base64"}
	}
	if err := k.Verify(crypto.ConfigStatement(oc.ID, oc.Version, oc.Fingerprint, oc.Body), sig); err != nil {
		return false, &UntrustedError{File: "config", Reason: fmt.Sprintf("its signature does not verify under data key %s: %v", k.Fingerprint(), err)}
	}
	return true, nil
}

// Untrusted returns the key files Open refused and passed over (with
// Options.SkipUntrusted).
func (r *Repository) Untrusted() []*UntrustedError { return r.untrusted }

// DataKeyFingerprint returns the data key's fingerprint (40 upper-case hex
// digits): what clients pin.
func (r *Repository) DataKeyFingerprint() string { return r.keys.Fingerprint() }

// KeySigned reports whether the key file in use is signed by the data key.
func (r *Repository) KeySigned() bool { return r.keys.Signed() }

// ConfigSigned reports whether the config carries a signature by the data
// key (verified by Open).
func (r *Repository) ConfigSigned() bool { return r.configSigned }

// Writer returns the writer ID of the key in use, which its snapshots
// carry, or "" when it has no snapshot key (version 1).
func (r *Repository) Writer() string { return r.keys.Writer() }

// SnapshotStatement encodes the fields of a snapshot that its MAC covers
// (FORMAT.md 9.1).
func SnapshotStatement(fields ...[]byte) []byte { return crypto.SnapshotStatement(fields...) }

// MACSnapshot returns the MAC of a snapshot statement under the snapshot
// key of the key in use, and that snapshot key wrapped to the data key so
// that full keys can check it too; nil, nil, nil when the key has no
// snapshot key.
func (r *Repository) MACSnapshot(statement []byte) (mac, wrapped []byte, err error) {
	return r.keys.MACSnapshot(statement)
}

// CheckSnapshot says who wrote a snapshot with writer ID writer, wrapped
// snapshot key wrapped and MAC mac over statement, as far as the key in
// use can tell.
func (r *Repository) CheckSnapshot(writer string, wrapped, statement, mac []byte) Trust {
	return r.keys.CheckSnapshot(writer, wrapped, statement, mac)
}
