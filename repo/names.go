package repo

import (
	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/index"
	"github.com/hoard-backup/hoard/repo/pack"
)

// The names of the layers below repo that its callers use, given again
// here so that the packages above (snapshot/...) talk to the repository
// alone and import neither the backends nor repo's own format packages
// (docs/architecture.md, "The layers"). They are aliases: a repo.BlobType
// is a pack.BlobType, and so on.

// BlobType says whether a blob is file content or a tree.
type BlobType = pack.BlobType

// Blob types.
const (
	DataBlob = pack.DataBlob
	TreeBlob = pack.TreeBlob
)

// PackEntry describes one blob in a pack: what the index knows of it.
type PackEntry = pack.Entry

// Index is the in-memory index (Repository.Index).
type Index = index.Index

// PackRef is what the index knows of one pack.
type PackRef = index.PackRef

// Location is where one blob is stored.
type Location = index.Location

// FileType is the type of a repository file, which decides its folder.
type FileType = backends.FileType

// The file types a caller of repo names.
const (
	KeyFile      = backends.KeyFile
	PackFile     = backends.PackFile
	IndexFile    = backends.IndexFile
	SnapshotFile = backends.SnapshotFile
	LockFile     = backends.LockFile
	WALFile      = backends.WALFile
)

// ErrNotExist is the backends' error for a file that does not exist, as
// LoadUnpacked, RemoveSnapshot and RemoveLock return it.
var ErrNotExist = backends.ErrNotExist

// Trust says what a client knows of who wrote a snapshot
// (Repository.CheckSnapshot).
type Trust = crypto.Trust

// Trust levels of a snapshot; see crypto.Trust.
const (
	TrustNone     = crypto.TrustNone
	TrustThisKey  = crypto.TrustThisKey
	TrustVerified = crypto.TrustVerified
	TrustUnknown  = crypto.TrustUnknown
	TrustInvalid  = crypto.TrustInvalid
)

// FilePath returns the path of the file t/name below the repository's
// root, as every backend lays it out (backends.Path): "data/NA/NAME" for a
// pack, "TYPE/NAME" for the others. It is for messages that name a file.
func FilePath(t FileType, name id.ID) string {
	h := backends.Handle{Type: t, Name: name.String()}
	p, err := backends.Path(h)
	if err != nil {
		return h.String() // no file of the layout (the config has no name)
	}
	return p
}
