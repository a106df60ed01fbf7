package snapshot

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/hoard-backup/hoard/repo/id"
)

// Subset selects some of a repository's packs for check --read-data-subset.
// A group subset "N/M" selects the packs whose ID, read as a big-endian
// uint64 from its first 8 bytes, is N-1 modulo M: the M groups 1/M..M/M
// cover every pack exactly once, and a pack stays in its group as packs
// come and go. A percentage "P%" selects ceil(P% of the packs) at random.
// A size "500M" selects packs at random until the next one would take
// their total over it (at least one pack), as restic's
// --read-data-subset=SIZE does.
type Subset struct {
	N, M    uint64  // group N of M (1-based), when M > 0
	Percent float64 // else the share of packs, 0 < Percent <= 100, when > 0
	Bytes   uint64  // else the bytes of packs to read
	// Rand draws the random packs of a percentage subset; nil uses a
	// randomly seeded generator (tests inject a seeded one, to be repeatable).
	Rand *rand.Rand
}

// ParseSubset parses "N/M", "P%" or a size: a number of bytes with an
// optional suffix K, M, G or T (binary multiples: 500M is 500 MiB).
func ParseSubset(s string) (Subset, error) {
	s = strings.TrimSpace(s)
	if n, ok := parseSize(s); ok {
		if n == 0 {
			return Subset{}, fmt.Errorf("snapshot: subset %q: want a size above 0", s)
		}
		return Subset{Bytes: n}, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(v > 0 && v <= 100) {
			return Subset{}, fmt.Errorf("snapshot: subset %q: want a percentage above 0 and at most 100", s)
		}
		return Subset{Percent: v}, nil
	}
	ns, ms, ok := strings.Cut(s, "/")
	n, err1 := strconv.ParseUint(ns, 10, 64)
	m, err2 := strconv.ParseUint(ms, 10, 64)
	if !ok || err1 != nil || err2 != nil || m == 0 || n == 0 || n > m {
		return Subset{}, fmt.Errorf("snapshot: subset %q: want N/M with 1 <= N <= M, P%%, or a size such as 500M", s)
	}
	return Subset{N: n, M: m}, nil
}

// parseSize reads "123", "500M", "1.5G" (K, M, G, T: powers of 1024; a
// trailing B or iB is allowed). ok is false for anything else.
func parseSize(s string) (uint64, bool) {
	u := strings.ToUpper(s)
	u = strings.TrimSuffix(strings.TrimSuffix(u, "B"), "I")
	mult := 1.0
	if u != "" {
		if i := strings.IndexByte("KMGT", u[len(u)-1]); i >= 0 {
			mult = float64(uint64(1) << (10 * (i + 1)))
			u = u[:len(u)-1]
		}
	}
	if u == "" || strings.Trim(u, "0123456789.") != "" {
		return 0, false
	}
	v, err := strconv.ParseFloat(u, 64)
	if err != nil || v*mult >= 1<<63 {
		return 0, false
	}
	return uint64(v * mult), true
}

func (s Subset) String() string {
	if s.M > 0 {
		return fmt.Sprintf("%d/%d", s.N, s.M)
	}
	if s.Percent == 0 {
		return formatSize(s.Bytes)
	}
	return strconv.FormatFloat(s.Percent, 'f', -1, 64) + "%"
}

// InGroup reports whether pack p belongs to group N of M.
func (s Subset) InGroup(p id.ID) bool {
	return binary.BigEndian.Uint64(p[:8])%s.M == s.N-1
}

// formatSize writes n as ParseSubset reads it, in the largest unit that
// divides it.
func formatSize(n uint64) string {
	for i := 4; i > 0; i-- {
		if u := uint64(1) << (10 * i); n >= u && n%u == 0 {
			return strconv.FormatUint(n/u, 10) + string("KMGT"[i-1])
		}
	}
	return strconv.FormatUint(n, 10)
}

// Select returns the set of packs among packs that the subset reads;
// sizes[i] is the size of packs[i] (used by a size subset only).
func (s Subset) Select(packs []id.ID, sizes []uint64) map[id.ID]bool {
	out := map[id.ID]bool{}
	if s.M > 0 {
		for _, p := range packs {
			if s.InGroup(p) {
				out[p] = true
			}
		}
		return out
	}
	rng := s.Rand
	if rng == nil {
		rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	order := rng.Perm(len(packs))
	if s.Percent == 0 {
		var total uint64
		for _, i := range order {
			if len(out) > 0 && total+sizes[i] > s.Bytes {
				continue // a smaller pack may still fit
			}
			total += sizes[i]
			out[packs[i]] = true
		}
		return out
	}
	n := int(float64(len(packs))*s.Percent/100 + 0.999999)
	n = min(n, len(packs))
	for _, i := range order[:n] {
		out[packs[i]] = true
	}
	return out
}
