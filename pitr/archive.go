package pitr

import (
	"context"
	"fmt"
	"sort"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo/wal"
)

// DefaultSegmentSize is PostgreSQL's default WAL segment size; base
// backups record a cluster's own (details wal_segment_size).
const DefaultSegmentSize = 16 << 20

// Archive is the archived WAL as the catalog's names show it: no keys are
// needed to read it.
type Archive struct {
	items   map[string][]wal.Item // by cluster
	segSize map[string]int64
}

// ReadArchive lists the WAL catalog.
func ReadArchive(ctx context.Context, be backends.Backend) (*Archive, error) {
	items, err := wal.List(ctx, be)
	if err != nil {
		return nil, err
	}
	a := &Archive{items: map[string][]wal.Item{}, segSize: map[string]int64{}}
	for _, it := range items {
		a.items[it.Cluster] = append(a.items[it.Cluster], it)
	}
	return a, nil
}

// SetSegmentSize records a cluster's WAL segment size (default 16 MiB).
func (a *Archive) SetSegmentSize(cluster string, n int64) {
	if n >= 1<<20 && n <= 1<<30 && n&(n-1) == 0 {
		a.segSize[cluster] = n
	}
}

// SegmentSize is a cluster's WAL segment size.
func (a *Archive) SegmentSize(cluster string) int64 {
	if n := a.segSize[cluster]; n != 0 {
		return n
	}
	return DefaultSegmentSize
}

// Clusters names the clusters with archived WAL, sorted.
func (a *Archive) Clusters() []string {
	var out []string
	for c := range a.items {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Items returns a cluster's catalog items.
func (a *Archive) Items(cluster string) []wal.Item { return a.items[cluster] }

// Has reports whether a WAL file of the cluster is archived.
func (a *Archive) Has(cluster, file string) bool {
	for _, it := range a.items[cluster] {
		if it.Name.File == file {
			return true
		}
	}
	return false
}

// Timeline describes one timeline's archived segments.
type Timeline struct {
	Cluster  string   `json:"database"`
	Timeline uint32   `json:"timeline"`
	First    string   `json:"first"`
	Last     string   `json:"last"`
	Segments int      `json:"segments"`
	Missing  []string `json:"missing,omitempty"` // segments between First and Last that are not archived
	History  bool     `json:"history"`           // its .history file is archived (timelines after 1)
}

// maxReportedGap bounds the names Missing lists for one gap.
const maxReportedGap = 1000

// Timelines returns every cluster's timelines with their gaps, sorted by
// cluster and timeline.
func (a *Archive) Timelines() []Timeline {
	var out []Timeline
	for _, c := range a.Clusters() {
		size := a.SegmentSize(c)
		segs := map[uint32][]uint64{}
		hist := map[uint32]bool{}
		for _, it := range a.items[c] {
			switch it.Name.Kind {
			case wal.Segment:
				segs[it.Name.Timeline] = append(segs[it.Name.Timeline], it.Name.SegNo(size))
			case wal.History:
				hist[it.Name.Timeline] = true
			}
		}
		var tlis []uint32
		for t := range segs {
			tlis = append(tlis, t)
		}
		sort.Slice(tlis, func(i, j int) bool { return tlis[i] < tlis[j] })
		for _, t := range tlis {
			s := segs[t]
			sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
			tl := Timeline{Cluster: c, Timeline: t, First: wal.SegmentName(t, s[0], size),
				Last: wal.SegmentName(t, s[len(s)-1], size), Segments: len(s), History: t == 1 || hist[t]}
			for i := 1; i < len(s); i++ {
				for n := s[i-1] + 1; n < s[i] && len(tl.Missing) < maxReportedGap; n++ {
					tl.Missing = append(tl.Missing, wal.SegmentName(t, n, size))
				}
			}
			out = append(out, tl)
		}
	}
	return out
}

// segment reports whether segment segNo is archived on timeline tli or a
// later one up to maxTLI, and returns the highest such timeline.
func (a *Archive) segment(cluster string, segNo uint64, minTLI uint32) (uint32, bool) {
	size := a.SegmentSize(cluster)
	best, ok := uint32(0), false
	for _, it := range a.items[cluster] {
		if (it.Name.Kind == wal.Segment || it.Name.Kind == wal.Partial) && it.Name.Timeline >= minTLI && it.Name.SegNo(size) == segNo {
			if it.Name.Kind == wal.Segment && it.Name.Timeline >= best {
				best, ok = it.Name.Timeline, true
			}
		}
	}
	return best, ok
}

// lastSegment is the highest archived segment number of the cluster on
// timelines from minTLI on.
func (a *Archive) lastSegment(cluster string, minTLI uint32) (uint64, bool) {
	size := a.SegmentSize(cluster)
	var last uint64
	found := false
	for _, it := range a.items[cluster] {
		if it.Name.Kind == wal.Segment && it.Name.Timeline >= minTLI && (!found || it.Name.SegNo(size) > last) {
			last, found = it.Name.SegNo(size), true
		}
	}
	return last, found
}

// MissingError names the first WAL segment a restore needs that is not
// archived.
type MissingError struct {
	Cluster string
	Segment string
	Needed  string // what needs it
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("pitr: WAL segment %s of %s is not archived, and %s needs it (hoard wal list shows the gaps)", e.Segment, e.Cluster, e.Needed)
}
