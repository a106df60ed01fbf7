package snapshot

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Retention ("forget") follows restic's documented policy semantics
// (restic doc/060_forget.rst and `restic forget --help`, internal/restic/
// snapshot_policy.go): snapshots are divided into groups, and each group is
// handled on its own, newest first. For every --keep-<period> N, the
// snapshots are put into buckets by period (hour, day, ISO week, month,
// year of their recorded time); the newest snapshot of each of the N newest
// buckets is kept. --keep-last N keeps the N newest snapshots. If a
// period rule ends with fewer than N buckets (there are not enough
// snapshots), the oldest snapshot of the group is kept in addition.
// --keep-within D keeps every snapshot newer than D before the newest
// snapshot of the group (not before now: a repository whose backups have
// stopped does not lose them all). --keep-tag T keeps every snapshot that
// carries all the comma-separated tags of T. A snapshot kept by any rule is
// kept.

// Unlimited as a count keeps every bucket of a period.
const Unlimited = -1

// Duration is a calendar duration for --keep-within: years, months, days
// and hours, as restic writes it (1y2m3d4h).
type Duration struct {
	Years, Months, Days, Hours int
}

// ParseDuration parses a duration such as 7d, 2w, 1y2m3d or 36h. The units
// are y (years), m (months), w (weeks, 7 days), d (days) and h (hours).
func ParseDuration(s string) (Duration, error) {
	var d Duration
	if s == "" {
		return d, errors.New("snapshot: empty duration")
	}
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return Duration{}, fmt.Errorf("snapshot: invalid duration %q (want e.g. 7d, 2w, 1y2m3d, 36h)", s)
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n > 100000 {
			return Duration{}, fmt.Errorf("snapshot: invalid duration %q", s)
		}
		switch rest[i] {
		case 'y':
			d.Years += n
		case 'm':
			d.Months += n
		case 'w':
			d.Days += 7 * n
		case 'd':
			d.Days += n
		case 'h':
			d.Hours += n
		default:
			return Duration{}, fmt.Errorf("snapshot: invalid unit %q in duration %q (use y, m, w, d, h)", rest[i], s)
		}
		rest = rest[i+1:]
	}
	return d, nil
}

// Zero reports whether d is empty.
func (d Duration) Zero() bool { return d == Duration{} }

// Before returns t moved back by d.
func (d Duration) Before(t time.Time) time.Time {
	return t.AddDate(-d.Years, -d.Months, -d.Days).Add(-time.Duration(d.Hours) * time.Hour)
}

func (d Duration) String() string {
	var b strings.Builder
	for _, p := range []struct {
		n int
		u string
	}{{d.Years, "y"}, {d.Months, "m"}, {d.Days, "d"}, {d.Hours, "h"}} {
		if p.n != 0 {
			b.WriteString(strconv.Itoa(p.n) + p.u)
		}
	}
	if b.Len() == 0 {
		return "0h"
	}
	return b.String()
}

// Policy says which snapshots to keep. Counts of 0 disable a rule;
// Unlimited keeps every bucket.
type Policy struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int
	Within                                       Duration
	// Tags: a snapshot is kept when it has every tag of any one entry.
	Tags [][]string
}

// Empty reports whether the policy has no rule at all (it would remove
// every snapshot).
func (p Policy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 && p.Monthly == 0 && p.Yearly == 0 &&
		p.Within.Zero() && len(p.Tags) == 0
}

// GroupBy says which snapshot fields make up a group.
type GroupBy struct {
	Host, Paths, Tags, Source bool
}

// DefaultGroupBy groups by host and paths, as restic does.
var DefaultGroupBy = GroupBy{Host: true, Paths: true}

// ParseGroupBy parses a comma-separated list of host, paths, tags and
// source; an empty string groups nothing (one group).
func ParseGroupBy(s string) (GroupBy, error) {
	var g GroupBy
	for _, f := range strings.Split(s, ",") {
		switch strings.TrimSpace(f) {
		case "":
		case "host":
			g.Host = true
		case "paths":
			g.Paths = true
		case "tags":
			g.Tags = true
		case "source":
			g.Source = true
		default:
			return GroupBy{}, fmt.Errorf("snapshot: unknown group-by field %q (use host, paths, tags, source)", f)
		}
	}
	return g, nil
}

// Key returns the group of sn as a string, and a readable form of it.
func (g GroupBy) Key(sn *Snapshot) string {
	var parts []string
	if g.Host {
		parts = append(parts, "host="+sn.Host)
	}
	if g.Paths {
		p := append([]string(nil), sn.Paths...)
		sort.Strings(p)
		parts = append(parts, "paths="+strings.Join(p, ","))
	}
	if g.Tags {
		t := append([]string(nil), sn.Tags...)
		sort.Strings(t)
		parts = append(parts, "tags="+strings.Join(t, ","))
	}
	if g.Source {
		parts = append(parts, "source="+sn.Source.Kind)
	}
	return strings.Join(parts, " ")
}

// Group is the outcome of a policy for one group of snapshots. Keep and
// Remove are sorted newest first.
type Group struct {
	Key     string
	Keep    []*Snapshot
	Remove  []*Snapshot
	Reasons map[*Snapshot][]string // why each kept snapshot is kept
}

type bucketRule struct {
	name  string
	count int
	key   func(time.Time) int
}

// ApplyPolicy divides sns into groups and applies p to each. Groups are
// returned sorted by key. It only reads sns.
func ApplyPolicy(sns []*Snapshot, p Policy, by GroupBy) []Group {
	groups := map[string][]*Snapshot{}
	for _, sn := range sns {
		k := by.Key(sn)
		groups[k] = append(groups[k], sn)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Group, 0, len(keys))
	for _, k := range keys {
		g := applyGroup(groups[k], p)
		g.Key = k
		out = append(out, g)
	}
	return out
}

// applyGroup applies p to the snapshots of one group.
func applyGroup(in []*Snapshot, p Policy) Group {
	list := append([]*Snapshot(nil), in...)
	// Newest first; equal times by ID so the outcome does not depend on
	// the input's order.
	sort.SliceStable(list, func(i, j int) bool {
		if !list[i].Time.Equal(list[j].Time) {
			return list[i].Time.After(list[j].Time)
		}
		return list[i].ID.Compare(list[j].ID) > 0
	})
	g := Group{Reasons: map[*Snapshot][]string{}}
	if len(list) == 0 {
		return g
	}
	rules := []bucketRule{
		{"last snapshot", p.Last, nil},
		{"hourly snapshot", p.Hourly, func(t time.Time) int {
			return t.Year()*1000000 + int(t.Month())*10000 + t.Day()*100 + t.Hour()
		}},
		{"daily snapshot", p.Daily, func(t time.Time) int { return t.Year()*10000 + int(t.Month())*100 + t.Day() }},
		{"weekly snapshot", p.Weekly, func(t time.Time) int { y, w := t.ISOWeek(); return y*100 + w }},
		{"monthly snapshot", p.Monthly, func(t time.Time) int { return t.Year()*100 + int(t.Month()) }},
		{"yearly snapshot", p.Yearly, func(t time.Time) int { return t.Year() }},
	}
	remaining := make([]int, len(rules))
	last := make([]int, len(rules))
	for i, r := range rules {
		remaining[i] = r.count
		last[i] = -1
	}
	var withinFrom time.Time
	if !p.Within.Zero() {
		withinFrom = p.Within.Before(list[0].Time)
	}
	for i, sn := range list {
		var why []string
		for _, tl := range p.Tags {
			if hasAllTags(sn, tl) {
				why = append(why, "has tags "+strings.Join(tl, ","))
				break
			}
		}
		if !p.Within.Zero() && sn.Time.After(withinFrom) {
			why = append(why, "within "+p.Within.String())
		}
		for j, r := range rules {
			if remaining[j] == 0 {
				continue
			}
			val := i // keep-last: every snapshot is a bucket of its own
			if r.key != nil {
				val = r.key(sn.Time)
			}
			if val != last[j] {
				last[j] = val
				why = append(why, r.name)
				if remaining[j] > 0 {
					remaining[j]--
				}
			}
		}
		if len(why) > 0 {
			g.Keep = append(g.Keep, sn)
			g.Reasons[sn] = why
		} else {
			g.Remove = append(g.Remove, sn)
		}
	}
	// Not enough periods to fill a period rule: keep the oldest snapshot
	// too (restic 0.17).
	oldest := list[len(list)-1]
	for j, r := range rules[1:] {
		if remaining[j+1] > 0 && g.Reasons[oldest] == nil {
			g.Reasons[oldest] = []string{"oldest " + r.name}
			g.Remove = g.Remove[:len(g.Remove)-1] // oldest is last in Remove
			g.Keep = append(g.Keep, oldest)
			break
		}
	}
	return g
}

func hasAllTags(sn *Snapshot, tags []string) bool {
	for _, t := range tags {
		found := false
		for _, st := range sn.Tags {
			if st == t {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return len(tags) > 0
}
