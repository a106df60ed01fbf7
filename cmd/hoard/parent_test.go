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
		mk(0, "web1", snapshot.KindDatabase, "", nil, "main", "shop"), // 0
		mk(1, "web1", snapshot.KindDatabase, "", nil, "main"),         // 1
		mk(2, "web1", snapshot.KindStdin, "db.sql", nil),              // 2
		mk(3, "web2", snapshot.KindDatabase, "", nil, "main", "shop"), // 3
		mk(4, "web1", snapshot.KindRun, "", media, "main", "shop"),    // 4
		mk(5, "web1", snapshot.KindDatabase, "", nil, "shop"),         // 5
		mk(6, "web1", snapshot.KindCommand, "other.sql", nil),         // 6
	}
	for _, tc := range []struct {
		name string
		got  *snapshot.Snapshot
		want int // index in sns, -1 for none
	}{
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
