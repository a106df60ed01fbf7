package main

import (
	"testing"
	"time"

	"github.com/hoard-backup/hoard/snapshot"
)

func TestParents(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	mk := func(day int, host, kind, filename string, paths []string, dbs ...string) *snapshot.Snapshot {
		sn := &snapshot.Snapshot{Time: t0.AddDate(0, 0, day), Host: host, Paths: paths,
			Source: snapshot.Source{Kind: kind, Filename: filename}}
		for _, d := range dbs {
			sn.Source.Databases = append(sn.Source.Databases, snapshot.DatabaseInfo{Name: d})
		}
		return sn
	}
	media := []string{"/srv/media"}
	sns := []*snapshot.Snapshot{
		mk(0, "web1", "database", "", nil, "main", "shop"), // 0
		mk(1, "web1", "database", "", nil, "main"),         // 1
		mk(2, "web1", "stdin", "db.sql", nil),              // 2
		mk(3, "web2", "database", "", nil, "main", "shop"), // 3
		mk(4, "web1", "run", "", media, "main", "shop"),    // 4
		mk(5, "web1", "database", "", nil, "shop"),         // 5
		mk(6, "web1", "command", "other.sql", nil),         // 6
	}
	for _, tc := range []struct {
		name string
		got  *snapshot.Snapshot
		want int // index in sns, -1 for none
	}{
		{"one database: newest holding it", dbParent(sns, "web1", nil, []string{"main"}), 4},
		{"two: newest holding most", dbParent(sns, "web1", nil, []string{"main", "shop"}), 4},
		{"the other one", dbParent(sns, "web1", nil, []string{"shop"}), 5},
		{"unknown database", dbParent(sns, "web1", nil, []string{"blog"}), -1},
		{"other host", dbParent(sns, "web2", nil, []string{"shop"}), 3},
		{"no snapshot of that host", dbParent(sns, "web3", nil, []string{"main"}), -1},
		{"media paths must match", dbParent(sns, "web1", []string{"/other"}, []string{"main"}), -1},
		{"media without databases", dbParent(sns, "web1", media, nil), 4},
		{"stdin by file name", streamParent(sns, "web1", "db.sql"), 2},
		{"command output by file name", streamParent(sns, "web1", "other.sql"), 6},
		{"stdin of another name", streamParent(sns, "web1", "x.sql"), -1},
		{"stdin of another host", streamParent(sns, "web2", "db.sql"), -1},
	} {
		var want *snapshot.Snapshot
		if tc.want >= 0 {
			want = sns[tc.want]
		}
		if tc.got != want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, want)
		}
	}
}
