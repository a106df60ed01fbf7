// Package wal is the WAL catalog of a repository (docs/FORMAT.md, section
// 12a): one small sealed entry per archived PostgreSQL WAL file, in the
// wal/ folder, named by the cluster and the WAL file it describes, listing
// the data blobs that hold the file's bytes.
//
// The package knows the names and the entries; it does not know how a
// PostgreSQL server uses them (package pitr does).
package wal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
)

// Sentinel errors.
var (
	// ErrName marks a cluster or WAL file name that the catalog cannot hold.
	ErrName = errors.New("wal: invalid name")
	// ErrNotArchived means the catalog has no entry for a WAL file.
	ErrNotArchived = errors.New("wal: not archived")
)

// MaxEntrySize bounds an entry file: a 1 GiB segment (PostgreSQL's largest)
// in 1 MiB pieces is 1024 IDs of 67 bytes in JSON.
const MaxEntrySize = 1 << 20

// MaxFileSize is the largest WAL file an entry may describe (PostgreSQL's
// largest segment size).
const MaxFileSize = 1 << 30

// Entry is one archived WAL file.
type Entry struct {
	Version int       `json:"hoard_wal"`
	Cluster string    `json:"cluster"`
	File    string    `json:"file"`
	Size    int64     `json:"size"`
	Content []id.ID   `json:"content"`
	Time    time.Time `json:"time"`
	Host    string    `json:"host,omitempty"`
}

// Same reports whether e and o describe the same bytes.
func (e *Entry) Same(o *Entry) bool {
	if e.Size != o.Size || len(e.Content) != len(o.Content) {
		return false
	}
	for i := range e.Content {
		if e.Content[i] != o.Content[i] {
			return false
		}
	}
	return true
}

// Encode returns the entry's plaintext.
func Encode(e *Entry) ([]byte, error) {
	if _, err := HandleName(e.Cluster, e.File); err != nil {
		return nil, err
	}
	e.Version = 1
	return json.Marshal(e)
}

// Decode parses an entry's plaintext, treating it as hostile: the entry
// must name a valid cluster and WAL file, and its size must be within
// bounds. Unknown fields are allowed (a later writer may add some).
func Decode(b []byte) (*Entry, error) {
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: wal entry of %d bytes", repo.ErrInvalidData, len(b))
	}
	var e Entry
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&e); err != nil {
		return nil, fmt.Errorf("%w: wal entry: %v", repo.ErrInvalidData, err)
	}
	if e.Version != 1 {
		return nil, fmt.Errorf("%w: wal entry version %d", repo.ErrInvalidData, e.Version)
	}
	if _, err := HandleName(e.Cluster, e.File); err != nil {
		return nil, fmt.Errorf("%w: wal entry: %v", repo.ErrInvalidData, err)
	}
	if e.Size < 0 || e.Size > MaxFileSize || (e.Size > 0) != (len(e.Content) > 0) || int64(len(e.Content)) > e.Size {
		return nil, fmt.Errorf("%w: wal entry %s: size %d with %d pieces", repo.ErrInvalidData, e.File, e.Size, len(e.Content))
	}
	return &e, nil
}

// CheckCluster reports whether name can be a cluster name in the catalog.
func CheckCluster(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%w: cluster name %q: 1 to 64 letters, digits, '-' and '_'", ErrName, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: cluster name %q: 1 to 64 letters, digits, '-' and '_'", ErrName, name)
		}
	}
	return nil
}

// HandleName returns the catalog file name of a cluster's WAL file.
func HandleName(cluster, file string) (string, error) {
	if err := CheckCluster(cluster); err != nil {
		return "", err
	}
	if _, err := ParseName(file); err != nil {
		return "", err
	}
	return cluster + "_" + strings.ReplaceAll(file, ".", "-"), nil
}

// SplitHandleName is HandleName's inverse: the cluster and the WAL file
// name of a catalog file name.
func SplitHandleName(name string) (cluster, file string, err error) {
	i := strings.LastIndexByte(name, '_')
	if i < 0 || strings.Contains(name, ".") {
		return "", "", fmt.Errorf("%w: catalog file %q", ErrName, name)
	}
	cluster, file = name[:i], strings.ReplaceAll(name[i+1:], "-", ".")
	if _, err := HandleName(cluster, file); err != nil {
		return "", "", err
	}
	return cluster, file, nil
}

// Item is one catalog file as a listing shows it, without opening it.
type Item struct {
	Cluster string
	Name    Name
	Size    int64 // of the entry file
}

// List returns the catalog's files that parse, in no particular order.
// It needs no keys.
func List(ctx context.Context, be backends.Backend) ([]Item, error) {
	var out []Item
	err := be.List(ctx, backends.WALFile, func(fi backends.FileInfo) error {
		cluster, file, err := SplitHandleName(fi.Name)
		if err != nil {
			return nil // not ours
		}
		n, _ := ParseName(file)
		out = append(out, Item{Cluster: cluster, Name: n, Size: fi.Size})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("wal: list: %w", err)
	}
	return out, nil
}

// Load reads the entry of a cluster's WAL file. A missing entry is
// ErrNotArchived (wrapped).
func Load(ctx context.Context, r *repo.Repository, cluster, file string) (*Entry, error) {
	name, err := HandleName(cluster, file)
	if err != nil {
		return nil, err
	}
	h := backends.Handle{Type: backends.WALFile, Name: name}
	raw, err := backends.LoadAll(ctx, r.Backend(), h)
	if errors.Is(err, backends.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s of cluster %s", ErrNotArchived, file, cluster)
	}
	if err != nil {
		return nil, fmt.Errorf("wal: load %s: %w", h, err)
	}
	if len(raw) > MaxEntrySize+crypto.Overhead {
		return nil, &repo.FileError{File: h.String(), Err: fmt.Errorf("%w: %d bytes", repo.ErrInvalidData, len(raw))}
	}
	plain, err := r.Keys().Meta.Open(nil, raw, []byte(crypto.LabelWAL))
	if err != nil {
		return nil, &repo.FileError{File: h.String(), Err: fmt.Errorf("%w: %v", repo.ErrInvalidData, err)}
	}
	e, err := Decode(plain)
	if err != nil {
		return nil, &repo.FileError{File: h.String(), Err: err}
	}
	if e.Cluster != cluster || e.File != file {
		return nil, &repo.FileError{File: h.String(), Err: fmt.Errorf("%w: entry describes %s of cluster %s", repo.ErrInvalidData, e.File, e.Cluster)}
	}
	return e, nil
}

// Save seals and stores an entry. The caller has stored the blobs and the
// index file naming their packs first (docs/FORMAT.md, section 11).
func Save(ctx context.Context, r *repo.Repository, e *Entry) error {
	plain, err := Encode(e)
	if err != nil {
		return err
	}
	name, _ := HandleName(e.Cluster, e.File)
	sealed := r.Keys().Meta.Seal(nil, plain, []byte(crypto.LabelWAL))
	h := backends.Handle{Type: backends.WALFile, Name: name}
	if err := r.Backend().Save(ctx, h, backends.NewByteReader(sealed)); err != nil {
		return fmt.Errorf("wal: save %s: %w", h, err)
	}
	return nil
}

// Remove deletes the entry of a cluster's WAL file; its blobs stay until
// prune.
func Remove(ctx context.Context, r *repo.Repository, cluster, file string) error {
	name, err := HandleName(cluster, file)
	if err != nil {
		return err
	}
	h := backends.Handle{Type: backends.WALFile, Name: name}
	if err := r.Backend().Remove(ctx, h); err != nil && !errors.Is(err, backends.ErrNotExist) {
		return fmt.Errorf("wal: remove %s: %w", h, err)
	}
	return nil
}

// Exists reports whether the catalog has an entry for the file, without
// opening it.
func Exists(ctx context.Context, be backends.Backend, cluster, file string) (bool, error) {
	name, err := HandleName(cluster, file)
	if err != nil {
		return false, err
	}
	_, err = be.Stat(ctx, backends.Handle{Type: backends.WALFile, Name: name})
	if errors.Is(err, backends.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// AddUsed adds the blobs of every catalog entry to used, for prune and
// check. An entry that cannot be read is an error: its blobs would look
// unused.
func AddUsed(ctx context.Context, r *repo.Repository, used repo.BlobSet) error {
	items, err := List(ctx, r.Backend())
	if err != nil {
		return err
	}
	for _, it := range items {
		e, err := Load(ctx, r, it.Cluster, it.Name.File)
		if err != nil {
			return err
		}
		for _, b := range e.Content {
			used[repo.BlobHandle{Type: pack.DataBlob, ID: b}] = struct{}{}
		}
	}
	return nil
}
