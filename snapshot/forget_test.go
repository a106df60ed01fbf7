package snapshot

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/repo/id"
)

// history returns snapshots of host "a", path /srv, taken every step from
// start, n of them, oldest first.
func history(start time.Time, step time.Duration, n int) []*Snapshot {
	var out []*Snapshot
	for i := range n {
		t := start.Add(time.Duration(i) * step)
		out = append(out, &Snapshot{Time: t, Host: "a", Paths: []string{"/srv"}, ID: id.Hash([]byte(t.String()))})
	}
	return out
}

// times renders kept snapshots' times, newest first, compactly.
func times(sns []*Snapshot) string {
	var s []string
	for _, sn := range sns {
		s = append(s, sn.Time.Format("2006-01-02T15"))
	}
	return strings.Join(s, " ")
}

func TestApplyPolicy(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // a Thursday
	daily30 := history(base.Add(12*time.Hour), 24*time.Hour, 30)
	hourly := history(base, time.Hour, 72)
	sixHourly := history(base, 6*time.Hour, 4*60) // 60 days, 4 a day
	tests := []struct {
		name  string
		sns   []*Snapshot
		p     Policy
		keep  string // times, newest first
		nKeep int    // when keep is ""
	}{
		{"last 3", daily30, Policy{Last: 3}, "2026-01-30T12 2026-01-29T12 2026-01-28T12", 0},
		{"last more than there are", daily30[:2], Policy{Last: 5}, "2026-01-02T12 2026-01-01T12", 0},
		{"daily 2 of several a day", sixHourly, Policy{Daily: 2}, "2026-03-01T18 2026-02-28T18", 0},
		{"hourly 3", hourly, Policy{Hourly: 3}, "2026-01-03T23 2026-01-03T22 2026-01-03T21", 0},
		// ISO weeks start on Monday: 2026-01-26 is a Monday.
		{"weekly 2", daily30, Policy{Weekly: 2}, "2026-01-30T12 2026-01-25T12", 0},
		{"monthly 2", sixHourly, Policy{Monthly: 2}, "2026-03-01T18 2026-02-28T18", 0},
		{"yearly 1", sixHourly, Policy{Yearly: 1}, "2026-03-01T18", 0},
		// Only two months exist: the oldest snapshot is kept as well (restic 0.17).
		{"monthly 5, not enough months", sixHourly, Policy{Monthly: 5},
			"2026-03-01T18 2026-02-28T18 2026-01-31T18 2026-01-01T00", 0},
		{"daily unlimited", sixHourly, Policy{Daily: Unlimited}, "", 60},
		{"within 3d from newest", daily30, Policy{Within: Duration{Days: 3}},
			"2026-01-30T12 2026-01-29T12 2026-01-28T12", 0},
		{"within 1w", daily30, Policy{Within: Duration{Days: 7}}, "", 7},
		{"last 1 + daily 3 overlap", daily30, Policy{Last: 1, Daily: 3}, "2026-01-30T12 2026-01-29T12 2026-01-28T12", 0},
		{"last 2 + monthly 3", sixHourly, Policy{Last: 2, Monthly: 3},
			"2026-03-01T18 2026-03-01T12 2026-02-28T18 2026-01-31T18", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Shuffle: the outcome must not depend on the input's order.
			in := slices.Clone(tc.sns)
			rand.New(rand.NewPCG(1, 2)).Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
			gs := ApplyPolicy(in, tc.p, DefaultGroupBy)
			if len(gs) != 1 {
				t.Fatalf("%d groups, want 1", len(gs))
			}
			g := gs[0]
			if len(g.Keep)+len(g.Remove) != len(tc.sns) {
				t.Fatalf("keep %d + remove %d != %d", len(g.Keep), len(g.Remove), len(tc.sns))
			}
			if tc.keep != "" {
				if got := times(g.Keep); got != tc.keep {
					t.Errorf("keep\n got %s\nwant %s", got, tc.keep)
				}
			} else if len(g.Keep) != tc.nKeep {
				t.Errorf("kept %d, want %d", len(g.Keep), tc.nKeep)
			}
			for _, sn := range g.Keep {
				if len(g.Reasons[sn]) == 0 {
					t.Errorf("kept %s without a reason", sn.Time)
				}
			}
		})
	}
}

func TestApplyPolicyGroupsAndTags(t *testing.T) {
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var sns []*Snapshot
	for i := range 10 {
		for _, host := range []string{"web1", "web2"} {
			sn := &Snapshot{Time: base.Add(time.Duration(i) * time.Hour), Host: host, Paths: []string{"/srv"},
				ID: id.Hash([]byte(fmt.Sprint(host, i)))}
			if i == 2 {
				sn.Tags = []string{"release", "v1"}
			}
			if i == 4 {
				sn.Tags = []string{"release"}
			}
			sns = append(sns, sn)
		}
	}
	p := Policy{Last: 2, Tags: [][]string{{"release", "v1"}}}
	gs := ApplyPolicy(sns, p, DefaultGroupBy)
	if len(gs) != 2 {
		t.Fatalf("%d groups, want 2", len(gs))
	}
	for _, g := range gs {
		// The 2 newest and the one with both tags (not the one with only "release").
		if len(g.Keep) != 3 || !g.Keep[2].Time.Equal(base.Add(2*time.Hour)) {
			t.Errorf("group %s: keep %s", g.Key, times(g.Keep))
		}
	}
	if gs := ApplyPolicy(sns, p, GroupBy{}); len(gs) != 1 || len(gs[0].Keep) != 4 {
		t.Errorf("no grouping: %d groups, keep %d", len(gs), len(gs[0].Keep))
	}
	by, err := ParseGroupBy("host,tags")
	if err != nil {
		t.Fatal(err)
	}
	if gs := ApplyPolicy(sns, Policy{Last: 1}, by); len(gs) != 6 {
		t.Errorf("by host,tags: %d groups, want 6", len(gs))
	}
}

// TestApplyPolicyInvariants runs random policies over random histories
// and checks what must always hold.
func TestApplyPolicyInvariants(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	for iter := range 300 {
		n := rng.IntN(200)
		var sns []*Snapshot
		tm := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range n {
			tm = tm.Add(time.Duration(rng.Int64N(int64(96 * time.Hour))))
			sns = append(sns, &Snapshot{Time: tm, Host: "h", ID: id.Hash([]byte(fmt.Sprint(iter, i)))})
		}
		p := Policy{Last: rng.IntN(4), Hourly: rng.IntN(4), Daily: rng.IntN(8), Weekly: rng.IntN(5), Monthly: rng.IntN(13), Yearly: rng.IntN(3)}
		gs := ApplyPolicy(sns, p, DefaultGroupBy)
		if n == 0 {
			if len(gs) != 0 {
				t.Fatalf("groups of nothing")
			}
			continue
		}
		g := gs[0]
		if len(g.Keep)+len(g.Remove) != n {
			t.Fatalf("iter %d: keep+remove != n", iter)
		}
		if p.Empty() {
			if len(g.Keep) != 0 {
				t.Fatalf("iter %d: empty policy kept %d", iter, len(g.Keep))
			}
			continue
		}
		if g.Keep[0] != slices.MaxFunc(sns, func(a, b *Snapshot) int { return a.Time.Compare(b.Time) }) {
			t.Fatalf("iter %d: newest snapshot not kept (policy %+v)", iter, p)
		}
		max := p.Last + p.Hourly + p.Daily + p.Weekly + p.Monthly + p.Yearly + 1
		if len(g.Keep) > max {
			t.Fatalf("iter %d: kept %d > %d", iter, len(g.Keep), max)
		}
		if p.Last > 0 && len(g.Keep) < min(p.Last, n) {
			t.Fatalf("iter %d: kept %d < last %d", iter, len(g.Keep), p.Last)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Duration
		err  bool
	}{
		{"7d", Duration{Days: 7}, false},
		{"2w", Duration{Days: 14}, false},
		{"1y2m3d", Duration{Years: 1, Months: 2, Days: 3}, false},
		{"36h", Duration{Hours: 36}, false},
		{"1y5m7d2h", Duration{1, 5, 7, 2}, false},
		{"", Duration{}, true},
		{"7", Duration{}, true},
		{"d", Duration{}, true},
		{"3x", Duration{}, true},
		{"-1d", Duration{}, true},
	} {
		got, err := ParseDuration(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseDuration(%q) = %+v, %v", tc.in, got, err)
		}
	}
}
