package pitr

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
	"github.com/hoard-backup/hoard/repo/wal"
	"github.com/hoard-backup/hoard/snapshot"
)

// Expired returns, per cluster, the catalog items that no kept base backup
// needs: segments (and their .partial and .backup files) before the first
// segment of the cluster's oldest base backup in sns. Timeline history
// files are always kept, and so is all WAL of a cluster without a base
// backup (it may be about to get one).
func Expired(a *Archive, sns []*snapshot.Snapshot) map[string][]wal.Item {
	out := map[string][]wal.Item{}
	for _, c := range a.Clusters() {
		bbs := BaseBackups(sns, c)
		if len(bbs) == 0 {
			continue
		}
		oldest := bbs[0]
		for _, b := range bbs[1:] {
			if b.StartWAL.SegNo(b.SegSize) < oldest.StartWAL.SegNo(oldest.SegSize) {
				oldest = b
			}
		}
		first := oldest.StartWAL.SegNo(oldest.SegSize)
		for _, it := range a.Items(c) {
			if it.Name.Kind != wal.History && it.Name.SegNo(oldest.SegSize) < first {
				out[c] = append(out[c], it)
			}
		}
		sort.Slice(out[c], func(i, j int) bool { return out[c][i].Name.File < out[c][j].Name.File })
	}
	return out
}

// Forget removes the catalog entries Expired names (their blobs stay until
// prune). The caller holds an exclusive lock. It returns how many it
// removed per cluster.
func Forget(ctx context.Context, r *repo.Repository, expired map[string][]wal.Item) (int, error) {
	n := 0
	for c, items := range expired {
		for _, it := range items {
			if err := wal.Remove(ctx, r, c, it.Name.File); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// Problem is something check found wrong with the archived WAL.
type Problem struct {
	File string // wal/<name>, or wal/<cluster> for a gap
	Err  error
}

// Check opens every catalog entry and makes sure its blobs are indexed
// (and not among bad, the blobs check found damaged), and reports the
// gaps in each timeline's segments from the oldest base backup on: there
// point-in-time recovery cannot replay past.
func Check(ctx context.Context, r *repo.Repository, sns []*snapshot.Snapshot, bad map[id.ID]string) ([]Problem, error) {
	a, err := ReadArchive(ctx, r.Backend())
	if err != nil {
		return nil, err
	}
	var probs []Problem
	for _, c := range a.Clusters() {
		if bbs := BaseBackups(sns, c); len(bbs) > 0 {
			a.SetSegmentSize(c, bbs[0].SegSize)
		}
		for _, it := range a.Items(c) {
			name, _ := wal.HandleName(c, it.Name.File)
			e, err := wal.Load(ctx, r, c, it.Name.File)
			if err != nil {
				probs = append(probs, Problem{File: "wal/" + name, Err: err})
				continue
			}
			for _, b := range e.Content {
				if where, ok := bad[b]; ok {
					probs = append(probs, Problem{File: "wal/" + name, Err: fmt.Errorf("%w: piece %s is damaged (%s)", repo.ErrInvalidData, b.Str(), where)})
					break
				}
				if !r.Index().Has(pack.DataBlob, b) {
					probs = append(probs, Problem{File: "wal/" + name, Err: fmt.Errorf("%w: piece %s is in no index", repo.ErrBlobNotFound, b.Str())})
					break
				}
			}
		}
	}
	for _, tl := range a.Timelines() {
		for _, m := range tl.Missing {
			probs = append(probs, Problem{File: "wal/" + tl.Cluster, Err: fmt.Errorf("segment %s of timeline %d is not archived: point-in-time recovery cannot replay past it", m, tl.Timeline)})
		}
	}
	return probs, nil
}

// Window is the span of time to which a database can be restored.
type Window struct {
	Cluster string    `json:"database"`
	From    time.Time `json:"from"`                // the oldest base backup's end
	To      time.Time `json:"to"`                  // the newest archived segment's push
	Last    string    `json:"last_wal"`            // that segment
	Gap     string    `json:"first_gap,omitempty"` // the first missing segment after the oldest base backup, if any
}

// RecoveryWindow returns the window of cluster, or false without a base
// backup. Only the newest segment's entry is opened.
func RecoveryWindow(ctx context.Context, r *repo.Repository, a *Archive, sns []*snapshot.Snapshot, cluster string) (Window, bool, error) {
	bbs := BaseBackups(sns, cluster)
	if len(bbs) == 0 {
		return Window{}, false, nil
	}
	w := Window{Cluster: cluster, From: bbs[0].StopTime, To: bbs[len(bbs)-1].StopTime}
	a.SetSegmentSize(cluster, bbs[0].SegSize)
	err := CheckWAL(ctx, r, a, cluster, bbs[0], Target{})
	if me, ok := err.(*MissingError); ok {
		w.Gap = me.Segment
	} else if err != nil {
		return w, true, err
	}
	var newest wal.Item
	found := false
	for _, it := range a.Items(cluster) {
		if it.Name.Kind == wal.Segment && (!found || it.Name.Timeline > newest.Name.Timeline ||
			it.Name.Timeline == newest.Name.Timeline && it.Name.File > newest.Name.File) {
			newest, found = it, true
		}
	}
	if found {
		e, err := wal.Load(ctx, r, cluster, newest.Name.File)
		if err != nil {
			return w, true, err
		}
		w.Last = e.File
		if e.Time.After(w.To) {
			w.To = e.Time
		}
	}
	return w, true, nil
}
