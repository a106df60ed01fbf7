package main

import (
	"errors"
	"fmt"
	"testing"
)

// TestExitCodeSpotCorruptWins: a spot check that found silent corruption
// gives exit 20 wherever it stands among the errors of a run, also behind
// a failed drill or another, not corrupt, spot check (hoard run joins them).
func TestExitCodeSpotCorruptWins(t *testing.T) {
	corrupt := spotError{msg: "media b: corrupt", corrupt: true}
	failed := spotError{msg: "media a: missing"}
	drill := drillError{"restore drill of pg failed"}
	for _, c := range []struct {
		name string
		err  error
		want int
	}{
		{"corrupt alone", corrupt, exitSpotCorrupt},
		{"failed spot check", failed, exitDrill},
		{"drill", drill, exitDrill},
		{"drill then corrupt", fmt.Errorf("snapshot x saved, but %w", errors.Join(drill, corrupt)), exitSpotCorrupt},
		{"failed then corrupt", fmt.Errorf("snapshot x saved, but %w", errors.Join(failed, corrupt)), exitSpotCorrupt},
		{"failed and drill", errors.Join(failed, drill), exitDrill},
	} {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, got, c.want)
		}
	}
}
