package drill

import (
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/dump"
)

func TestScratchName(t *testing.T) {
	now := time.Unix(1796200000, 0)
	n, err := ScratchName("Shop-DB/é"+strings.Repeat("x", 100), now)
	if err != nil {
		t.Fatal(err)
	}
	// Room for PostgreSQL Restore's 14-byte "_hoard_xxxxxxxx" suffix in 63 bytes.
	if !strings.HasPrefix(n, dump.ScratchPrefix+"1796200000_") || len(n) > 48 || strings.ContainsAny(n, "-/é") {
		t.Fatalf("ScratchName = %q", n)
	}
	if got, ok := ScratchTime(n + "_hoard_0011aabb"); !ok || !got.Equal(now) {
		t.Fatalf("ScratchTime(%q) = %v, %v", n, got, ok)
	}
	for _, s := range []string{"hoard_verify_", "hoard_verify_x_1", "other_1796200000_a", "hoard_verify_-5_a", "hoard_verify_17962"} {
		if _, ok := ScratchTime(s); ok {
			t.Errorf("ScratchTime(%q) recognised", s)
		}
	}
	old := dump.ScratchPrefix + "1796196000_aa_x" // two hours... minus 400 s
	if got := Stale([]string{n, old, "hoard_verify_junk"}, now.Add(time.Minute), StaleAfter); len(got) != 1 || got[0] != old {
		t.Fatalf("Stale = %v", got)
	}
}

func TestCompare(t *testing.T) {
	got := Compare(map[string]int64{"a": 1, "b": 2, "gone": 3}, map[string]int64{"a": 1, "b": 0, "new": 4})
	want := []Table{{"a", 1, 1, true}, {"b", 2, 0, false}, {"gone", 3, -1, false}, {"new", -1, 4, false}}
	if len(got) != len(want) {
		t.Fatalf("Compare = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Compare[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	f := Failures([]dump.CheckResult{{Name: "CHECK TABLE a", OK: false, Detail: "corrupt"}, {Name: "ok", OK: true}}, got)
	if len(f) != 4 || f[0] != "CHECK TABLE a failed: corrupt" || f[1] != "table b: expected 2 rows, restored 0" {
		t.Fatalf("Failures = %q", f)
	}
}
