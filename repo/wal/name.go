package wal

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is what a WAL file is.
type Kind int

// The WAL files PostgreSQL archives.
const (
	Segment Kind = iota // 000000010000000000000003
	History             // 00000002.history
	Backup              // 000000010000000000000003.00000028.backup
	Partial             // 000000010000000000000003.partial
)

func (k Kind) String() string {
	return [...]string{"segment", "history", "backup", "partial"}[k]
}

// Name is a parsed WAL file name.
type Name struct {
	File     string
	Kind     Kind
	Timeline uint32
	Log, Seg uint32 // the segment's two halves (not for History)
}

// SegNo is the segment's number in the WAL of its timeline, for segments
// of segSize bytes: log * (2^32 / segSize) + seg.
func (n Name) SegNo(segSize int64) uint64 {
	return uint64(n.Log)*(1<<32/uint64(segSize)) + uint64(n.Seg)
}

// SegmentName is the file name of segment segNo on timeline tli.
func SegmentName(tli uint32, segNo uint64, segSize int64) string {
	per := 1 << 32 / uint64(segSize)
	return fmt.Sprintf("%08X%08X%08X", tli, segNo/per, segNo%per)
}

// ParseName parses a WAL file name as PostgreSQL writes it (uppercase hex).
func ParseName(file string) (Name, error) {
	bad := fmt.Errorf("%w: %q is not a WAL file name", ErrName, file)
	n := Name{File: file}
	base, ext, _ := strings.Cut(file, ".")
	switch {
	case len(base) == 8 && ext == "history":
		n.Kind = History
	case len(base) == 24 && ext == "":
		n.Kind = Segment
	case len(base) == 24 && ext == "partial":
		n.Kind = Partial
	case len(base) == 24 && len(ext) == len("00000028.backup") && strings.HasSuffix(ext, ".backup") && upperHex(ext[:8]):
		n.Kind = Backup
	default:
		return Name{}, bad
	}
	if !upperHex(base) {
		return Name{}, bad
	}
	tli, _ := strconv.ParseUint(base[:8], 16, 32)
	if tli == 0 {
		return Name{}, bad
	}
	n.Timeline = uint32(tli)
	if n.Kind != History {
		l, _ := strconv.ParseUint(base[8:16], 16, 32)
		s, _ := strconv.ParseUint(base[16:24], 16, 32)
		n.Log, n.Seg = uint32(l), uint32(s)
	}
	return n, nil
}

func upperHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}
