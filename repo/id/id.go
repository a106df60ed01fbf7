// Package id is the 32-byte identifier shared by blobs, packs, index files
// and snapshots: a value type with no behaviour beyond parsing and printing.
package id

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// ID identifies a blob (keyed hash of its plaintext) or a repository file
// (SHA-256 of its bytes).
type ID [32]byte

// ErrInvalid is returned when a string is not a 64-character hex ID.
var ErrInvalid = errors.New("id: invalid ID")

// Hash returns the SHA-256 of data as an ID.
func Hash(data []byte) ID { return sha256.Sum256(data) }

// Parse decodes a 64-character hex string.
func Parse(s string) (ID, error) {
	var out ID
	if len(s) != 64 {
		return out, fmt.Errorf("%w: %q", ErrInvalid, s)
	}
	if _, err := hex.Decode(out[:], []byte(s)); err != nil {
		return out, fmt.Errorf("%w: %q", ErrInvalid, s)
	}
	return out, nil
}

// String returns the lowercase hex form.
func (i ID) String() string { return hex.EncodeToString(i[:]) }

// Str returns the short (8-character) form used in tables.
func (i ID) Str() string { return hex.EncodeToString(i[:4]) }

// IsNull reports whether i is all zeroes.
func (i ID) IsNull() bool { return i == ID{} }

// Compare orders IDs bytewise: -1, 0 or +1.
func (i ID) Compare(o ID) int {
	for k := range i {
		if i[k] != o[k] {
			if i[k] < o[k] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// MarshalText implements encoding.TextMarshaler.
func (i ID) MarshalText() ([]byte, error) { return []byte(i.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (i *ID) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*i = v
	return nil
}
