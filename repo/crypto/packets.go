package crypto

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeyFileInfo is what the OpenPGP packets in front of a key file's encrypted
// data tell without decrypting anything: how the session key is protected
// (FORMAT.md section 4).
type KeyFileInfo struct {
	// Passphrases are the symmetric-key encrypted session key packets (SKESK).
	Passphrases []PassphraseInfo
	// Recipients are the public-key encrypted session key packets (PKESK).
	Recipients []RecipientInfo
	// SEIPD is the version of the encrypted data packet: 1 (what gpg 2.2
	// reads) or 2; 0 for the older AEAD packet (tag 20).
	SEIPD int
}

// PassphraseInfo describes one SKESK packet.
type PassphraseInfo struct {
	Version int
	// S2K is the passphrase stretching: "simple", "salted", "iterated",
	// "argon2" or "type N".
	S2K string
	// Argon2MemoryExp is the argon2 memory exponent (2^m KiB); 0 for other S2Ks.
	Argon2MemoryExp uint8
	// Argon2Passes is the argon2 pass count; 0 for other S2Ks.
	Argon2Passes uint8
}

// RecipientInfo describes one PKESK packet.
type RecipientInfo struct {
	Version int
	// KeyID is the 64-bit ID of the (sub)key the session key is encrypted
	// to; 0 for a hidden recipient (gpg --throw-keyids).
	KeyID uint64
	// Fingerprint is the recipient key's fingerprint (v6 packets only).
	Fingerprint []byte
	// Algorithm is the OpenPGP public-key algorithm number.
	Algorithm uint8
}

// KeyIDString returns the key ID as gpg prints it (16 upper-case hex digits).
func (r RecipientInfo) KeyIDString() string {
	if len(r.Fingerprint) > 0 {
		return strings.ToUpper(hex.EncodeToString(r.Fingerprint))
	}
	return fmt.Sprintf("%016X", r.KeyID)
}

// String describes the protection in one line, e.g. "passphrase (argon2)" or
// "GPG key 0x1234567890ABCDEF".
func (i *KeyFileInfo) String() string {
	var parts []string
	for _, p := range i.Passphrases {
		parts = append(parts, "passphrase ("+p.S2K+" S2K)")
	}
	for _, r := range i.Recipients {
		parts = append(parts, "GPG key 0x"+r.KeyIDString())
	}
	return strings.Join(parts, ", ")
}

// maxSKESK bounds the passphrase packets a key file may hold, so that a
// hostile key file cannot make one passphrase attempt run many S2Ks.
const maxSKESK = 8

// maxPKESK bounds the recipient packets a key file may hold.
const maxPKESK = 64

// Packet tags (RFC 9580 section 5).
const (
	tagPKESK  = 1
	tagSKESK  = 3
	tagSED    = 9
	tagMarker = 10
	tagSEIPD  = 18
	tagAEAD   = 20
	tagPadded = 21
)

// ParseKeyFile reads the packets in front of a key file's encrypted data.
// It decrypts nothing and never allocates more than the input. A key file
// must hold at least one SKESK or PKESK followed by integrity-protected
// encrypted data. Armored input is accepted.
func ParseKeyFile(msg []byte) (*KeyFileInfo, error) {
	if len(msg) > MaxKeyFileSize {
		return nil, fmt.Errorf("crypto: key file of %d bytes is too large", len(msg))
	}
	if b, ok := dearmor(msg); ok {
		msg = b
	}
	info := &KeyFileInfo{}
	for len(msg) > 0 {
		tag, body, rest, partial, err := nextPacket(msg)
		if err != nil {
			return nil, fmt.Errorf("crypto: key file is not an OpenPGP message: %w", err)
		}
		msg = rest
		switch tag {
		case tagSKESK:
			if partial {
				return nil, errors.New("crypto: key file: partial length on a session key packet")
			}
			if len(info.Passphrases) == maxSKESK {
				return nil, fmt.Errorf("crypto: key file has more than %d passphrase packets", maxSKESK)
			}
			p, err := parseSKESK(body)
			if err != nil {
				return nil, err
			}
			info.Passphrases = append(info.Passphrases, p)
		case tagPKESK:
			if partial {
				return nil, errors.New("crypto: key file: partial length on a session key packet")
			}
			if len(info.Recipients) == maxPKESK {
				return nil, fmt.Errorf("crypto: key file has more than %d recipient packets", maxPKESK)
			}
			r, err := parsePKESK(body)
			if err != nil {
				return nil, err
			}
			info.Recipients = append(info.Recipients, r)
		case tagMarker, tagPadded:
		case tagSEIPD, tagAEAD:
			if len(info.Passphrases)+len(info.Recipients) == 0 {
				return nil, errors.New("crypto: key file: encrypted data without a session key packet")
			}
			if tag == tagSEIPD {
				if len(body) == 0 {
					return nil, errors.New("crypto: key file: empty encrypted data packet")
				}
				info.SEIPD = int(body[0])
			}
			return info, nil
		case tagSED:
			return nil, errors.New("crypto: key file: encrypted data is not integrity protected")
		default:
			return nil, fmt.Errorf("crypto: key file: unexpected OpenPGP packet (tag %d) before the encrypted data", tag)
		}
	}
	return nil, errors.New("crypto: key file: no encrypted data")
}

// nextPacket splits the first packet off msg. For a packet with a partial
// body length, body is its first part and rest is empty: only encrypted data
// packets, which end the walk, may use one.
func nextPacket(msg []byte) (tag int, body, rest []byte, partial bool, err error) {
	if len(msg) < 2 || msg[0]&0x80 == 0 {
		return 0, nil, nil, false, errors.New("bad packet header")
	}
	var n, hlen int
	if msg[0]&0x40 != 0 { // new format
		tag = int(msg[0] & 0x3f)
		l := int(msg[1])
		switch {
		case l < 192:
			n, hlen = l, 2
		case l < 224:
			if len(msg) < 3 {
				return 0, nil, nil, false, errors.New("short packet header")
			}
			n, hlen = (l-192)<<8+int(msg[2])+192, 3
		case l == 255:
			if len(msg) < 6 {
				return 0, nil, nil, false, errors.New("short packet header")
			}
			n, hlen = int(binary.BigEndian.Uint32(msg[2:6])), 6
		default:
			n, hlen, partial = 1<<(l&0x1f), 2, true
		}
	} else { // old format
		tag = int(msg[0]>>2) & 0xf
		switch msg[0] & 3 {
		case 0:
			n, hlen = int(msg[1]), 2
		case 1:
			if len(msg) < 3 {
				return 0, nil, nil, false, errors.New("short packet header")
			}
			n, hlen = int(binary.BigEndian.Uint16(msg[1:3])), 3
		case 2:
			if len(msg) < 5 {
				return 0, nil, nil, false, errors.New("short packet header")
			}
			n, hlen = int(binary.BigEndian.Uint32(msg[1:5])), 5
		case 3:
			n, hlen, partial = len(msg)-1, 1, true
		}
	}
	if n < 0 || n > len(msg)-hlen {
		if partial {
			return tag, msg[hlen:], nil, true, nil
		}
		return 0, nil, nil, false, fmt.Errorf("packet of %d bytes runs past the end", n)
	}
	if partial {
		return tag, msg[hlen : hlen+n], nil, true, nil
	}
	return tag, msg[hlen : hlen+n], msg[hlen+n:], false, nil
}

func parseSKESK(b []byte) (PassphraseInfo, error) {
	if len(b) == 0 {
		return PassphraseInfo{}, errors.New("crypto: key file: empty passphrase packet")
	}
	p := PassphraseInfo{Version: int(b[0])}
	var off int
	switch b[0] {
	case 4: // version, cipher, s2k
		off = 2
	case 5: // version, cipher, aead mode, s2k
		off = 3
	case 6: // version, count, cipher, aead mode, s2k length, s2k
		off = 5
	default:
		return p, fmt.Errorf("crypto: key file: passphrase packet version %d", b[0])
	}
	if off >= len(b) {
		return p, errors.New("crypto: key file: short passphrase packet")
	}
	spec := b[off:]
	switch spec[0] {
	case 0:
		p.S2K = "simple"
	case 1:
		p.S2K = "salted"
	case 3:
		p.S2K = "iterated"
	case 4:
		p.S2K = "argon2"
		// type, salt[16], passes, parallelism, memory exponent
		if len(spec) < 20 {
			return p, errors.New("crypto: key file: short argon2 parameters")
		}
		p.Argon2Passes, p.Argon2MemoryExp = spec[17], spec[19]
	default:
		p.S2K = fmt.Sprintf("type %d", spec[0])
	}
	return p, nil
}

func parsePKESK(b []byte) (RecipientInfo, error) {
	if len(b) == 0 {
		return RecipientInfo{}, errors.New("crypto: key file: empty recipient packet")
	}
	r := RecipientInfo{Version: int(b[0])}
	switch b[0] {
	case 3: // version, key ID, algorithm
		if len(b) < 10 {
			return r, errors.New("crypto: key file: short recipient packet")
		}
		r.KeyID = binary.BigEndian.Uint64(b[1:9])
		r.Algorithm = b[9]
	case 6: // version, length, key version || fingerprint, algorithm
		if len(b) < 2 || 2+int(b[1]) >= len(b) {
			return r, errors.New("crypto: key file: short recipient packet")
		}
		if n := int(b[1]); n > 1 {
			r.Fingerprint = append([]byte(nil), b[3:2+n]...)
			if len(r.Fingerprint) >= 8 {
				r.KeyID = binary.BigEndian.Uint64(r.Fingerprint[:8])
			}
		}
		r.Algorithm = b[2+int(b[1])]
	default:
		return r, fmt.Errorf("crypto: key file: recipient packet version %d", b[0])
	}
	return r, nil
}

// checkS2K refuses passphrase messages whose argon2 parameters would cost
// more memory than any key hoard writes could justify: every SKESK packet
// is checked, and there may be at most maxSKESK of them.
func checkS2K(msg []byte) error {
	info, err := ParseKeyFile(msg)
	if err != nil {
		return err
	}
	for _, p := range info.Passphrases {
		if p.S2K != "argon2" {
			continue
		}
		if p.Argon2MemoryExp > maxArgon2MemoryExp {
			return fmt.Errorf("crypto: key file asks for 2^%d KiB of argon2 memory; refusing", p.Argon2MemoryExp)
		}
		// Time is passes times memory: 255 passes over 1 GiB would take
		// some 20 minutes for one passphrase attempt.
		if p.Argon2Passes > maxArgon2Passes || uint64(p.Argon2Passes)<<p.Argon2MemoryExp > maxArgon2Work {
			return fmt.Errorf("crypto: key file asks for %d argon2 passes over 2^%d KiB (at most %d passes and %d GiB passed over in all); refusing",
				p.Argon2Passes, p.Argon2MemoryExp, maxArgon2Passes, maxArgon2Work>>20)
		}
	}
	return nil
}
