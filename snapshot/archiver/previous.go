package archiver

import (
	"slices"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
)

// previous follows the content of the same file or stream in the parent
// snapshot while it is read again, so that chunks it had are recognised
// by their hash alone, without the search for cut points (chunk.Chunker.Take
// says why that gives the same cuts). Today's dump of a database is mostly
// yesterday's: this takes the fingerprinting, the larger part of the CPU a
// daily backup spends, off the unchanged stretches.
//
// In step, the chunk expected next is the one after the last one matched.
// Out of step (after a change), every chunk cut is looked up among the old
// ones; the first one found puts it back in step after it.
type previous struct {
	r    *repo.Repository
	ids  []id.ID
	next int           // index in ids of the chunk expected next; -1 out of step
	at   map[id.ID]int // first index of each ID, made when first out of step
	lost int           // chunks cut out of step since the last one recognised

	// Where the old and the new content were last known to be in step:
	// old chunk syncIdx ended where the new content is at syncNew. A new
	// chunk out of step is placed in the old content by that shift (see
	// base).
	syncIdx int
	syncNew int64
	offs    []int64 // start of each old chunk, and the end; made when first needed
	noOffs  bool    // an old chunk's length is unknown: no bases
}

func newPrevious(r *repo.Repository, ids []id.ID) *previous {
	if len(ids) < 2 {
		return nil // the last old chunk is never expected (below)
	}
	return &previous{r: r, ids: ids, syncIdx: -1}
}

// expected is a chunk expected at a place of the new content.
type expected struct {
	id id.ID
	n  int
}

// expectRun appends to out the chunks expected next, in order: at most
// max of them and, past the first, no more than limit bytes in all. A
// chunk no index holds any more ends the run (it is chunked when reached).
// The old content's last chunk is never expected: it ended where that
// stream ended, which need not be a cut once more bytes follow.
func (p *previous) expectRun(out []expected, max, limit int) []expected {
	if p == nil || p.next < 0 {
		return out
	}
	total := 0
	for i := p.next; i < len(p.ids)-1 && len(out) < max; i++ {
		locs := p.r.Index().Lookup(repo.DataBlob, p.ids[i])
		if len(locs) == 0 {
			break
		}
		n := int(locs[0].RawLength)
		if len(out) > 0 && total+n > limit {
			break
		}
		out = append(out, expected{p.ids[i], n})
		total += n
	}
	return out
}

// matched says that the expected chunk was found, ending at newEnd of the
// new content.
func (p *previous) matched(newEnd int64) {
	p.syncIdx, p.syncNew = p.next, newEnd
	p.next, p.lost = p.next+1, 0
}

// missed says that the bytes were not the expected chunk.
func (p *previous) missed() { p.next = -1 }

// cut reports a chunk cut out of step, ending at newEnd of the new
// content; if the old content had it, the chunk after it is expected next.
func (p *previous) cut(bid id.ID, newEnd int64) {
	if p.at == nil {
		p.at = make(map[id.ID]int, len(p.ids))
		for i := len(p.ids) - 1; i >= 0; i-- {
			p.at[p.ids[i]] = i
		}
	}
	if i, ok := p.at[bid]; ok {
		p.next, p.lost = i+1, 0
		p.syncIdx, p.syncNew = i, newEnd
	} else {
		p.lost++
	}
}

// oneByOne says whether to search for the next cut alone rather than
// chunk a whole round ahead in parallel: while a change is likely to end
// within a few chunks. A stream that goes on differing (new data) is
// chunked in parallel again after maxLost chunks.
func (p *previous) oneByOne() bool { return p != nil && p.lost < maxLost }

// maxLost is how many chunks out of step are cut one by one.
const maxLost = 16

// previousOf returns what to follow for a file whose node in the parent
// snapshot is old (nil if none).
func (a *Archiver) previousOf(old *snapshot.Node) *previous {
	if old == nil || old.Type != snapshot.TypeFile {
		return nil
	}
	return newPrevious(a.r, old.Content)
}

// base returns the old chunk that stood where the new chunk [start,
// start+n) of the new content stands: the one holding its middle, once the
// new content is shifted by how much it had grown or shrunk where the two
// were last in step. A changed chunk is stored as a delta against it (repo
// SaveDataBlob). Null when the old content's layout is unknown.
func (p *previous) base(start int64, n int) id.ID {
	if p == nil || p.noOffs {
		return id.ID{}
	}
	if p.offs == nil {
		offs := make([]int64, len(p.ids)+1)
		for i, bid := range p.ids {
			locs := p.r.Index().Lookup(repo.DataBlob, bid)
			if len(locs) == 0 {
				p.noOffs = true
				return id.ID{}
			}
			offs[i+1] = offs[i] + int64(locs[0].RawLength)
		}
		p.offs = offs
	}
	shift := p.syncNew - p.offs[p.syncIdx+1]
	mid := start + int64(n)/2 - shift
	if mid < 0 || mid >= p.offs[len(p.ids)] {
		return id.ID{}
	}
	// The last start at or before mid.
	i, found := slices.BinarySearch(p.offs, mid)
	if !found {
		i--
	}
	return p.ids[i]
}
