// Package repo is a hoard repository: Init and Open, the config, blobs in
// packs (SaveBlob, LoadBlob), sealed unpacked files (index, snapshots),
// and the checks of structure and data. It knows nothing of files or
// databases. The format is docs/FORMAT.md.
package repo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/chunk"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/index"
	"github.com/hoard-backup/hoard/repo/pack"
)

// FormatVersion is the repository format this code writes (docs/FORMAT.md):
// version 2 adds delta blobs. Version 1 repositories are read too, and
// written without deltas until Upgrade.
const FormatVersion = 2

// MinFormatVersion is the oldest repository format this code reads.
const MinFormatVersion = 1

// Sentinel errors; callers test them with errors.Is.
var (
	ErrNoRepository  = errors.New("repo: no repository at this location")
	ErrAlreadyExists = errors.New("repo: a repository already exists at this location")
	ErrWrongPassword = errors.New("repo: wrong password or no key file found")
	ErrVersion       = errors.New("repo: unsupported repository format version")
	ErrInvalidData   = errors.New("repo: damaged or invalid data")
	ErrWriteOnly     = crypto.ErrWriteOnly
	ErrBlobNotFound  = errors.New("repo: blob not in index")
	// ErrUntrusted means a key file or the config is not what the
	// repository's owner made: another data key than the one pinned or
	// given, key files that disagree, or a signature that does not verify.
	ErrUntrusted = errors.New("repo: untrusted key file or config")
)

// Config is the decoded repository config (FORMAT.md section 3).
type Config struct {
	Version     int          `json:"version"`
	ID          string       `json:"id"`
	Created     time.Time    `json:"created"`
	Chunker     chunk.Params `json:"chunker"`
	Compression string       `json:"compression"`
	PackSize    int          `json:"pack_size"`
}

type outerConfig struct {
	Hoard   string `json:"hoard"`
	Version int    `json:"version"`
	ID      string `json:"id"`
	Body    string `json:"body"`
	// Key pinning (FORMAT.md 3.1): the data key's fingerprint and a
	// signature by it; absent in configs written before.
	Fingerprint string `json:"data_key_fingerprint,omitempty"`
	Signature   string `json:"signature,omitempty"`
}

type bodyConfig struct {
	ID          string       `json:"id"`
	Created     time.Time    `json:"created"`
	Chunker     chunk.Params `json:"chunker"`
	Compression string       `json:"compression"`
	PackSize    int          `json:"pack_size"`
}

// Options configure opening or creating a repository.
type Options struct {
	// Unlocker opens key files: a passphrase, a GPG secret key, or gpg and
	// its agent. When nil, Passphrase is used.
	Unlocker crypto.Unlocker
	// Passphrase unlocks a passphrase key file (when Unlocker is nil), and
	// protects the first key file at Init (when there are no Recipients).
	Passphrase []byte
	// Workers bounds concurrent compression and encryption; 0 means GOMAXPROCS.
	Workers int
	// Uploads bounds the packs being stored at once (each holds its pack in
	// memory); 0 means 2. Remote backends with latency want more.
	Uploads int
	// Logger receives debug and progress messages; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// DataKeyFingerprint, when set, is the data key the repository must
	// have: given by the user, or pinned by an earlier open on this
	// machine. Key files with another data key are refused (ErrUntrusted);
	// when empty, every key file the unlocker opens must agree.
	DataKeyFingerprint string
	// RequireSigned refuses key files without a signature by the data key
	// (for a client that has seen this repository's key files signed).
	RequireSigned bool
	// PreferKey names a key file to try first: the one this client opened
	// last, so that a key file planted later for the same passphrase or GPG
	// key is not used instead.
	PreferKey string
	// Pinned, when set, is asked for DataKeyFingerprint, RequireSigned and
	// PreferKey once the repository's ID is known (a client's known keys).
	Pinned func(repositoryID string) (Pin, error)
	// SkipUntrusted makes Open pass over key files it refuses, listed by
	// Untrusted, instead of failing: for key list and key remove.
	SkipUntrusted bool
}

// InitOptions configure a new repository.
type InitOptions struct {
	Options
	// S2K selects the passphrase stretching of the first key file.
	S2K crypto.S2K
	// Recipients, when set, are the GPG public keys the first (full) key
	// file is encrypted to, instead of a passphrase.
	Recipients []*crypto.Recipient
	// Chunker overrides the default size profile.
	Chunker *chunk.Params
	// Polynomial, when set, replaces the random chunker polynomial. Only
	// tests that need the same cut points run after run set it.
	Polynomial chunk.Pol
	// PackSize overrides the default data pack size.
	PackSize int
	// Host and Username are recorded in the key file.
	Host, Username string
	// Version is the format version to create; 0 means FormatVersion.
	// Only tests of old repositories set it.
	Version int
}

// Repository is an open repository. Safe for concurrent use.
type Repository struct {
	be       backends.Backend
	cfg      Config
	keys     *crypto.Keys
	keyName  string
	unlocker crypto.Unlocker // what opened the key file; nil after Init
	idx      *index.Index
	log      *slog.Logger
	now      func() time.Time
	workers  int

	// untrusted are the key files Open refused and passed over (SkipUntrusted).
	untrusted    []*UntrustedError
	configSigned bool
	configBody   string // the sealed body Open authenticated; Upgrade signs no other

	zenc *zstd.Encoder
	zdec *zstd.Decoder

	packers [2]*packerPool
	// Buffers reused across blobs and packs, to keep memory flat.
	payloads  bufList        // compressed payloads
	uploadSem chan struct{}  // a slot per pack being stored
	uploads   sync.WaitGroup // packs being stored
	uploadErr error          // the first failed upload (under mu)

	packBufs   bufList   // pack buffers of stored packs
	storedBufs sync.Pool // *[]byte: stored blobs being loaded

	deltas     *deltaCodecs
	bases      *baseCache
	baseSource BaseSource // the host's own copies of bases (write-only hosts)

	mu        sync.Mutex
	saving    map[blobKey]struct{} // blobs in packers or uploaded but not yet in an index file
	unindexed []index.Pack
	indexed   map[id.ID]struct{} // index files loaded
	// indexFiles names, per index file LoadIndex added, the packs it names.
	indexFiles map[id.ID][]id.ID
	// missing holds packs found missing while loading blobs: other copies
	// are tried first from then on.
	missing map[id.ID]bool
}

type blobKey struct {
	t  pack.BlobType
	id id.ID
}

func (o *Options) fill() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Uploads <= 0 {
		o.Uploads = 2
	}
}

// Init creates a repository in an empty backend location and returns it open.
func Init(ctx context.Context, be backends.Backend, o InitOptions) (*Repository, error) {
	o.fill()
	if _, err := be.Stat(ctx, backends.Handle{Type: backends.ConfigFile}); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrAlreadyExists, be.Location())
	} else if !errors.Is(err, backends.ErrNotExist) {
		return nil, fmt.Errorf("repo: init %s: %w", be.Location(), err)
	}
	if len(o.Passphrase) == 0 && len(o.Recipients) == 0 {
		return nil, errors.New("repo: init: empty passphrase")
	}
	repoID := id.Hash(crypto.NewPackKey()).String()
	now := o.Now().UTC()
	sec, err := crypto.NewSecrets(repoID, now)
	if err != nil {
		return nil, err
	}
	sec.Host, sec.Username = o.Host, o.Username
	if o.Polynomial != 0 {
		if !o.Polynomial.Irreducible() || o.Polynomial.Deg() != 53 {
			return nil, fmt.Errorf("repo: init: polynomial %v is not irreducible of degree 53", o.Polynomial)
		}
		sec.Polynomial = o.Polynomial
		sec.Signature = nil // signed again below, over this polynomial
	}
	keys, err := crypto.NewKeys(sec)
	if err != nil {
		return nil, err
	}
	if sec.Signature == nil {
		if sec.Signature, err = keys.Sign(sec.KeyStatement(), now); err != nil {
			return nil, err
		}
	}
	body := bodyConfig{ID: repoID, Created: now, Chunker: chunk.DefaultParams(), Compression: "zstd", PackSize: 16 << 20}
	if o.Chunker != nil {
		body.Chunker = *o.Chunker
	}
	if o.PackSize > 0 {
		body.PackSize = o.PackSize
	}
	if err := body.Chunker.Validate(); err != nil {
		return nil, err
	}
	plain, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	version := FormatVersion
	if o.Version != 0 {
		if o.Version < MinFormatVersion || o.Version > FormatVersion {
			return nil, fmt.Errorf("%w: version %d", ErrVersion, o.Version)
		}
		version = o.Version
	}
	oc := outerConfig{Hoard: "repository", Version: version, ID: repoID,
		Body:        base64.StdEncoding.EncodeToString(keys.Meta.Seal(nil, plain, []byte(crypto.LabelConfig))),
		Fingerprint: keys.Fingerprint()}
	sig, err := keys.Sign(crypto.ConfigStatement(oc.ID, oc.Version, oc.Fingerprint, oc.Body), now)
	if err != nil {
		return nil, err
	}
	oc.Signature = base64.StdEncoding.EncodeToString(sig)
	outer, err := json.MarshalIndent(oc, "", "  ")
	if err != nil {
		return nil, err
	}
	var keyFile []byte
	if len(o.Recipients) > 0 {
		keyFile, err = crypto.EncryptToRecipients(sec, o.Recipients, now)
	} else {
		keyFile, err = crypto.EncryptWithPassphrase(sec, o.Passphrase, o.S2K)
	}
	if err != nil {
		return nil, err
	}
	keyName := id.Hash(keyFile).String()
	// Nothing is written before every input is checked.
	if c, ok := be.(backends.Creator); ok {
		if err := c.Create(ctx); err != nil {
			return nil, fmt.Errorf("repo: init %s: %w", be.Location(), err)
		}
	}
	// The key first: a config without a key would be a repository nobody can open.
	if err := be.Save(ctx, backends.Handle{Type: backends.KeyFile, Name: keyName}, backends.NewByteReader(keyFile)); err != nil {
		return nil, fmt.Errorf("repo: save key: %w", err)
	}
	if err := be.Save(ctx, backends.Handle{Type: backends.ConfigFile}, backends.NewByteReader(outer)); err != nil {
		return nil, fmt.Errorf("repo: save config: %w", err)
	}
	r := newRepository(be, keys, keyName, o.Options)
	r.configSigned = true
	r.configBody = oc.Body
	r.cfg = Config{Version: version, ID: repoID, Created: now, Chunker: body.Chunker, Compression: body.Compression, PackSize: body.PackSize}
	return r, nil
}

func newRepository(be backends.Backend, keys *crypto.Keys, keyName string, o Options) *Repository {
	// EncodeAll runs at most the encoder's concurrency at once: one per
	// worker, or the workers would take turns compressing. No frame
	// checksum: the seal and the keyed blob ID already cover the plaintext.
	// Each encoder keeps a history of its window plus a block, so the
	// window is what compression costs in memory: 1 MiB, the dump
	// profile's largest chunk (zstd -1 itself uses 512 KiB), rather than
	// the library's 8 MiB; larger chunks lose only matches over 1 MiB back.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(max(o.Workers, 1)),
		zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false), zstd.WithWindowSize(compressWindow))
	if err != nil {
		panic(err) // only on invalid options, which are constant here
	}
	// Decoded sizes are also checked per blob against MaxRawSize before decoding.
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxTreeSize+1<<20),
		zstd.WithDecoderMaxWindow(MaxTreeSize+1<<20))
	if err != nil {
		panic(err)
	}
	r := &Repository{be: be, keys: keys, keyName: keyName, idx: index.New(), log: o.Logger, now: o.Now,
		workers: o.Workers, zenc: enc, zdec: dec, saving: map[blobKey]struct{}{}, indexed: map[id.ID]struct{}{},
		indexFiles: map[id.ID][]id.ID{}, missing: map[id.ID]bool{},
		uploadSem: make(chan struct{}, max(o.Uploads, 1)),
		payloads:  newBufList(max(o.Workers, 1)), packBufs: newBufList(max(o.Workers, 1) + max(o.Uploads, 1)),
		deltas: newDeltaCodecs(max(o.Workers, 1)), bases: newBaseCache()}
	r.packers[pack.DataBlob] = newPackerPool(1)
	r.packers[pack.TreeBlob] = newPackerPool(0)
	return r
}

// unlocker returns the unlocker the options name.
func (o *Options) unlocker() crypto.Unlocker {
	if o.Unlocker != nil {
		return o.Unlocker
	}
	return crypto.Passphrase(o.Passphrase)
}

// unlockKeyFile loads the key file keys/name and opens it with u.
func unlockKeyFile(ctx context.Context, be backends.Backend, u crypto.Unlocker, name string) (*crypto.Secrets, error) {
	raw, err := loadKeyFile(ctx, be, name)
	if err != nil {
		return nil, err
	}
	sec, err := u.Unlock(ctx, raw)
	if err != nil && !crypto.IsNotForUnlocker(err) && !errors.Is(err, crypto.ErrWrongKeyPassphrase) &&
		!errors.Is(err, crypto.ErrGPGKeyUnusable) && ctx.Err() == nil {
		err = fmt.Errorf("repo: key file keys/%s: %w", name, err)
	}
	return sec, err
}

// loadKeyFile loads keys/name, bounded by crypto.MaxKeyFileSize.
func loadKeyFile(ctx context.Context, be backends.Backend, name string) ([]byte, error) {
	h := backends.Handle{Type: backends.KeyFile, Name: name}
	fi, err := be.Stat(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("repo: load key %s: %w", name, err)
	}
	if fi.Size > crypto.MaxKeyFileSize {
		return nil, fmt.Errorf("repo: key file keys/%s: %w: %d bytes", name, ErrInvalidData, fi.Size)
	}
	raw, err := backends.LoadAll(ctx, be, h)
	if err != nil {
		return nil, fmt.Errorf("repo: load key %s: %w", name, err)
	}
	return raw, nil
}

// noKeyError says that no key file opened; it is ErrWrongPassword to errors.Is.
type noKeyError struct {
	msg string
	err error
}

func (e *noKeyError) Error() string        { return e.msg }
func (e *noKeyError) Is(target error) bool { return target == ErrWrongPassword }
func (e *noKeyError) Unwrap() error        { return e.err }

func noKeyMessage(u crypto.Unlocker, tried int) string {
	files := fmt.Sprintf("%d key files", tried)
	if tried == 1 {
		files = "1 key file"
	}
	if _, ok := u.(crypto.Passphrase); ok {
		return fmt.Sprintf("%s (tried %s)", ErrWrongPassword, files)
	}
	return fmt.Sprintf("repo: no key file is encrypted to %s (tried %s)", u, files)
}

// ReadConfigVersion loads the config and checks its format version without keys.
func readOuterConfig(ctx context.Context, be backends.Backend) (*outerConfig, error) {
	raw, err := backends.LoadAll(ctx, be, backends.Handle{Type: backends.ConfigFile})
	if errors.Is(err, backends.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoRepository, be.Location())
	}
	if err != nil {
		return nil, fmt.Errorf("repo: load config: %w", err)
	}
	if len(raw) > 1<<20 {
		return nil, fmt.Errorf("%w: config of %d bytes", ErrInvalidData, len(raw))
	}
	return DecodeOuterConfig(raw)
}

// DecodeOuterConfig parses the keyless part of a config file and checks its version.
func DecodeOuterConfig(raw []byte) (*outerConfig, error) {
	var oc outerConfig
	if err := json.Unmarshal(raw, &oc); err != nil || oc.Hoard != "repository" {
		return nil, fmt.Errorf("%w: config is not a hoard repository config", ErrInvalidData)
	}
	if oc.Version < MinFormatVersion || oc.Version > FormatVersion {
		return nil, fmt.Errorf("%w: version %d (this hoard reads versions %d to %d)", ErrVersion, oc.Version, MinFormatVersion, FormatVersion)
	}
	if _, err := id.Parse(oc.ID); err != nil {
		return nil, fmt.Errorf("%w: config id %q", ErrInvalidData, oc.ID)
	}
	if oc.Fingerprint != "" {
		if f, err := crypto.ParseFingerprint(oc.Fingerprint); err != nil || f != oc.Fingerprint {
			return nil, fmt.Errorf("%w: config data_key_fingerprint %q", ErrInvalidData, oc.Fingerprint)
		}
	}
	return &oc, nil
}

// Open opens the repository in be, trying every key file with the passphrase.
func Open(ctx context.Context, be backends.Backend, o Options) (*Repository, error) {
	o.fill()
	oc, err := readOuterConfig(ctx, be)
	if err != nil {
		return nil, err
	}
	var names []string
	err = be.List(ctx, backends.KeyFile, func(fi backends.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("repo: list keys: %w", err)
	}
	sort.Strings(names) // the same order on every backend and every run
	u := o.unlocker()
	if o.Pinned != nil {
		p, err := o.Pinned(oc.ID)
		if err != nil {
			return nil, err
		}
		o.DataKeyFingerprint, o.RequireSigned, o.PreferKey = p.Fingerprint, p.RequireSigned, p.KeyFile
	}
	if i := slices.Index(names, o.PreferKey); i > 0 {
		names = append(append([]string{o.PreferKey}, names[:i]...), names[i+1:]...)
	}
	want := o.DataKeyFingerprint
	_, isPassphrase := u.(crypto.Passphrase)
	var keys *crypto.Keys
	var keyName string
	var lastErr, unusable error
	var untrusted []*UntrustedError
	for _, name := range names {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		sec, err := unlockKeyFile(ctx, be, u, name)
		if crypto.IsNotForUnlocker(err) {
			continue
		}
		if errors.Is(err, crypto.ErrGPGKeyUnusable) {
			// gpg holds the key but cannot use it now; another key file
			// may be encrypted to a key it can use. If none opens, this
			// is the reason to report.
			unusable = err
			continue
		}
		if errors.Is(err, crypto.ErrWrongKeyPassphrase) {
			// The key file is for this key, but its passphrase is wrong:
			// every other key file would fail the same way.
			return nil, &noKeyError{msg: err.Error(), err: err}
		}
		if err == nil && sec.Repository != oc.ID {
			err = fmt.Errorf("repo: key file keys/%s belongs to another repository (%s), not to this one (%s)", name, sec.Repository[:8], oc.ID[:8])
		}
		var k *crypto.Keys
		if err == nil {
			k, err = crypto.NewKeys(sec)
		}
		var ue *UntrustedError
		switch {
		case errors.Is(err, crypto.ErrInconsistentKey):
			ue = &UntrustedError{File: "keys/" + name, Reason: err.Error()}
		case err != nil:
			if !strings.HasPrefix(err.Error(), "repo: ") {
				err = fmt.Errorf("repo: key file keys/%s: %w", name, err)
			}
			lastErr = err
			continue
		default:
			ue = checkKeyTrust(name, k, oc, want, o.RequireSigned)
		}
		if ue == nil && keys != nil && k.Fingerprint() != keys.Fingerprint() {
			// First use, nothing pinned: the key files disagree, and the
			// client cannot tell which one a write-only holder planted.
			return nil, &UntrustedError{File: "keys/" + name, Reason: fmt.Sprintf("it holds data key %s, but keys/%s holds %s: "+
				"one of them was not made by the repository's owner; give the right fingerprint with --data-key-fingerprint",
				k.Fingerprint(), keyName, keys.Fingerprint())}
		}
		if ue != nil {
			if !o.SkipUntrusted {
				return nil, ue
			}
			untrusted = append(untrusted, ue)
			continue
		}
		if keys == nil {
			keys, keyName = k, name
		}
		if want != "" && isPassphrase {
			// Pinned: the first key file that matches will do. Key files
			// for GPG keys cost little to open, so those are all opened,
			// and one a write-only holder planted is refused loudly.
			break
		}
	}
	if keys == nil {
		if len(untrusted) > 0 {
			return nil, untrusted[0]
		}
		if unusable != nil {
			return nil, &noKeyError{msg: unusable.Error(), err: unusable}
		}
		if lastErr != nil {
			return nil, lastErr
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%w: no key files in keys/ of %s: nothing can open the repository (put keys/ back from a copy)", ErrInvalidData, be.Location())
		}
		return nil, &noKeyError{msg: noKeyMessage(u, len(names))}
	}
	body, err := base64.StdEncoding.DecodeString(oc.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: config body: %v", ErrInvalidData, err)
	}
	plain, err := keys.Meta.Open(nil, body, []byte(crypto.LabelConfig))
	if err != nil {
		return nil, fmt.Errorf("%w: config body: %v", ErrInvalidData, err)
	}
	var bc bodyConfig
	if err := json.Unmarshal(plain, &bc); err != nil {
		return nil, fmt.Errorf("%w: config body: %v", ErrInvalidData, err)
	}
	if bc.ID != oc.ID {
		return nil, fmt.Errorf("%w: config body names repository %q", ErrInvalidData, bc.ID)
	}
	if err := bc.Chunker.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidData, err)
	}
	if bc.PackSize < 1<<20 || bc.PackSize > 1<<30 {
		return nil, fmt.Errorf("%w: pack size %d", ErrInvalidData, bc.PackSize)
	}
	// After the body opened: damage is ErrInvalidData, a body that opens
	// under the metadata key but is not signed by the data key is forged.
	configSigned, err := checkConfigSignature(oc, keys)
	if err != nil {
		return nil, err
	}
	r := newRepository(be, keys, keyName, o)
	r.unlocker = u
	r.untrusted = untrusted
	r.configSigned = configSigned
	r.configBody = oc.Body
	r.cfg = Config{Version: oc.Version, ID: oc.ID, Created: bc.Created, Chunker: bc.Chunker, Compression: bc.Compression, PackSize: bc.PackSize}
	return r, nil
}

// Config returns the repository config.
func (r *Repository) Config() Config { return r.cfg }

// Backend returns the repository's backend.
func (r *Repository) Backend() backends.Backend { return r.be }

// Connections is how many operations at once the backend serves well: the
// width of a fan-out of loads.
func (r *Repository) Connections() int { return r.be.Properties().Connections }

// Keys returns the opened keys.
func (r *Repository) Keys() *crypto.Keys { return r.keys }

// KeyName is the name of the key file that opened the repository.
func (r *Repository) KeyName() string { return r.keyName }

// Unlocker returns what opened the key file; nil for a repository just
// created by Init.
func (r *Repository) Unlocker() crypto.Unlocker { return r.unlocker }

// CanRead reports whether the key can read file content.
func (r *Repository) CanRead() bool { return r.keys.CanRead() }

// Polynomial returns the chunker polynomial.
func (r *Repository) Polynomial() chunk.Pol { return r.keys.Secrets.Polynomial }

// Index returns the in-memory index.
func (r *Repository) Index() *index.Index { return r.idx }

// Close releases resources; it does not flush.
func (r *Repository) Close() error {
	r.uploads.Wait() // uploads own pack buffers; let them end first
	r.zdec.Close()
	return r.be.Close()
}

// SaveUnpacked seals plaintext under the label of files of type t (an
// index, snapshot or lock file: sealedLabel) and stores it as a file of
// type t named by the SHA-256 of its bytes.
func (r *Repository) SaveUnpacked(ctx context.Context, t FileType, plaintext []byte) (id.ID, error) {
	label, err := sealedLabel(t)
	if err != nil {
		return id.ID{}, err
	}
	sealed := r.keys.Meta.Seal(nil, plaintext, []byte(label))
	name := id.Hash(sealed)
	if err := r.be.Save(ctx, backends.Handle{Type: t, Name: name.String()}, backends.NewByteReader(sealed)); err != nil {
		return id.ID{}, fmt.Errorf("repo: save %s/%s: %w", t, name, err)
	}
	return name, nil
}

// sealedLabel returns the label that binds a sealed file to its type
// (FORMAT.md section 2), so that an index file cannot pass for a
// snapshot: every sealed file of a type is sealed under one label.
func sealedLabel(t FileType) (string, error) {
	switch t {
	case IndexFile:
		return crypto.LabelIndex, nil
	case SnapshotFile:
		return crypto.LabelSnapshot, nil
	case LockFile:
		return crypto.LabelLock, nil
	}
	return "", fmt.Errorf("repo: %s files are not sealed files named by their hash", t)
}

// maxUnpacked bounds index, snapshot and lock files.
const maxUnpacked = 1 << 30

// LoadUnpacked loads, verifies and opens the file t/name (an index,
// snapshot or lock file), sealed under the label of its type.
func (r *Repository) LoadUnpacked(ctx context.Context, t FileType, name id.ID) ([]byte, error) {
	label, err := sealedLabel(t)
	if err != nil {
		return nil, err
	}
	h := backends.Handle{Type: t, Name: name.String()}
	raw, err := backends.LoadAll(ctx, r.be, h)
	if err != nil {
		return nil, fmt.Errorf("repo: load %s: %w", h, err)
	}
	if len(raw) > maxUnpacked || id.Hash(raw) != name {
		return nil, &FileError{File: h.String(), Err: fmt.Errorf("%w: content does not match its name", ErrInvalidData)}
	}
	plain, err := r.keys.Meta.Open(nil, raw, []byte(label))
	if err != nil {
		return nil, &FileError{File: h.String(), Err: fmt.Errorf("%w: %v", ErrInvalidData, err)}
	}
	return plain, nil
}

// List returns the names of all files of type t.
func (r *Repository) List(ctx context.Context, t FileType) ([]id.ID, error) {
	var out []id.ID
	err := r.be.List(ctx, t, func(fi backends.FileInfo) error {
		n, err := id.Parse(fi.Name)
		if err != nil {
			r.log.Warn("ignoring file with invalid name", "type", t, "name", fi.Name)
			return nil
		}
		out = append(out, n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("repo: list %s: %w", t, err)
	}
	return out, nil
}

// ListPacks returns the size of every pack file in the backend, by name;
// files whose names are not IDs are passed over.
func (r *Repository) ListPacks(ctx context.Context) (map[id.ID]int64, error) {
	out := map[id.ID]int64{}
	err := r.be.List(ctx, backends.PackFile, func(fi backends.FileInfo) error {
		if n, err := id.Parse(fi.Name); err == nil {
			out[n] = fi.Size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("repo: list packs: %w", err)
	}
	return out, nil
}

// RemoveSnapshot removes the snapshot file name. Its error is the
// backend's, as it is: ErrNotExist when there is no such file.
func (r *Repository) RemoveSnapshot(ctx context.Context, name id.ID) error {
	return r.be.Remove(ctx, backends.Handle{Type: backends.SnapshotFile, Name: name.String()})
}

// RemoveLock removes the lock file name. Its error is the backend's, as
// it is: ErrNotExist when there is no such file.
func (r *Repository) RemoveLock(ctx context.Context, name id.ID) error {
	return r.be.Remove(ctx, backends.Handle{Type: backends.LockFile, Name: name.String()})
}

// FileError names a damaged repository file.
type FileError struct {
	File string
	Err  error
}

func (e *FileError) Error() string { return e.File + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

// BlobError names a blob that could not be loaded and the pack it was in.
type BlobError struct {
	Type pack.BlobType
	ID   id.ID
	Pack id.ID
	Err  error
}

func (e *BlobError) Error() string {
	if e.Pack.IsNull() {
		return fmt.Sprintf("%s blob %s: %v", e.Type, e.ID.Str(), e.Err)
	}
	return fmt.Sprintf("%s blob %s in pack %s: %v", e.Type, e.ID.Str(), e.Pack.Str(), e.Err)
}

// Unwrap returns the cause.
func (e *BlobError) Unwrap() error { return e.Err }

// ErrNoAtomicReplace means the backend cannot replace the config file
// atomically, so Upgrade refuses to rewrite it.
var ErrNoAtomicReplace = errors.New("repo: the backend cannot replace a file atomically")

// Upgrade rewrites the config of an older repository with FormatVersion
// (docs/FORMAT.md, section 14.5) and reports whether it did. Only the
// version changes: the body, and every other file, stay as they are. The
// caller holds an exclusive lock. Older hoard versions refuse the
// repository afterwards.
func (r *Repository) Upgrade(ctx context.Context) (bool, error) {
	if r.cfg.Version >= FormatVersion {
		return false, nil
	}
	if !r.be.Properties().HasAtomicReplace {
		return false, fmt.Errorf("%w: %s; the config is left at version %d", ErrNoAtomicReplace, r.be.Location(), r.cfg.Version)
	}
	oc, err := readOuterConfig(ctx, r.be)
	if err != nil {
		return false, err
	}
	// Sign only what Open authenticated: a writer could swap the config
	// between Open and here, and a signature would make its body trusted.
	if oc.ID != r.cfg.ID || oc.Body != r.configBody {
		return false, fmt.Errorf("%w: the config changed while open", ErrInvalidData)
	}
	oc.Version = FormatVersion
	// The config's signature covers its version: a full key signs the
	// upgraded config (a version 1 config that had no signature gets one);
	// a write-only key cannot, and must not leave a signature that no
	// longer verifies.
	if r.keys.CanRead() {
		oc.Fingerprint = r.keys.Fingerprint()
		sig, err := r.keys.Sign(crypto.ConfigStatement(oc.ID, oc.Version, oc.Fingerprint, oc.Body), r.now().UTC())
		if err != nil {
			return false, err
		}
		oc.Signature = base64.StdEncoding.EncodeToString(sig)
	} else if oc.Signature != "" || oc.Fingerprint != "" {
		return false, fmt.Errorf("%w: the config is signed by the data key, which only a full key can sign again; upgrade with a full key", ErrWriteOnly)
	}
	outer, err := json.MarshalIndent(oc, "", "  ")
	if err != nil {
		return false, err
	}
	if err := r.be.Save(ctx, backends.Handle{Type: backends.ConfigFile}, backends.NewByteReader(outer)); err != nil {
		return false, fmt.Errorf("repo: save config: %w", err)
	}
	r.cfg.Version = FormatVersion
	r.configSigned = oc.Signature != ""
	return true, nil
}
