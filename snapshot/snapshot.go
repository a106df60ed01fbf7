package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
)

// Sentinel errors of snapshot lookup.
var (
	ErrNotFound  = errors.New("snapshot: no matching snapshot")
	ErrAmbiguous = errors.New("snapshot: prefix matches several snapshots")
	// ErrBadRef marks a reference that is no snapshot's ID, prefix or
	// "latest", matches no snapshot, or matches several: a mistake of the
	// command line. Find's errors for such references match it besides
	// ErrNotFound or ErrAmbiguous.
	ErrBadRef = errors.New("snapshot: bad snapshot reference")
)

// refError is an error of Find for a bad reference: kind and ErrBadRef.
type refError struct {
	msg  string
	kind error
}

func (e *refError) Error() string   { return e.msg }
func (e *refError) Unwrap() []error { return []error{e.kind, ErrBadRef} }

// The kinds of source a snapshot records (Source.Kind).
const (
	KindFiles    = "files"    // paths read from disk (hoard backup PATH...)
	KindStdin    = "stdin"    // standard input under a file name
	KindCommand  = "command"  // a command's output under a file name
	KindDatabase = "database" // database dumps (hoard db backup)
	KindRun      = "run"      // the databases and media trees of the config file (hoard run)
)

// Source says what a snapshot was made from.
type Source struct {
	Kind     string   `json:"kind"` // KindFiles, KindStdin, KindCommand, KindDatabase or KindRun
	Filename string   `json:"filename,omitempty"`
	Command  []string `json:"command,omitempty"`
	// Databases lists the database dumps in the snapshot (kinds database
	// and run).
	Databases []DatabaseInfo `json:"databases,omitempty"`
}

// DatabaseInfo describes one database dump in a snapshot. It holds no
// credentials.
type DatabaseInfo struct {
	Name          string            `json:"name"`                     // the database's name in the config file
	Engine        string            `json:"engine"`                   // postgres, mysql, sqlite
	Path          string            `json:"path"`                     // the dump's file in the snapshot, e.g. "/db/main.pgdump"
	Format        string            `json:"format"`                   // custom (pg_dump -Fc), tar, sql or sqlite (a database file)
	Database      string            `json:"database,omitempty"`       // the name on the server; the file's path for sqlite
	Host          string            `json:"host,omitempty"`           // the server's address
	ServerVersion string            `json:"server_version,omitempty"` // as the server reports it
	Tool          string            `json:"tool"`                     // the dump tool as configured
	ToolVersion   string            `json:"tool_version,omitempty"`   // first line of its --version
	Options       []string          `json:"options,omitempty"`        // the dump options used
	Details       map[string]string `json:"details,omitempty"`        // engine-specific: encoding, collation
	// Fingerprint is what the dump holds (its tables' row counts), counted
	// from the dump stream as it was archived; nil or zero in snapshots
	// made before it existed, and for formats with no counter.
	Fingerprint *dump.Fingerprint `json:"fingerprint,omitzero"`
}

// Database returns the dump of the database named name, or nil.
func (s Source) Database(name string) *DatabaseInfo {
	for i := range s.Databases {
		if s.Databases[i].Name == name {
			return &s.Databases[i]
		}
	}
	return nil
}

// Summary counts what a backup did.
type Summary struct {
	FilesNew        uint64 `json:"files_new"`
	FilesChanged    uint64 `json:"files_changed"`
	FilesUnmodified uint64 `json:"files_unmodified"`
	Dirs            uint64 `json:"dirs"`
	DataBlobsNew    uint64 `json:"data_blobs_new"`
	TreeBlobsNew    uint64 `json:"tree_blobs_new"`
	BytesRead       uint64 `json:"bytes_read"`
	BytesMatched    uint64 `json:"bytes_matched,omitempty"` // of BytesRead: chunks of the parent's recognised by hash
	BytesAdded      uint64 `json:"bytes_added"`             // plaintext bytes of new blobs
	BytesStored     uint64 `json:"bytes_stored"`            // sealed bytes of new blobs
	TotalBytes      uint64 `json:"total_bytes"`             // size of everything in the snapshot
	Errors          uint64 `json:"errors,omitempty"`
	DurationNs      int64  `json:"duration_ns"`
}

// Snapshot is one backup's manifest.
type Snapshot struct {
	Time     time.Time `json:"time"`
	Host     string    `json:"host"`
	Username string    `json:"username,omitempty"`
	Tags     []string  `json:"tags,omitempty"`
	Paths    []string  `json:"paths,omitempty"`
	Source   Source    `json:"source"`
	Tree     id.ID     `json:"tree"`
	Parent   *id.ID    `json:"parent,omitempty"`
	Summary  *Summary  `json:"summary,omitempty"`
	Program  string    `json:"program,omitempty"`
	// ChunkProfiles names the chunk size profile ("dump" or "large") each
	// item was cut with, by its path in the snapshot ("dump.sql",
	// "media/uploads/uploads"), so that the next backup of the item cuts
	// it the same way.
	ChunkProfiles map[string]string `json:"chunk_profiles,omitempty"`

	// Original is the snapshot this one was rewritten from (hoard tag).
	Original *id.ID `json:"original,omitempty"`

	// Who wrote the snapshot (FORMAT.md 9.1): the writer ID of the key
	// file's snapshot key, that key wrapped to the data key, and the MAC of
	// Statement under it. Save sets them; absent without a snapshot key.
	Writer    string `json:"writer,omitempty"`
	WriterKey []byte `json:"writer_key,omitempty"`
	MAC       []byte `json:"mac,omitempty"`

	// ID is the snapshot's file name; not stored in the file.
	ID id.ID `json:"-"`
}

// Decode parses a snapshot file's plaintext.
func Decode(b []byte) (*Snapshot, error) {
	var sn Snapshot
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&sn); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) != 0 {
		return nil, errors.New("snapshot: trailing data")
	}
	if sn.Tree.IsNull() {
		return nil, errors.New("snapshot: no tree")
	}
	if err := checkWriterFields(&sn); err != nil {
		return nil, err
	}
	return &sn, nil
}

// Statement is what a snapshot's MAC covers (FORMAT.md 9.1): the
// repository, the writer, and the fields that say what the snapshot holds
// and where it came from.
func (sn *Snapshot) Statement(repository string) []byte {
	fields := [][]byte{[]byte(repository), []byte(sn.Writer), []byte(sn.Time.UTC().Format(time.RFC3339Nano)),
		[]byte(sn.Host), []byte(sn.Username), []byte(sn.Source.Kind), []byte(sn.Source.Filename),
		[]byte(sn.Tree.String()), []byte(fmt.Sprint(len(sn.Paths)))}
	for _, p := range sn.Paths {
		fields = append(fields, []byte(p))
	}
	fields = append(fields, []byte(fmt.Sprint(len(sn.Tags))))
	for _, t := range sn.Tags {
		fields = append(fields, []byte(t))
	}
	return repo.SnapshotStatement(fields...)
}

// Verify says who wrote sn, as far as r's key can tell (repo.Trust).
func Verify(r *repo.Repository, sn *Snapshot) repo.Trust {
	return r.CheckSnapshot(sn.Writer, sn.WriterKey, sn.Statement(r.Config().ID), sn.MAC)
}

// Save authenticates sn with the snapshot key of the key in use (when it
// has one), stores it and sets its ID.
func Save(ctx context.Context, r *repo.Repository, sn *Snapshot) error {
	return save(ctx, r, sn, true)
}

// SaveUnauthenticated stores sn without writer fields: for a snapshot
// written from another repository's (hoard copy), which no key of this one
// wrote, so no host here takes it as a trusted parent.
func SaveUnauthenticated(ctx context.Context, r *repo.Repository, sn *Snapshot) error {
	return save(ctx, r, sn, false)
}

// save stores sn, authenticated by the key in use if authenticate is set,
// else with no writer fields (a snapshot rewritten from one this key did
// not write must not become its own: FORMAT.md 9.1).
func save(ctx context.Context, r *repo.Repository, sn *Snapshot, authenticate bool) error {
	sn.Writer, sn.WriterKey, sn.MAC = "", nil, nil
	if authenticate {
		sn.Writer = r.Writer()
		mac, wrapped, err := r.MACSnapshot(sn.Statement(r.Config().ID))
		if err != nil {
			return err
		}
		if mac == nil {
			sn.Writer = ""
		}
		sn.MAC, sn.WriterKey = mac, wrapped
	}
	b, err := json.Marshal(sn)
	if err != nil {
		return err
	}
	name, err := r.SaveUnpacked(ctx, repo.SnapshotFile, b)
	if err != nil {
		return err
	}
	sn.ID = name
	return nil
}

// Load reads one snapshot.
func Load(ctx context.Context, r *repo.Repository, name id.ID) (*Snapshot, error) {
	b, err := r.LoadUnpacked(ctx, repo.SnapshotFile, name)
	if err != nil {
		return nil, err
	}
	sn, err := Decode(b)
	if err != nil {
		return nil, &repo.FileError{File: repo.FilePath(repo.SnapshotFile, name), Err: fmt.Errorf("%w: %v", repo.ErrInvalidData, err)}
	}
	sn.ID = name
	return sn, nil
}

// Problem is a snapshot file that could not be read.
type Problem struct {
	ID  id.ID
	Err error
}

// List loads every snapshot, sorted by time. Unreadable snapshot files are
// returned as problems, not errors.
func List(ctx context.Context, r *repo.Repository) ([]*Snapshot, []Problem, error) {
	names, err := r.List(ctx, repo.SnapshotFile)
	if err != nil {
		return nil, nil, err
	}
	var (
		mu       sync.Mutex
		out      []*Snapshot
		problems []Problem
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.Connections())
	for _, n := range names {
		g.Go(func() error {
			sn, err := Load(gctx, r, n)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				problems = append(problems, Problem{ID: n, Err: err})
				return nil
			}
			out = append(out, sn)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID.Compare(out[j].ID) < 0
	})
	return out, problems, nil
}

// Filter selects snapshots for "latest".
type Filter struct {
	Host  string
	Paths []string
	Tags  []string
}

// Match reports whether sn passes the filter.
func (f Filter) Match(sn *Snapshot) bool {
	if f.Host != "" && sn.Host != f.Host {
		return false
	}
	if len(f.Paths) > 0 && !sameStrings(f.Paths, sn.Paths) {
		return false
	}
	for _, t := range f.Tags {
		found := false
		for _, st := range sn.Tags {
			found = found || st == t
		}
		if !found {
			return false
		}
	}
	return true
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Latest returns the newest snapshot matching f among sns (sorted by time), or nil.
func Latest(sns []*Snapshot, f Filter) *Snapshot {
	for i := len(sns) - 1; i >= 0; i-- {
		if f.Match(sns[i]) {
			return sns[i]
		}
	}
	return nil
}

// Find resolves "latest" (in any case, with f) or a unique prefix of a snapshot ID.
func Find(ctx context.Context, r *repo.Repository, ref string, f Filter) (*Snapshot, error) {
	if strings.EqualFold(ref, "latest") {
		sns, _, err := List(ctx, r)
		if err != nil {
			return nil, err
		}
		if sn := Latest(sns, f); sn != nil {
			return sn, nil
		}
		return nil, fmt.Errorf("%w: no snapshot for latest", ErrNotFound)
	}
	ref = strings.ToLower(ref)
	if len(ref) < 1 || len(ref) > 64 || strings.Trim(ref, "0123456789abcdef") != "" {
		return nil, &refError{fmt.Sprintf("snapshot: %q is not a snapshot ID, a prefix of one, or \"latest\"", ref), ErrBadRef}
	}
	names, err := r.List(ctx, repo.SnapshotFile)
	if err != nil {
		return nil, err
	}
	var match []id.ID
	for _, n := range names {
		if strings.HasPrefix(n.String(), ref) {
			match = append(match, n)
		}
	}
	switch len(match) {
	case 0:
		return nil, &refError{fmt.Sprintf("%v: %s", ErrNotFound, ref), ErrNotFound}
	case 1:
		return Load(ctx, r, match[0])
	}
	return nil, &refError{fmt.Sprintf("%v: %s matches %d snapshots", ErrAmbiguous, ref, len(match)), ErrAmbiguous}
}

// checkWriterFields checks the form of the writer fields: all three or
// none, a writer ID of 32 hex digits, a 32-byte MAC, a wrapped key of at
// most 4096 bytes.
func checkWriterFields(sn *Snapshot) error {
	if sn.Writer == "" && sn.MAC == nil && sn.WriterKey == nil {
		return nil
	}
	if len(sn.Writer) != 32 || strings.Trim(sn.Writer, "0123456789abcdef") != "" || len(sn.MAC) != 32 ||
		len(sn.WriterKey) == 0 || len(sn.WriterKey) > 4096 {
		return errors.New("snapshot: malformed writer, writer_key or mac")
	}
	return nil
}
