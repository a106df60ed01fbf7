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
type Subset struct {
	N, M    uint64  // group N of M (1-based), when M > 0
	Percent float64 // else the share of packs, 0 < Percent <= 100
	// Rand draws the random packs of a percentage subset; nil uses a
	// randomly seeded generator (tests inject a seeded one, to be repeatable).
	Rand *rand.Rand
}

// ParseSubset parses "N/M" or "P%".
func ParseSubset(s string) (Subset, error) {
	s = strings.TrimSpace(s)
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
		return Subset{}, fmt.Errorf("snapshot: subset %q: want N/M with 1 <= N <= M, or P%%", s)
	}
	return Subset{N: n, M: m}, nil
}

func (s Subset) String() string {
	if s.M > 0 {
		return fmt.Sprintf("%d/%d", s.N, s.M)
	}
	return strconv.FormatFloat(s.Percent, 'f', -1, 64) + "%"
}

// InGroup reports whether pack p belongs to group N of M.
func (s Subset) InGroup(p id.ID) bool {
	return binary.BigEndian.Uint64(p[:8])%s.M == s.N-1
}

// Select returns the set of packs among packs that the subset reads.
func (s Subset) Select(packs []id.ID) map[id.ID]bool {
	out := map[id.ID]bool{}
	if s.M > 0 {
		for _, p := range packs {
			if s.InGroup(p) {
				out[p] = true
			}
		}
		return out
	}
	n := int(float64(len(packs))*s.Percent/100 + 0.999999)
	n = min(n, len(packs))
	rng := s.Rand
	if rng == nil {
		rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	for _, i := range rng.Perm(len(packs))[:n] {
		out[packs[i]] = true
	}
	return out
}
