package backends

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPath pins the repository layout every backend shares: a change here
// moves the files of existing repositories.
func TestPath(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		h    Handle
		want string
		dirs []string
	}{
		{Handle{Type: ConfigFile}, "config", nil},
		{Handle{Type: KeyFile, Name: id}, "keys/" + id, []string{"keys"}},
		{Handle{Type: PackFile, Name: id}, "data/ab/" + id, []string{"data", "data/ab"}},
		{Handle{Type: IndexFile, Name: id}, "index/" + id, []string{"index"}},
		{Handle{Type: SnapshotFile, Name: id}, "snapshots/" + id, []string{"snapshots"}},
		{Handle{Type: LockFile, Name: "x1"}, "locks/x1", []string{"locks"}},
	} {
		got, err := Path(tc.h)
		if err != nil || got != tc.want {
			t.Errorf("Path(%v) = %q, %v; want %q", tc.h, got, err, tc.want)
		}
		if d := Dirs(tc.h); !slices.Equal(d, tc.dirs) {
			t.Errorf("Dirs(%v) = %q, want %q", tc.h, d, tc.dirs)
		}
	}
	for _, h := range []Handle{
		{Type: PackFile, Name: "a"},
		{Type: PackFile, Name: "../x"},
		{Type: "other", Name: id},
		{Type: ConfigFile, Name: "x"},
	} {
		if p, err := Path(h); !errors.Is(err, ErrPermanent) {
			t.Errorf("Path(%v) = %q, %v; want ErrPermanent", h, p, err)
		}
	}
	dirs := ShardDirs()
	if len(dirs) != 256 || dirs[0] != "data/00" || dirs[255] != "data/ff" {
		t.Errorf("ShardDirs = %d folders from %q to %q", len(dirs), dirs[0], dirs[len(dirs)-1])
	}
}

// TestListShards checks that shards come out in order whatever the order
// their reads finish in, at most limit at once, and that errors stop it.
func TestListShards(t *testing.T) {
	shards := []string{"00", "01", "02", "03", "04", "05", "06", "07"}
	var running, most atomic.Int32
	read := func(ctx context.Context, s string) ([]string, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		return []string{s + "a", s + "b"}, nil
	}
	var got []string
	err := ListShards(context.Background(), "test", shards, 3, read, func(s string, e []string) error {
		got = append(got, e...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 16 || got[0] != "00a" || got[15] != "07b" || !slices.IsSorted(got) {
		t.Errorf("listed %q", got)
	}
	if most.Load() > 3 {
		t.Errorf("%d reads at once, limit 3", most.Load())
	}

	errRead := errors.New("read failed")
	err = ListShards(context.Background(), "test", shards, 2, func(ctx context.Context, s string) ([]string, error) {
		if s == "03" {
			return nil, errRead
		}
		return nil, nil
	}, func(string, []string) error { return nil })
	if !errors.Is(err, errRead) {
		t.Errorf("read error: got %v", err)
	}
	errEmit := errors.New("emit failed")
	err = ListShards(context.Background(), "test", shards, 2, read, func(s string, _ []string) error {
		return fmt.Errorf("shard %s: %w", s, errEmit)
	})
	if !errors.Is(err, errEmit) || !strings.Contains(err.Error(), "shard 00") {
		t.Errorf("emit error: got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = ListShards(ctx, "test", shards, 2, func(ctx context.Context, s string) ([]string, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}, func(string, []string) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
}

type wrapper struct{ Backend }

func (w wrapper) Unwrap() Backend { return w.Backend }

type leaf struct{ Backend }

// TestAs finds a backend through its decorators, and not where it is not.
func TestAs(t *testing.T) {
	l := &leaf{}
	if got, ok := As[*leaf](wrapper{wrapper{l}}); !ok || got != l {
		t.Errorf("As through two decorators = %v, %v", got, ok)
	}
	if _, ok := As[*leaf](wrapper{&wrapper{}}); ok {
		t.Error("As found a backend that is not there")
	}
	if _, ok := As[*leaf](nil); ok {
		t.Error("As of nil found a backend")
	}
}
