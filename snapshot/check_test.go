package snapshot_test

import (
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
)

// countingBackend counts whole-file loads of packs, which is how check
// reads a pack (blob loads are ranged).
type countingBackend struct {
	backends.Backend
	mu    sync.Mutex
	reads map[string]int
}

func (b *countingBackend) Load(ctx context.Context, h backends.Handle, length int, offset int64, fn func(io.Reader) error) error {
	if h.Type == backends.PackFile && length == 0 && offset == 0 {
		b.mu.Lock()
		b.reads[h.Name]++
		b.mu.Unlock()
	}
	return b.Backend.Load(ctx, h, length, offset, fn)
}

// corruptFile flips one byte in the middle of a file of be.
func corruptFile(t *testing.T, be backends.Backend, h backends.Handle) {
	t.Helper()
	ctx := context.Background()
	raw, err := backends.LoadAll(ctx, be, h)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/3] ^= 0x40
	if err := be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := be.Save(ctx, h, backends.NewByteReader(raw)); err != nil {
		t.Fatal(err)
	}
}

func TestParseSubset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want string
	}{
		{"1/2", true, "1/2"}, {"3/3", true, "3/3"}, {"10%", true, "10%"}, {"2.5%", true, "2.5%"}, {"100%", true, "100%"},
		{"500M", true, "500M"}, {"500m", true, "500M"}, {"1G", true, "1G"}, {"1.5G", true, "1536M"}, {"2048", true, "2K"},
		{"100MiB", true, "100M"}, {"3KB", true, "3K"}, {"1000", true, "1000"},
		{"0M", false, ""}, {"M", false, ""}, {"5X", false, ""}, {"-1M", false, ""},
		{"0/2", false, ""}, {"3/2", false, ""}, {"1/0", false, ""}, {"0%", false, ""}, {"101%", false, ""}, {"x", false, ""}, {"1/", false, ""},
	} {
		s, err := snapshot.ParseSubset(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSubset(%q): err %v", tc.in, err)
			continue
		}
		if tc.ok && s.String() != tc.want {
			t.Errorf("ParseSubset(%q) = %s", tc.in, s)
		}
	}
}

func TestCheckReadDataSubset(t *testing.T) {
	ctx := context.Background()
	f := newPruneFixture(t, 5, 12)
	cb := &countingBackend{Backend: f.be, reads: map[string]int{}}
	open := func() *repo.Repository {
		r, err := repo.Open(ctx, cb, repo.Options{Passphrase: []byte(prunePass)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	var all []id.ID
	var dataPack id.ID
	r := open()
	if _, err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range r.Index().Packs() {
		all = append(all, p.ID)
		if p.Kind == repo.DataBlob {
			dataPack = p.ID
		}
	}
	if len(all) < 4 {
		t.Fatalf("only %d packs", len(all))
	}

	// 1/2 and 2/2 read every pack exactly once between them.
	total := 0
	for _, sub := range []string{"1/2", "2/2"} {
		s, err := snapshot.ParseSubset(sub)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := snapshot.Check(ctx, open(), snapshot.CheckOptions{ReadSubset: &s})
		if err != nil || !rep.OK() {
			t.Fatalf("check %s: %v %+v", sub, err, rep)
		}
		total += rep.PacksRead
		t.Logf("subset %s read %d of %d packs", sub, rep.PacksRead, len(all))
	}
	if total != len(all) {
		t.Errorf("subsets read %d packs, want %d", total, len(all))
	}
	for _, p := range all {
		if n := cb.reads[p.String()]; n != 1 {
			t.Errorf("pack %s read %d times, want 1", p.Str(), n)
		}
	}

	// A percentage reads ceil(P% of the packs), chosen by the injected generator.
	clear(cb.reads)
	s := snapshot.Subset{Percent: 25, Rand: rand.New(rand.NewPCG(1, 2))}
	rep, err := snapshot.Check(ctx, open(), snapshot.CheckOptions{ReadSubset: &s})
	if err != nil || !rep.OK() {
		t.Fatalf("check 25%%: %v %+v", err, rep)
	}
	if want := (len(all) + 3) / 4; rep.PacksRead != want || len(cb.reads) != want {
		t.Errorf("25%% read %d packs (%d loads), want %d", rep.PacksRead, len(cb.reads), want)
	}

	// A size reads random packs whose sizes add up to no more than it (at
	// least one pack).
	var sizes = map[id.ID]uint64{}
	var smallest, sum uint64 = ^uint64(0), 0
	for _, p := range r.Index().Packs() {
		sizes[p.ID] = p.Size
		smallest, sum = min(smallest, p.Size), sum+p.Size
	}
	for _, limit := range []uint64{1, smallest, sum / 2, sum} {
		clear(cb.reads)
		s := snapshot.Subset{Bytes: limit, Rand: rand.New(rand.NewPCG(3, 4))}
		rep, err := snapshot.Check(ctx, open(), snapshot.CheckOptions{ReadSubset: &s})
		if err != nil || !rep.OK() {
			t.Fatalf("check %s: %v %+v", s, err, rep)
		}
		var read uint64
		for name := range cb.reads {
			p, _ := id.Parse(name)
			read += sizes[p]
		}
		switch {
		case rep.PacksRead == 0 || rep.PacksRead != len(cb.reads):
			t.Errorf("size %d: read %d packs (%d loads)", limit, rep.PacksRead, len(cb.reads))
		case rep.PacksRead > 1 && read > limit:
			t.Errorf("size %d: read %d bytes in %d packs", limit, read, rep.PacksRead)
		case limit == sum && rep.PacksRead != len(all):
			t.Errorf("size of all packs read %d of %d packs", rep.PacksRead, len(all))
		}
	}

	// A damaged data pack is found by the subset holding it, and only by it.
	corruptFile(t, f.be, backends.Handle{Type: backends.PackFile, Name: dataPack.String()})
	for _, n := range []uint64{1, 2} {
		s := snapshot.Subset{N: n, M: 2}
		rep, err := snapshot.Check(ctx, open(), snapshot.CheckOptions{ReadSubset: &s})
		if err != nil {
			t.Fatal(err)
		}
		if found, want := !rep.OK(), s.InGroup(dataPack); found != want {
			t.Errorf("subset %s: found damage %v, pack in subset %v: %+v", s, found, want, rep.Problems)
		}
	}
}
