package spotcheck

import "testing"

func TestParseSample(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want string
		of10 int // files taken of 10
	}{
		{"5%", true, "5%", 1}, {"50%", true, "50%", 5}, {"100%", true, "100%", 10}, {"2.5%", true, "2.5%", 1},
		{"3", true, "3", 3}, {" 20 ", true, "20", 10},
		{"0", false, "", 0}, {"-1", false, "", 0}, {"0%", false, "", 0}, {"101%", false, "", 0}, {"x", false, "", 0}, {"", false, "", 0},
	} {
		s, err := ParseSample(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSample(%q): err %v", tc.in, err)
			continue
		}
		if !tc.ok {
			continue
		}
		if s.String() != tc.want || s.of(10) != tc.of10 {
			t.Errorf("ParseSample(%q) = %s taking %d of 10, want %s taking %d", tc.in, s, s.of(10), tc.want, tc.of10)
		}
	}
	if n := (Sample{Percent: 5}).of(0); n != 0 {
		t.Errorf("5%% of no files: %d", n)
	}
}
