package lock_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/lock"
)

func newRepo(t *testing.T) *repo.Repository {
	t.Helper()
	r, err := repo.Init(context.Background(), mem.New(), repo.InitOptions{
		Options: repo.Options{Passphrase: []byte("lock test")}, S2K: crypto.S2KIterated})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// deadPID returns the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true command:", err)
	}
	return cmd.Process.Pid
}

func TestSharedBlocksExclusive(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	since := time.Date(2026, 11, 21, 23, 59, 0, 0, time.UTC)
	_, unlock, err := lock.LockWith(ctx, r, false, lock.Options{Now: func() time.Time { return since }, Host: "web1", PID: 4242})
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return since.Add(time.Minute) }
	// Another shared lock is fine.
	_, unlock2, err := lock.LockWith(ctx, r, false, lock.Options{Now: clock, Host: "web2", PID: 1})
	if err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	unlock2()
	_, _, err = lock.LockWith(ctx, r, true, lock.Options{Now: clock, Host: "web2", PID: 1})
	var le *lock.LockedError
	if !errors.As(err, &le) || !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("exclusive over shared: %v", err)
	}
	for _, want := range []string{"web1", "4242", "2026-11-21T23:59:00Z", "shared"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not name %s", err, want)
		}
	}
	// The refused locker left no lock behind.
	if locks, _ := lock.List(ctx, r); len(locks) != 1 {
		t.Errorf("%d locks after a refused lock, want 1", len(locks))
	}
	unlock()
	_, unlock, err = lock.LockWith(ctx, r, true, lock.Options{Now: clock, Host: "web2", PID: 1})
	if err != nil {
		t.Fatalf("exclusive after unlock: %v", err)
	}
	// An exclusive lock blocks a shared one.
	if _, _, err := lock.LockWith(ctx, r, false, lock.Options{Now: clock, Host: "web1", PID: 4242}); !errors.Is(err, lock.ErrLocked) {
		t.Errorf("shared over exclusive: %v", err)
	}
	unlock()
	if locks, _ := lock.List(ctx, r); len(locks) != 0 {
		t.Errorf("%d locks after unlock", len(locks))
	}
}

func TestStaleByTime(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	// A lock of another host, never refreshed (its process is gone).
	_, _, err := lock.LockWith(ctx, r, false, lock.Options{Now: func() time.Time { return t0 }, Host: "elsewhere", PID: 99})
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) lock.Options {
		return lock.Options{Now: func() time.Time { return t0.Add(d) }, Host: "here", PID: 7}
	}
	if _, _, err := lock.LockWith(ctx, r, true, at(lock.StaleAfter-time.Minute)); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("before StaleAfter: %v", err)
	}
	if n, _ := lock.RemoveStale(ctx, r, false, func() time.Time { return t0.Add(time.Minute) }); n != 0 {
		t.Fatalf("unlock removed %d fresh locks", n)
	}
	_, unlock, err := lock.LockWith(ctx, r, true, at(lock.StaleAfter+time.Minute))
	if err != nil {
		t.Fatalf("after StaleAfter: %v", err)
	}
	unlock()
	n, err := lock.RemoveStale(ctx, r, false, func() time.Time { return t0.Add(lock.StaleAfter + time.Minute) })
	if err != nil || n != 1 {
		t.Fatalf("RemoveStale: %d, %v", n, err)
	}
}

func TestStaleByDeadPID(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	host, _ := os.Hostname()
	pid := deadPID(t)
	now := time.Now
	if _, _, err := lock.LockWith(ctx, r, true, lock.Options{Now: now, Host: host, PID: pid}); err != nil {
		t.Fatal(err)
	}
	// The same PID on another host is not known to be dead.
	if _, _, err := lock.LockWith(ctx, r, false, lock.Options{Now: now, Host: "other-" + host, PID: 5}); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("other host: %v", err)
	}
	// On this host, the dead process's lock is ignored.
	_, unlock, err := lock.LockWith(ctx, r, true, lock.Options{Now: now, Host: host})
	if err != nil {
		t.Fatalf("lock of a dead pid not ignored: %v", err)
	}
	unlock()
	// A live process's lock on this host holds.
	_, unlock, err = lock.LockWith(ctx, r, false, lock.Options{Now: now, Host: host, PID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, _, err := lock.LockWith(ctx, r, true, lock.Options{Now: now, Host: host, PID: os.Getpid() + 0}); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("live pid: %v", err)
	}
	locks, _ := lock.List(ctx, r)
	dead := 0
	for _, l := range locks {
		if l.Dead(host) {
			dead++
			if l.PID != pid {
				t.Errorf("pid %d counted dead", l.PID)
			}
		}
	}
	if dead != 1 {
		t.Errorf("%d dead locks, want 1 (pid %s)", dead, strconv.Itoa(pid))
	}
}

func TestRefreshKeepsLockAlive(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	// A clock that runs 10 minutes per refresh: without refreshing, the
	// lock would be stale after three.
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	elapsed := time.Duration(0)
	clock := func() time.Time {
		<-mu
		defer func() { mu <- struct{}{} }()
		return t0.Add(elapsed)
	}
	advance := func(d time.Duration) {
		<-mu
		elapsed += d
		mu <- struct{}{}
	}
	lctx, unlock, err := lock.LockWith(ctx, r, false, lock.Options{Now: clock, RefreshInterval: 20 * time.Millisecond, Host: "a", PID: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	for range 6 {
		advance(10 * time.Minute)
		time.Sleep(100 * time.Millisecond) // a few refreshes
		if _, _, err := lock.LockWith(ctx, r, true, lock.Options{Now: clock, Host: "b", PID: 2}); !errors.Is(err, lock.ErrLocked) {
			t.Fatalf("after %v the refreshed lock did not hold: %v", elapsed, err)
		}
		locks, err := lock.List(ctx, r)
		// Two while a refresh has written its new file but not yet
		// removed the old one.
		if err != nil || len(locks) < 1 || len(locks) > 2 {
			t.Fatalf("%d lock files (%v), want 1: a refresh must remove the old file", len(locks), err)
		}
	}
	if lctx.Err() != nil {
		t.Fatal("lock context cancelled while refreshing worked")
	}
}

// TestUsername records the user the caller names, not one the lock package
// finds in the environment.
func TestUsername(t *testing.T) {
	t.Setenv("USER", "from-the-environment")
	r := newRepo(t)
	ctx := context.Background()
	_, unlock, err := lock.LockWith(ctx, r, false, lock.Options{Host: "web1", PID: 7, Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	locks, err := lock.List(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != 1 {
		t.Fatalf("%d locks", len(locks))
	}
	for _, info := range locks {
		if info.Username != "alice" {
			t.Errorf("lock held by %q, want alice", info.Username)
		}
	}
}
