// Package pack writes packs and decodes their headers (docs/FORMAT.md,
// section 6):
//
//	pack = blob_0 || ... || blob_n-1 || sealed_header || uint32 header_length || "HPK1"
//
// Each stored blob is nonce || AES-256-GCM(pack key, compression byte || body,
// additional data = blob ID). The header, sealed with the metadata key, lists
// the blobs and carries the wrapped pack key.
package pack

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
)

// ErrInvalid marks bytes that are not a well-formed pack or header.
var ErrInvalid = errors.New("pack: invalid data")

// Magic ends every pack.
const Magic = "HPK1"

// TrailerSize is the size of header_length plus the magic.
const TrailerSize = 8

// EntrySize is the encoded size of one header entry (version 1).
const EntrySize = 1 + 4 + 4 + 32

// DeltaEntrySize is the largest encoded size of a version 2 entry: a
// flags byte and a base ID follow the version 1 fields.
const DeltaEntrySize = EntrySize + 1 + 32

// FlagDelta marks an entry of a version 2 header or index as a delta blob
// whose base ID follows.
const FlagDelta byte = 1

// MaxHeaderSize bounds a sealed header (about 400,000 blobs); larger is refused.
const MaxHeaderSize = 16 << 20

// BlobType says whether a blob is file content or a tree.
type BlobType uint8

// Blob types; a pack's kind is the type of all its blobs.
const (
	DataBlob BlobType = 0
	TreeBlob BlobType = 1
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", uint8(t))
}

// Valid reports whether t is a known type.
func (t BlobType) Valid() bool { return t == DataBlob || t == TreeBlob }

// Compression byte values in front of a blob's body.
const (
	CompressionNone byte = 0
	CompressionZstd byte = 1
	// CompressionDelta is a delta blob (repository version 2): the body is
	// the base blob's ID and a zstd frame decoded with the base's
	// plaintext as raw dictionary (docs/FORMAT.md, section 14).
	CompressionDelta byte = 2
)

// Entry describes one blob in a pack.
type Entry struct {
	Type      BlobType
	ID        id.ID
	Offset    uint32
	Length    uint32 // stored length
	RawLength uint32 // plaintext length
	Base      id.ID  // the base of a delta blob; null for a full blob
}

// IsDelta reports whether the entry is a delta blob.
func (e *Entry) IsDelta() bool { return !e.Base.IsNull() }

// hasDelta reports whether any entry is a delta blob.
func hasDelta(es []Entry) bool {
	for i := range es {
		if es[i].IsDelta() {
			return true
		}
	}
	return false
}

// Header is the decoded header of a pack.
type Header struct {
	Kind       BlobType
	WrappedKey []byte
	Entries    []Entry
}

// EncodeHeader returns the plaintext header: version 1, or version 2 when
// an entry is a delta blob.
func EncodeHeader(h Header) []byte {
	v2 := hasDelta(h.Entries)
	size := EntrySize
	version := byte(1)
	if v2 {
		size, version = DeltaEntrySize, 2
	}
	b := make([]byte, 0, 8+len(h.WrappedKey)+len(h.Entries)*size)
	b = append(b, version, byte(h.Kind))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.WrappedKey)))
	b = append(b, h.WrappedKey...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(h.Entries)))
	for _, e := range h.Entries {
		b = append(b, byte(e.Type))
		b = binary.LittleEndian.AppendUint32(b, e.Length)
		b = binary.LittleEndian.AppendUint32(b, e.RawLength)
		b = append(b, e.ID[:]...)
		if v2 {
			if e.IsDelta() {
				b = append(b, FlagDelta)
				b = append(b, e.Base[:]...)
			} else {
				b = append(b, 0)
			}
		}
	}
	return b
}

// DecodeHeader parses a plaintext header and computes the entries' offsets.
// It never allocates more than the input's length justifies.
func DecodeHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < 8 {
		return h, fmt.Errorf("%w: header of %d bytes", ErrInvalid, len(b))
	}
	if b[0] != 1 && b[0] != 2 {
		return h, fmt.Errorf("%w: header version %d", ErrInvalid, b[0])
	}
	v2 := b[0] == 2
	h.Kind = BlobType(b[1])
	if !h.Kind.Valid() {
		return h, fmt.Errorf("%w: pack kind %d", ErrInvalid, b[1])
	}
	kl := int(binary.LittleEndian.Uint16(b[2:]))
	if 4+kl+4 > len(b) {
		return h, fmt.Errorf("%w: wrapped key length %d", ErrInvalid, kl)
	}
	h.WrappedKey = append([]byte(nil), b[4:4+kl]...)
	rest := b[4+kl:]
	n := binary.LittleEndian.Uint32(rest)
	rest = rest[4:]
	if !v2 && uint64(n)*EntrySize != uint64(len(rest)) || v2 && uint64(n)*(EntrySize+1) > uint64(len(rest)) {
		return h, fmt.Errorf("%w: %d entries in %d bytes", ErrInvalid, n, len(rest))
	}
	h.Entries = make([]Entry, n)
	var off uint64
	for i := range h.Entries {
		e := &h.Entries[i]
		// Version 2 entries have different lengths (a delta names its
		// base), so the count alone does not bound them.
		if len(rest) < EntrySize {
			return h, fmt.Errorf("%w: truncated entry %d of %d", ErrInvalid, i, n)
		}
		e.Type = BlobType(rest[0])
		if e.Type != h.Kind {
			return h, fmt.Errorf("%w: %s blob in %s pack", ErrInvalid, e.Type, h.Kind)
		}
		e.Length = binary.LittleEndian.Uint32(rest[1:])
		e.RawLength = binary.LittleEndian.Uint32(rest[5:])
		copy(e.ID[:], rest[9:41])
		if e.Length < crypto.Overhead+1 {
			return h, fmt.Errorf("%w: blob %s of %d bytes", ErrInvalid, e.ID.Str(), e.Length)
		}
		if off > 1<<32-1 {
			return h, fmt.Errorf("%w: pack larger than 4 GiB", ErrInvalid)
		}
		e.Offset = uint32(off)
		off += uint64(e.Length)
		rest = rest[EntrySize:]
		if v2 {
			if len(rest) < 1 {
				return h, fmt.Errorf("%w: truncated entry", ErrInvalid)
			}
			switch rest[0] {
			case 0:
				rest = rest[1:]
			case FlagDelta:
				if len(rest) < 33 || h.Kind != DataBlob {
					return h, fmt.Errorf("%w: delta entry %s", ErrInvalid, e.ID.Str())
				}
				copy(e.Base[:], rest[1:33])
				if e.Base.IsNull() || e.Base == e.ID {
					return h, fmt.Errorf("%w: delta blob %s with base %s", ErrInvalid, e.ID.Str(), e.Base.Str())
				}
				rest = rest[33:]
			default:
				return h, fmt.Errorf("%w: entry flags %d", ErrInvalid, rest[0])
			}
		}
	}
	if len(rest) != 0 {
		return h, fmt.Errorf("%w: %d trailing bytes", ErrInvalid, len(rest))
	}
	if v2 && !hasDelta(h.Entries) {
		// Version 2 is written only for packs with a delta blob, so that
		// a header has one encoding.
		return h, fmt.Errorf("%w: header version 2 without a delta blob", ErrInvalid)
	}
	return h, nil
}

// ParseTrailer returns the length of the sealed header from the last
// TrailerSize bytes of a pack.
func ParseTrailer(tail []byte, packSize int64) (int, error) {
	if len(tail) != TrailerSize || string(tail[4:]) != Magic {
		return 0, fmt.Errorf("%w: no pack trailer", ErrInvalid)
	}
	n := int64(binary.LittleEndian.Uint32(tail))
	if n < crypto.Overhead+8 || n > MaxHeaderSize || n+TrailerSize > packSize {
		return 0, fmt.Errorf("%w: header length %d in pack of %d bytes", ErrInvalid, n, packSize)
	}
	return int(n), nil
}

// OpenHeader opens and decodes a sealed header, and checks that its entries
// fit in front of it (blobsEnd is the offset where the sealed header starts).
func OpenHeader(meta *crypto.AEAD, sealed []byte, blobsEnd int64) (Header, error) {
	plain, err := meta.Open(nil, sealed, []byte(crypto.LabelPackHeader))
	if err != nil {
		return Header{}, fmt.Errorf("pack header: %w", err)
	}
	h, err := DecodeHeader(plain)
	if err != nil {
		return h, err
	}
	if len(h.Entries) > 0 {
		last := h.Entries[len(h.Entries)-1]
		if int64(last.Offset)+int64(last.Length) != blobsEnd {
			return h, fmt.Errorf("%w: blobs end at %d, header at %d", ErrInvalid, int64(last.Offset)+int64(last.Length), blobsEnd)
		}
	} else if blobsEnd != 0 {
		return h, fmt.Errorf("%w: empty header after %d bytes", ErrInvalid, blobsEnd)
	}
	return h, nil
}

// Parse splits a whole pack into its header, checking the trailer and seal.
func Parse(meta *crypto.AEAD, data []byte) (Header, error) {
	if len(data) < TrailerSize {
		return Header{}, fmt.Errorf("%w: %d bytes", ErrInvalid, len(data))
	}
	n, err := ParseTrailer(data[len(data)-TrailerSize:], int64(len(data)))
	if err != nil {
		return Header{}, err
	}
	start := len(data) - TrailerSize - n
	return OpenHeader(meta, data[start:len(data)-TrailerSize], int64(start))
}

// SealBlob appends the stored form of payload (compression byte || body) to dst.
func SealBlob(dst []byte, a *crypto.AEAD, blobID id.ID, payload []byte) []byte {
	return a.Seal(dst, payload, blobID[:])
}

// OpenBlob opens a stored blob and returns its payload (compression byte ||
// body) appended to dst.
func OpenBlob(dst []byte, a *crypto.AEAD, blobID id.ID, stored []byte) ([]byte, error) {
	out, err := a.Open(dst, stored, blobID[:])
	if err != nil {
		return nil, err
	}
	if len(out)-len(dst) < 1 {
		return nil, fmt.Errorf("%w: empty blob payload", ErrInvalid)
	}
	return out, nil
}

// Writer assembles one pack in memory. Not safe for concurrent use.
type Writer struct {
	Kind       BlobType
	key        *crypto.AEAD
	wrappedKey []byte
	buf        []byte
	entries    []Entry
	deltas     int // entries that are delta blobs
}

// NewWriter starts a pack sealed under packKey, whose wrapped form goes into
// the header. The pack is assembled in buf[:0] (grown when too small), so a
// caller can reuse the buffers of packs it has stored.
func NewWriter(kind BlobType, packKey, wrappedKey []byte, buf []byte) (*Writer, error) {
	a, err := crypto.NewAEAD(packKey)
	if err != nil {
		return nil, err
	}
	return &Writer{Kind: kind, key: a, wrappedKey: wrappedKey, buf: buf[:0]}, nil
}

// Add seals payload as blob blobID and appends it.
func (w *Writer) Add(blobID id.ID, payload []byte, rawLength int) {
	w.AddWithBase(blobID, payload, rawLength, id.ID{})
}

// AddWithBase is Add for a blob that may be a delta: base is the base of a
// delta blob (its payload starts with CompressionDelta), null otherwise.
func (w *Writer) AddWithBase(blobID id.ID, payload []byte, rawLength int, base id.ID) {
	off := len(w.buf)
	if !base.IsNull() {
		w.deltas++
	}
	w.buf = SealBlob(w.buf, w.key, blobID, payload)
	w.entries = append(w.entries, Entry{Type: w.Kind, ID: blobID, Offset: uint32(off),
		Length: uint32(len(w.buf) - off), RawLength: uint32(rawLength), Base: base})
}

// Size is the number of bytes of blobs so far.
func (w *Writer) Size() int { return len(w.buf) }

// Fits reports whether a blob whose payload is n bytes can be added, and
// the pack finished, without growing the buffer the Writer was given (a
// copy of the whole pack into one twice its size).
func (w *Writer) Fits(n int) bool { return w.FitsWithBase(n, false) }

// FitsWithBase is Fits for a blob that is a delta when delta is set.
func (w *Writer) FitsWithBase(n int, delta bool) bool {
	entries, deltas := len(w.entries)+1, w.deltas
	if delta {
		deltas++
	}
	header := 8 + len(w.wrappedKey) + entries*EntrySize
	if deltas > 0 {
		header += entries + 32*deltas
	}
	header += 2*crypto.Overhead + TrailerSize
	return len(w.buf)+n+crypto.Overhead+header <= cap(w.buf)
}

// Count is the number of blobs so far.
func (w *Writer) Count() int { return len(w.entries) }

// Finish appends the sealed header and trailer and returns the pack's bytes
// and header. The Writer must not be used afterwards.
func (w *Writer) Finish(meta *crypto.AEAD) ([]byte, Header) {
	h := Header{Kind: w.Kind, WrappedKey: w.wrappedKey, Entries: w.entries}
	start := len(w.buf)
	w.buf = meta.Seal(w.buf, EncodeHeader(h), []byte(crypto.LabelPackHeader))
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(w.buf)-start))
	w.buf = append(w.buf, Magic...)
	return w.buf, h
}
