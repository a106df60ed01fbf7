package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
)

// Known data keys: each client pins the data key of every repository it
// opens, the first time, as ssh pins host keys (docs/gpg.md, FORMAT.md
// 4.1). The file is text, one repository a line:
//
//	<repository ID> <data key fingerprint> [signed] [key=<key file name>]
//
// "signed" means this machine has opened a key file of the repository
// signed by that data key: from then on unsigned key files are refused.
// "key=" names the key file this machine opened last: it is tried first,
// so that a key file someone planted later for the same passphrase or GPG
// key (with a snapshot key of its own) is never used instead.

// knownKey is one line of the known keys file.
type knownKey struct {
	fingerprint string
	signed      bool
	keyFile     string // the key file opened last
}

// knownKeysPath is $HOARD_KNOWN_KEYS, else known_keys in hoard's folder of
// the user's config directory (~/.config/hoard/known_keys).
func knownKeysPath() (string, error) {
	if p := os.Getenv("HOARD_KNOWN_KEYS"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("known keys: %w (set HOARD_KNOWN_KEYS)", err)
	}
	return filepath.Join(dir, "hoard", "known_keys"), nil
}

// readKnownKeys reads the known keys file; a missing file is empty.
func readKnownKeys(path string) (map[string]knownKey, error) {
	out := map[string]knownKey{}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("known keys: %w", err)
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		fpr, err := crypto.ParseFingerprint(safeIndex(f, 1))
		k := knownKey{fingerprint: fpr}
		ok := len(f) >= 2 && len(f) <= 4 && len(f[0]) == 64 && err == nil
		for i := 2; ok && i < len(f); i++ {
			switch name, isKey := strings.CutPrefix(f[i], "key="); {
			case f[i] == "signed" && !k.signed:
				k.signed = true
			case isKey && k.keyFile == "" && len(name) == 64 && strings.Trim(name, "0123456789abcdef") == "":
				k.keyFile = name
			default:
				ok = false
			}
		}
		if !ok {
			return nil, fmt.Errorf("known keys: %s line %d: want \"REPOSITORY-ID FINGERPRINT [signed] [key=KEY-FILE]\"", path, n)
		}
		out[f[0]] = k
	}
	return out, s.Err()
}

func safeIndex(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

// writeKnownKey records (or updates) one repository's line, atomically.
func writeKnownKey(path, repoID string, k knownKey) error {
	known, err := readKnownKeys(path)
	if err != nil {
		return err
	}
	known[repoID] = k
	var buf bytes.Buffer
	buf.WriteString("# hoard: the data key of each repository this machine opened (hoard key list shows them)\n")
	ids := make([]string, 0, len(known))
	for id := range known {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(&buf, "%s %s", id, known[id].fingerprint)
		if known[id].signed {
			buf.WriteString(" signed")
		}
		if known[id].keyFile != "" {
			buf.WriteString(" key=" + known[id].keyFile)
		}
		buf.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("known keys: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".known_keys-*")
	if err != nil {
		return fmt.Errorf("known keys: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("known keys: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("known keys: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("known keys: %w", err)
	}
	return nil
}

// pinned returns what Open checks key files against for repository
// repoID: the --data-key-fingerprint, else the key pinned on this machine;
// and the pin itself, kept in pin for pinDataKey.
func (g *globals) pinned(pin *knownKey, isPinned *bool) func(string) (repo.Pin, error) {
	return func(repoID string) (repo.Pin, error) {
		path, err := knownKeysPath()
		if err != nil {
			return repo.Pin{}, err
		}
		known, err := readKnownKeys(path)
		if err != nil {
			return repo.Pin{}, err
		}
		*pin, *isPinned = known[repoID]
		want := pin.fingerprint
		if g.dataKeyFingerprint != "" {
			f, err := crypto.ParseFingerprint(g.dataKeyFingerprint)
			if err != nil {
				return repo.Pin{}, usagef("--data-key-fingerprint: %v", err)
			}
			if *isPinned && pin.fingerprint != f {
				return repo.Pin{}, fmt.Errorf("%w: --data-key-fingerprint %s differs from %s, pinned for repository %s in %s; "+
					"remove that line if the repository really has a new data key", repo.ErrUntrusted, f, pin.fingerprint, repoID[:10], path)
			}
			want = f
		}
		return repo.Pin{Fingerprint: want, RequireSigned: *isPinned && pin.signed, KeyFile: pin.keyFile}, nil
	}
}

// pinDataKey records the data key of an opened repository (first use) or
// that its key files are signed now. The first pin is said on stderr.
func (g *globals) pinDataKey(r *repo.Repository, pin knownKey, pinned bool) error {
	k := knownKey{fingerprint: r.DataKeyFingerprint(), signed: pin.signed || r.KeySigned(), keyFile: r.KeyName()}
	if pinned && k == pin {
		return nil
	}
	path, err := knownKeysPath()
	if err != nil {
		return err
	}
	if err := writeKnownKey(path, r.Config().ID, k); err != nil {
		return err
	}
	if !pinned {
		g.log.Info("pinned the repository's data key (first use on this machine)", "repository", r.Config().ID[:10],
			"fingerprint", k.fingerprint, "file", path)
	}
	return nil
}
