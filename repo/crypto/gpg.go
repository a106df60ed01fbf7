package crypto

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// GPGCommand unlocks key files with the gpg program: `gpg --batch
// --decrypt` reads the key file on standard input and asks gpg-agent for the
// secret key, so keys on a smartcard, or whose passphrase the agent holds or
// asks for through pinentry, work. gpg uses the user's GNUPGHOME. Safe for
// concurrent use.
type GPGCommand struct {
	// Path is the gpg program; "" means "gpg" found on $PATH.
	Path string
	// Env is gpg's environment; nil means hoard's own.
	Env []string

	once  sync.Once
	names map[uint64]string // key ID -> "FPR (uid)", from gpg --list-keys
}

func (g *GPGCommand) path() string {
	if g.Path == "" {
		return "gpg"
	}
	return g.Path
}

func (g *GPGCommand) String() string { return "gpg-agent (" + g.path() + " --decrypt)" }

// Unlock implements Unlocker.
func (g *GPGCommand) Unlock(ctx context.Context, keyFile []byte) (*Secrets, error) {
	info, err := ParseKeyFile(keyFile)
	if err != nil {
		return nil, err
	}
	if len(info.Recipients) == 0 {
		// gpg would ask for the passphrase through pinentry: not the agent's job.
		return nil, fmt.Errorf("%w: it is protected by a passphrase", ErrNotRecipient)
	}
	// Not --quiet: it hides gpg's "public key decryption failed: REASON"
	// line and the ERROR pkdecrypt_failed status that goes with it, which
	// say why a key gpg holds could not be used.
	cmd := exec.CommandContext(ctx, g.path(), "--batch", "--status-fd", "2", "--decrypt")
	cmd.Env = g.Env
	cmd.Stdin = bytes.NewReader(keyFile)
	stdout := &limitedBuffer{max: MaxKeyFileSize}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	runErr := cmd.Run()
	var encTo, noSecKey int
	var badPass, okay, pkFailed bool
	var msgs []string
	pkReason := ""
	for _, line := range strings.Split(stderr.String(), "\n") {
		st, ok := strings.CutPrefix(line, "[GNUPG:] ")
		if !ok {
			l := strings.TrimSpace(line)
			switch {
			case l == "" || !strings.HasPrefix(line, "gpg: ") || strings.HasPrefix(l, "gpg: encrypted with "):
				// continuation lines and the recipients gpg names
			default:
				msgs = append(msgs, l)
				if r, ok := strings.CutPrefix(l, "gpg: public key decryption failed: "); ok {
					pkReason = r
				}
			}
			continue
		}
		switch f := strings.Fields(st); {
		case len(f) == 0:
		case f[0] == "ENC_TO":
			encTo++
		case f[0] == "NO_SECKEY":
			noSecKey++
		case f[0] == "BAD_PASSPHRASE":
			badPass = true
		case f[0] == "DECRYPTION_OKAY":
			okay = true
		case f[0] == "ERROR" && len(f) > 1 && f[1] == "pkdecrypt_failed":
			pkFailed = true // gpg holds a key but could not use it
		}
	}
	gpgSays := strings.Join(msgs, "; ")
	if runErr != nil || !okay || stdout.over {
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(runErr, exec.ErrNotFound):
			return nil, fmt.Errorf("crypto: --gpg-agent needs the gpg program: %w", runErr)
		case badPass:
			return nil, fmt.Errorf("%w (gpg: %s)", ErrWrongKeyPassphrase, gpgSays)
		case pkFailed && pkReason != "":
			// gpg holds a secret key for the file but could not use it:
			// no pinentry, no passphrase, a bad one, a refused PIN.
			return nil, fmt.Errorf("%w for %s: gpg says %q", ErrGPGKeyUnusable, info, pkReason)
		case pkFailed:
			return nil, fmt.Errorf("%w for %s: gpg says %q", ErrGPGKeyUnusable, info, gpgSays)
		case encTo > 0 && (noSecKey >= encTo || !pkFailed):
			// gpg 2.2 says NO_SECKEY only for keys in its keyring; for
			// others, just DECRYPTION_FAILED.
			return nil, fmt.Errorf("%w: gpg has no secret key for %s", ErrNotRecipient, info)
		case stdout.over:
			return nil, fmt.Errorf("crypto: gpg --decrypt wrote more than %d bytes", MaxKeyFileSize)
		}
		if runErr == nil {
			runErr = errors.New("no DECRYPTION_OKAY status")
		}
		return nil, fmt.Errorf("crypto: gpg --decrypt failed (%v): %s", runErr, gpgSays)
	}
	return DecodeSecrets(stdout.Bytes())
}

// DescribeKey implements KeyDescriber with the keys in the user's gpg
// keyring (`gpg --list-keys`), listed once.
func (g *GPGCommand) DescribeKey(ctx context.Context, keyID uint64) (string, bool) {
	g.once.Do(func() {
		g.names = map[uint64]string{}
		cmd := exec.CommandContext(ctx, g.path(), "--batch", "--with-colons", "--fixed-list-mode", "--list-keys")
		cmd.Env = g.Env
		out, err := cmd.Output()
		if err != nil {
			return
		}
		parseColons(out, g.names)
	})
	n, ok := g.names[keyID]
	return n, ok
}

// parseColons reads `gpg --with-colons --list-keys` output into key ID ->
// "FPR (uid)" for primary keys and subkeys.
func parseColons(out []byte, names map[uint64]string) {
	type key struct {
		fpr, uid string
		ids      []uint64
	}
	var cur *key
	flush := func() {
		if cur == nil {
			return
		}
		n := cur.fpr
		if cur.uid != "" {
			n += " (" + cur.uid + ")"
		}
		for _, id := range cur.ids {
			names[id] = n
		}
	}
	last := ""
	s := bufio.NewScanner(bytes.NewReader(out))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		f := strings.Split(s.Text(), ":")
		if len(f) < 10 {
			continue
		}
		switch f[0] {
		case "pub":
			flush()
			cur = &key{}
		case "fpr":
			if cur == nil {
				break
			}
			if last == "pub" {
				cur.fpr = f[9]
			}
			if len(f[9]) >= 16 {
				if id, err := strconv.ParseUint(f[9][len(f[9])-16:], 16, 64); err == nil {
					cur.ids = append(cur.ids, id)
				}
			}
		case "uid":
			if cur != nil && cur.uid == "" {
				cur.uid = f[9]
			}
		}
		last = f[0]
	}
	flush()
}

// limitedBuffer is a bytes.Buffer that refuses to grow past max.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		b.over = true
		return 0, errors.New("output too large")
	}
	return b.Buffer.Write(p)
}
