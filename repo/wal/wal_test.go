package wal_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/wal"
)

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		file          string
		kind          wal.Kind
		tli, log, seg uint32
		segNo         uint64
	}{
		{"000000010000000000000003", wal.Segment, 1, 0, 3, 3},
		{"0000000A00000002000000FF", wal.Segment, 10, 2, 255, 2*256 + 255},
		{"00000002.history", wal.History, 2, 0, 0, 0},
		{"000000010000000000000003.00000028.backup", wal.Backup, 1, 0, 3, 3},
		{"000000030000000000000007.partial", wal.Partial, 3, 0, 7, 7},
	} {
		n, err := wal.ParseName(tc.file)
		if err != nil || n.Kind != tc.kind || n.Timeline != tc.tli || n.Log != tc.log || n.Seg != tc.seg || n.File != tc.file {
			t.Errorf("ParseName(%s) = %+v, %v", tc.file, n, err)
			continue
		}
		if tc.kind != wal.History && n.SegNo(16<<20) != tc.segNo {
			t.Errorf("%s: SegNo %d, want %d", tc.file, n.SegNo(16<<20), tc.segNo)
		}
		h, err := wal.HandleName("main_db-1", tc.file)
		if err != nil || strings.Contains(h, ".") {
			t.Fatalf("HandleName: %q %v", h, err)
		}
		c, f, err := wal.SplitHandleName(h)
		if err != nil || c != "main_db-1" || f != tc.file {
			t.Errorf("SplitHandleName(%s) = %s %s %v", h, c, f, err)
		}
	}
	for _, bad := range []string{"", "00000001", "00000000.history", "000000000000000000000003", "000000010000000000000003.history",
		"00000001000000000000000g", "00000001000000000000000a", "000000010000000000000003.backup", "000000010000000000000003.0000002.backup",
		"../000000010000000000000003", "000000010000000000000003.partial.x", "postgresql.conf"} {
		if _, err := wal.ParseName(bad); !errors.Is(err, wal.ErrName) {
			t.Errorf("ParseName(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "a.b", "a/b", strings.Repeat("x", 65), "ü"} {
		if _, err := wal.HandleName(bad, "000000010000000000000003"); !errors.Is(err, wal.ErrName) {
			t.Errorf("cluster %q accepted", bad)
		}
	}
	if got := wal.SegmentName(1, 2*256+255, 16<<20); got != "0000000100000002000000FF" {
		t.Errorf("SegmentName = %s", got)
	}
	if got := wal.SegmentName(2, 9, 1<<30); got != "000000020000000200000001" {
		t.Errorf("SegmentName with 1 GiB segments = %s", got)
	}
}

func TestDecode(t *testing.T) {
	e := &wal.Entry{Cluster: "main", File: "000000010000000000000003", Size: 2, Content: []id.ID{id.Hash([]byte("a")), id.Hash([]byte("b"))},
		Time: time.Date(2026, 12, 1, 14, 3, 0, 0, time.UTC), Host: "db1"}
	b, err := wal.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	d, err := wal.Decode(b)
	if err != nil || !d.Same(e) || d.Host != "db1" || !d.Time.Equal(e.Time) {
		t.Fatalf("round trip: %+v %v", d, err)
	}
	for _, bad := range []string{
		`{}`,
		`{"hoard_wal":2,"cluster":"main","file":"000000010000000000000003"}`,
		`{"hoard_wal":1,"cluster":"a.b","file":"000000010000000000000003"}`,
		`{"hoard_wal":1,"cluster":"main","file":"x"}`,
		`{"hoard_wal":1,"cluster":"main","file":"000000010000000000000003","size":-1}`,
		`{"hoard_wal":1,"cluster":"main","file":"000000010000000000000003","size":5}`,
		`{"hoard_wal":1,"cluster":"main","file":"000000010000000000000003","size":2000000000,"content":["` + strings.Repeat("00", 32) + `"]}`,
		`{"hoard_wal":1,"cluster":"main","file":"000000010000000000000003","size":0,"content":["` + strings.Repeat("00", 32) + `"]}`,
		`[`,
	} {
		if _, err := wal.Decode([]byte(bad)); !errors.Is(err, repo.ErrInvalidData) {
			t.Errorf("Decode(%s) = %v", bad, err)
		}
	}
}
