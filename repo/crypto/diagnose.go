package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// ErrKeyFileDamaged marks a key file that the passphrase opens but whose
// content is cut short or altered.
var ErrKeyFileDamaged = errors.New("crypto: key file is damaged")

// diagnosePassphrase tells, after msg failed to open with passphrase,
// whether the passphrase is wrong (nil) or the file is damaged (an error
// wrapping ErrKeyFileDamaged that says how). Authenticated encryption
// alone cannot tell them apart, but the layers before it can: the
// passphrase decrypts the session key packet (v4: a valid cipher and key
// length, which a wrong passphrase gives in a few percent of cases; v5/v6:
// an AEAD tag), and the first block of SEIPD v1 data repeats two bytes
// (OpenPGP's quick check, which a wrong key passes once in 65536). A file
// that passes both and still fails its integrity check is damaged.
// go-crypto skips the quick check on purpose (a decryption oracle in
// automated settings); here it only picks the message after a failure.
func diagnosePassphrase(msg, passphrase []byte) error {
	if b, ok := dearmor(msg); ok {
		msg = b
	}
	if err := checkS2K(msg); err != nil {
		return nil // refused before any S2K; said elsewhere
	}
	rd := packet.NewReader(bytes.NewReader(msg))
	var skesks []*packet.SymmetricKeyEncrypted
	for {
		p, err := rd.Next()
		if err != nil {
			if len(skesks) > 0 {
				return fmt.Errorf("%w: it ends before its encrypted content (cut short?): %v", ErrKeyFileDamaged, err)
			}
			return nil
		}
		switch p := p.(type) {
		case *packet.SymmetricKeyEncrypted:
			skesks = append(skesks, p)
			continue
		case *packet.EncryptedKey:
			continue
		case *packet.SymmetricallyEncrypted:
			for _, ske := range skesks {
				key, cf, err := ske.Decrypt(passphrase)
				if err != nil {
					continue // not this passphrase
				}
				if p.Version != 1 {
					// SEIPD v2: a v6 SKESK's AEAD tag proved the passphrase.
					if ske.Version >= 5 {
						return fmt.Errorf("%w: the passphrase opens it, but its content fails the integrity check (altered or cut short)", ErrKeyFileDamaged)
					}
					return nil
				}
				if ok, known := quickCheck(p.Contents, cf, key); known && ok {
					return fmt.Errorf("%w: the passphrase opens it, but its content fails the integrity check (altered or cut short)", ErrKeyFileDamaged)
				}
				return nil
			}
			return nil
		default:
			return nil
		}
	}
}

// quickCheck decrypts the first block of SEIPD v1 content (OpenPGP CFB with
// a zero IV) and reports whether its last two bytes repeat as the next
// two. known is false for ciphers other than AES and for content too short
// to hold the prefix.
func quickCheck(contents io.Reader, cf packet.CipherFunction, key []byte) (ok, known bool) {
	switch cf {
	case packet.CipherAES128, packet.CipherAES192, packet.CipherAES256:
	default:
		return false, false
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return false, false
	}
	bs := block.BlockSize()
	prefix := make([]byte, bs+2)
	if _, err := io.ReadFull(contents, prefix); err != nil {
		return false, false
	}
	plain := make([]byte, bs+2)
	//lint:ignore SA1019 OpenPGP's symmetric encryption is CFB (RFC 4880 13.9): the quick check of a key file's first block needs it, and no content is read
	cipher.NewCFBDecrypter(block, make([]byte, bs)).XORKeyStream(plain[:bs], prefix[:bs])
	var x [aes.BlockSize]byte
	block.Encrypt(x[:], prefix[:bs])
	plain[bs], plain[bs+1] = prefix[bs]^x[0], prefix[bs+1]^x[1]
	return plain[bs-2] == plain[bs] && plain[bs-1] == plain[bs+1], true
}
