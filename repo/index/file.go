// Package index says which pack holds each blob: the index file format
// (docs/FORMAT.md, section 7) and a compact in-memory index built from
// sorted arrays.
package index

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
)

// ErrInvalid marks bytes that are not a well-formed index file.
var ErrInvalid = errors.New("index: invalid data")

// Magic starts every index plaintext without delta blobs.
const Magic = "HIX1"

// MagicDelta starts an index plaintext whose blob records carry a flags
// byte and, for delta blobs, the base's ID (repository version 2).
const MagicDelta = "HIX2"

// Pack is one pack as an index file lists it.
type Pack struct {
	ID         id.ID
	Size       uint64
	Kind       pack.BlobType
	WrappedKey []byte
	Blobs      []pack.Entry
}

// File is the content of one index file.
type File struct {
	Supersedes []id.ID
	Packs      []Pack
}

const blobRecordSize = 1 + 32 + 4 + 4 + 4

// Encode returns the plaintext of f: HIX1, or HIX2 when a blob is a delta.
func Encode(f *File) []byte {
	v2 := f.hasDelta()
	n := 4 + 4 + 32*len(f.Supersedes) + 4
	for _, p := range f.Packs {
		n += 32 + 8 + 1 + 2 + len(p.WrappedKey) + 4 + blobRecordSize*len(p.Blobs)
		if v2 {
			n += len(p.Blobs)
		}
	}
	b := make([]byte, 0, n)
	if v2 {
		b = append(b, MagicDelta...)
	} else {
		b = append(b, Magic...)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f.Supersedes)))
	for _, s := range f.Supersedes {
		b = append(b, s[:]...)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f.Packs)))
	for _, p := range f.Packs {
		b = append(b, p.ID[:]...)
		b = binary.LittleEndian.AppendUint64(b, p.Size)
		b = append(b, byte(p.Kind))
		b = binary.LittleEndian.AppendUint16(b, uint16(len(p.WrappedKey)))
		b = append(b, p.WrappedKey...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Blobs)))
		for _, e := range p.Blobs {
			b = append(b, byte(e.Type))
			b = append(b, e.ID[:]...)
			b = binary.LittleEndian.AppendUint32(b, e.Offset)
			b = binary.LittleEndian.AppendUint32(b, e.Length)
			b = binary.LittleEndian.AppendUint32(b, e.RawLength)
			if v2 {
				if e.IsDelta() {
					b = append(b, pack.FlagDelta)
					b = append(b, e.Base[:]...)
				} else {
					b = append(b, 0)
				}
			}
		}
	}
	return b
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: truncated", ErrInvalid)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

// count reads a uint32 count and checks that count records of at least
// minSize bytes could fit in what is left, so hostile counts allocate nothing.
func (r *reader) count(minSize int) int {
	n := r.u32()
	if r.err == nil && uint64(n)*uint64(minSize) > uint64(len(r.b)) {
		r.err = fmt.Errorf("%w: count %d exceeds remaining %d bytes", ErrInvalid, n, len(r.b))
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

// Decode parses an index plaintext.
func Decode(b []byte) (*File, error) {
	r := &reader{b: b}
	m := r.take(4)
	if r.err == nil && string(m) != Magic && string(m) != MagicDelta {
		return nil, fmt.Errorf("%w: bad magic", ErrInvalid)
	}
	v2 := string(m) == MagicDelta
	recSize := blobRecordSize
	if v2 {
		recSize++
	}
	f := &File{}
	ns := r.count(32)
	if ns > 0 {
		f.Supersedes = make([]id.ID, ns)
	}
	for i := 0; i < ns; i++ {
		copy(f.Supersedes[i][:], r.take(32))
	}
	np := r.count(32 + 8 + 1 + 2 + 4)
	if np > 0 {
		f.Packs = make([]Pack, np)
	}
	for i := 0; i < np && r.err == nil; i++ {
		p := &f.Packs[i]
		copy(p.ID[:], r.take(32))
		if s := r.take(8); s != nil {
			p.Size = binary.LittleEndian.Uint64(s)
		}
		if k := r.take(1); k != nil {
			p.Kind = pack.BlobType(k[0])
			if !p.Kind.Valid() {
				return nil, fmt.Errorf("%w: pack kind %d", ErrInvalid, k[0])
			}
		}
		var kl int
		if k := r.take(2); k != nil {
			kl = int(binary.LittleEndian.Uint16(k))
		}
		p.WrappedKey = append([]byte(nil), r.take(kl)...)
		nb := r.count(recSize)
		if nb > 0 {
			p.Blobs = make([]pack.Entry, nb)
		}
		for j := 0; j < nb; j++ {
			e := &p.Blobs[j]
			rec := r.take(blobRecordSize)
			if rec == nil {
				break
			}
			e.Type = pack.BlobType(rec[0])
			if e.Type != p.Kind {
				return nil, fmt.Errorf("%w: %s blob in %s pack %s", ErrInvalid, e.Type, p.Kind, p.ID.Str())
			}
			copy(e.ID[:], rec[1:33])
			e.Offset = binary.LittleEndian.Uint32(rec[33:])
			e.Length = binary.LittleEndian.Uint32(rec[37:])
			e.RawLength = binary.LittleEndian.Uint32(rec[41:])
			if uint64(e.Offset)+uint64(e.Length) > p.Size {
				return nil, fmt.Errorf("%w: blob %s beyond the end of pack %s", ErrInvalid, e.ID.Str(), p.ID.Str())
			}
			if v2 {
				flags := r.take(1)
				if flags == nil {
					break
				}
				switch flags[0] {
				case 0:
				case pack.FlagDelta:
					base := r.take(32)
					if base == nil {
						break
					}
					copy(e.Base[:], base)
					if e.Type != pack.DataBlob || e.Base.IsNull() || e.Base == e.ID {
						return nil, fmt.Errorf("%w: %s blob %s with base %s", ErrInvalid, e.Type, e.ID.Str(), e.Base.Str())
					}
				default:
					return nil, fmt.Errorf("%w: blob flags %d", ErrInvalid, flags[0])
				}
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrInvalid, len(r.b))
	}
	if v2 && !f.hasDelta() {
		// HIX2 is written only for files with a delta blob, so that an
		// index file has one encoding.
		return nil, fmt.Errorf("%w: %s without a delta blob", ErrInvalid, MagicDelta)
	}
	return f, nil
}

func (f *File) hasDelta() bool {
	for _, p := range f.Packs {
		for i := range p.Blobs {
			if p.Blobs[i].IsDelta() {
				return true
			}
		}
	}
	return false
}
