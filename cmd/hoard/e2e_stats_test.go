package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestE2EStatsDiff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	rng := rand.New(rand.NewPCG(testSeed(t, 31), 1))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	write := func(rel string, b []byte) {
		t.Helper()
		p := filepath.Join(src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := random(100 << 10)
	write("a.txt", a)
	write("b.txt", a) // a duplicate: deduplicated
	write("sub/c.bin", make([]byte, 200<<10))
	write("d", random(1000))
	first := e.mustBackup(nil, src).ID

	type stats struct {
		Snapshots        int     `json:"snapshots"`
		Files            uint64  `json:"files"`
		RestoreSize      uint64  `json:"restore_size"`
		RawSize          uint64  `json:"raw_data_size"`
		StoredSize       uint64  `json:"stored_size"`
		PackSize         uint64  `json:"pack_size"`
		Blobs            int     `json:"blobs"`
		Packs            int     `json:"packs"`
		DedupRatio       float64 `json:"dedup_ratio"`
		CompressionRatio float64 `json:"compression_ratio"`
	}
	var s1 stats
	e.mustRunJSON(&s1, "stats", first)
	restore1 := uint64(2*(100<<10) + 200<<10 + 1000)
	if s1.Snapshots != 1 || s1.Files != 4 || s1.RestoreSize != restore1 {
		t.Fatalf("stats: %+v", s1)
	}
	// Raw data: a once, the zeroes (chunks of zeroes repeat: at most once
	// each), d, and the two trees' JSON.
	if s1.RawSize <= 100<<10+1000 || s1.RawSize >= restore1-(100<<10)+4096 {
		t.Errorf("raw data size %d", s1.RawSize)
	}
	if s1.DedupRatio <= 1.2 || s1.CompressionRatio <= 1.5 || s1.StoredSize >= s1.RawSize || s1.PackSize < s1.StoredSize {
		t.Errorf("ratios: %+v", s1)
	}
	if s1.Blobs < 5 || s1.Packs < 2 {
		t.Errorf("counts: %+v", s1)
	}

	// Second snapshot: d changed, b.txt removed, a.txt chmodded, sub/new.txt and e/f added.
	write("d", random(1000))
	if err := os.Remove(filepath.Join(src, "b.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "a.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	write("sub/new.txt", []byte("new\n"))
	write("e/f", []byte("eff\n"))
	second := e.mustBackup(nil, src).ID

	var all stats
	e.mustRunJSON(&all, "stats")
	if want := restore1 + (100 << 10) + 200<<10 + 1000 + 4 + 4; all.Snapshots != 2 || all.Files != 9 || all.RestoreSize != want {
		t.Errorf("stats of both: %+v (want restore size %d)", all, want)
	}

	var d struct {
		Changes []struct {
			Kind string `json:"kind"`
			Path string `json:"path"`
		} `json:"changes"`
		Added, Removed, Modified, Metadata int
	}
	e.mustRunJSON(&d, "diff", first, second)
	var got []string
	for _, c := range d.Changes {
		got = append(got, c.Kind+" "+c.Path)
	}
	want := []string{"U /src/a.txt", "- /src/b.txt", "M /src/d", "+ /src/e/", "+ /src/e/f", "+ /src/sub/new.txt"}
	if !slices.Equal(got, want) || d.Added != 3 || d.Removed != 1 || d.Modified != 1 || d.Metadata != 1 {
		t.Errorf("diff:\n got %q %+v\nwant %q", got, d, want)
	}
	out := e.mustRun("diff", second, second)
	if out != second[:8]+" -> "+second[:8]+": 0 added, 0 removed, 0 modified, 0 metadata only\n" {
		t.Errorf("diff of a snapshot with itself: %q", out)
	}
	if _, _, code := e.run("diff", first); code != exitUsage {
		t.Errorf("diff with one snapshot: exit %d", code)
	}
}

// TestE2EFilters: snapshots and stats select by --host, --tag and --path.
func TestE2EFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if err := os.WriteFile(filepath.Join(d, "f"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.mustBackup(nil, "--host", "web1", "--tag", "daily", a)
	e.mustBackup(nil, "--host", "web1", "--tag", "daily,db", b)
	e.mustBackup(nil, "--host", "web2", a)
	count := func(args ...string) int {
		t.Helper()
		var sns []struct {
			ID string `json:"id"`
		}
		e.mustRunJSON(&sns, append([]string{"snapshots"}, args...)...)
		var st struct {
			Snapshots int `json:"snapshots"`
		}
		e.mustRunJSON(&st, append([]string{"stats"}, args...)...)
		if st.Snapshots != len(sns) {
			t.Errorf("%v: stats counts %d snapshots, snapshots lists %d", args, st.Snapshots, len(sns))
		}
		return len(sns)
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 3},
		{[]string{"--host", "web1"}, 2},
		{[]string{"--host", "web3"}, 0},
		{[]string{"--tag", "daily"}, 2},
		{[]string{"--tag", "daily,db"}, 1},
		{[]string{"--tag", "daily", "--tag", "db"}, 1},
		{[]string{"--path", a}, 2},
		{[]string{"--path", a, "--host", "web2"}, 1},
		{[]string{"--path", a, "--path", b}, 0},
	} {
		if got := count(tc.args...); got != tc.want {
			t.Errorf("%v: %d snapshots, want %d", tc.args, got, tc.want)
		}
	}
	e.mustFail(exitUsage, "stats", "--host", "web1", "latest")
}
