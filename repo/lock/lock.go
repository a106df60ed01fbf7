// Package lock implements repository locks with leases (docs/FORMAT.md
// section 10). A shared lock is held by backups, an exclusive one by
// operations that remove files. A lock is refreshed every RefreshInterval
// and counts as stale once StaleAfter has passed since its last refresh,
// or at once when it names a process of this host that no longer runs.
package lock

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
)

// Lease times.
const (
	RefreshInterval = 5 * time.Minute
	StaleAfter      = 30 * time.Minute
)

// ErrLocked is returned when a conflicting lock is held.
var ErrLocked = errors.New("lock: repository is locked")

// Info is the content of a lock file.
type Info struct {
	Time      time.Time `json:"time"`
	Exclusive bool      `json:"exclusive"`
	Host      string    `json:"host"`
	Username  string    `json:"username,omitempty"`
	PID       int       `json:"pid"`
	Nonce     string    `json:"nonce"`
}

// Stale reports whether the lock no longer protects anything.
func (i Info) Stale(now time.Time, host string) bool {
	if now.Sub(i.Time) > StaleAfter {
		return true
	}
	return i.Dead(host)
}

// Dead reports whether the lock names a process of this host (host) that
// no longer runs: its holder can write nothing more.
func (i Info) Dead(host string) bool {
	if i.Host == host && i.PID > 0 {
		if err := syscall.Kill(i.PID, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
	}
	return false
}

// LockedError names who holds a conflicting lock.
type LockedError struct {
	Holder Info
	Name   id.ID
}

func (e *LockedError) Error() string {
	kind := "shared"
	if e.Holder.Exclusive {
		kind = "exclusive"
	}
	return fmt.Sprintf("lock: repository is locked (%s lock by pid %d on %s, user %q, since %s; lock %s)",
		kind, e.Holder.PID, e.Holder.Host, e.Holder.Username, e.Holder.Time.Format(time.RFC3339), e.Name.Str())
}

// Unwrap makes errors.Is(err, ErrLocked) hold.
func (e *LockedError) Unwrap() error { return ErrLocked }

// List returns every lock file with its content; unreadable ones are skipped.
func List(ctx context.Context, r *repo.Repository) (map[id.ID]Info, error) {
	locks, _, err := listAll(ctx, r)
	return locks, err
}

// Damaged returns the lock files that exist but cannot be read or decoded
// (damaged, or written with other keys), with the reason. No one can honour
// such a lock; check reports them and `unlock --remove-all` removes them.
func Damaged(ctx context.Context, r *repo.Repository) (map[id.ID]error, error) {
	_, damaged, err := listAll(ctx, r)
	return damaged, err
}

// RemoveDamaged removes the lock files Damaged returns and returns how many.
func RemoveDamaged(ctx context.Context, r *repo.Repository) (int, error) {
	damaged, err := Damaged(ctx, r)
	if err != nil {
		return 0, err
	}
	n := 0
	for name := range damaged {
		if err := r.RemoveLock(ctx, name); err == nil {
			n++
		}
	}
	return n, nil
}

// listAll reads every lock file: the readable ones, and why the others
// are not. A lock removed while listing is in neither.
func listAll(ctx context.Context, r *repo.Repository) (map[id.ID]Info, map[id.ID]error, error) {
	names, err := r.List(ctx, repo.LockFile)
	if err != nil {
		return nil, nil, err
	}
	out, damaged := map[id.ID]Info{}, map[id.ID]error{}
	for _, n := range names {
		b, err := r.LoadUnpacked(ctx, repo.LockFile, n)
		if errors.Is(err, repo.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			damaged[n] = err // not a lock we can honour
			continue
		}
		var i Info
		if err := json.Unmarshal(b, &i); err != nil {
			damaged[n] = fmt.Errorf("lock %s: %w", n.Str(), err)
			continue
		}
		out[n] = i
	}
	return out, damaged, nil
}

// Lock takes a lock and keeps refreshing it until unlock is called. The
// returned context is cancelled when a refresh fails, so that work stops
// before the lock could go stale (after restic's LockRepo).
func Lock(ctx context.Context, r *repo.Repository, exclusive bool, now func() time.Time) (context.Context, func(), error) {
	return LockWith(ctx, r, exclusive, Options{Now: now})
}

// Options configure LockWith; zero fields take the defaults.
type Options struct {
	Now             func() time.Time // time.Now
	RefreshInterval time.Duration    // RefreshInterval
	Host            string           // os.Hostname()
	PID             int              // os.Getpid()
	Username        string           // who holds the lock, for messages; the caller knows it (empty: none)
}

// LockWith is Lock with the clock, refresh interval and identity given
// (tests use it).
func LockWith(ctx context.Context, r *repo.Repository, exclusive bool, o Options) (context.Context, func(), error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = RefreshInterval
	}
	host := o.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	info := Info{Exclusive: exclusive, Host: host, Username: o.Username, PID: o.PID, Nonce: hex.EncodeToString(crypto.NewPackKey()[:16])}
	write := func() (id.ID, error) {
		info.Time = now().UTC()
		b, _ := json.Marshal(info)
		return r.SaveUnpacked(ctx, repo.LockFile, b)
	}
	checkOthers := func(self id.ID) error {
		locks, err := List(ctx, r)
		if err != nil {
			return err
		}
		for n, l := range locks {
			if n == self || l.Stale(now(), host) {
				continue
			}
			if exclusive || l.Exclusive {
				return &LockedError{Holder: l, Name: n}
			}
		}
		return nil
	}
	if err := checkOthers(id.ID{}); err != nil {
		return nil, nil, err
	}
	name, err := write()
	if err != nil {
		return nil, nil, err
	}
	// Check again after writing: two exclusive lockers that raced both back off.
	if err := checkOthers(name); err != nil {
		_ = r.RemoveLock(context.WithoutCancel(ctx), name)
		return nil, nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(o.RefreshInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-lctx.Done():
				return
			case <-t.C:
				mu.Lock()
				nn, err := write()
				if err != nil {
					mu.Unlock()
					cancel()
					return
				}
				_ = r.RemoveLock(lctx, name)
				name = nn
				mu.Unlock()
			}
		}
	}()
	var once sync.Once
	unlock := func() {
		once.Do(func() {
			close(stop)
			<-done
			mu.Lock()
			_ = r.RemoveLock(context.WithoutCancel(ctx), name)
			mu.Unlock()
			cancel()
		})
	}
	return lctx, unlock, nil
}

// RemoveStale removes stale locks (all locks when all is set) and returns how many.
func RemoveStale(ctx context.Context, r *repo.Repository, all bool, now func() time.Time) (int, error) {
	host, _ := os.Hostname()
	locks, err := List(ctx, r)
	if err != nil {
		return 0, err
	}
	n := 0
	for name, l := range locks {
		if all || l.Stale(now(), host) {
			if err := r.RemoveLock(ctx, name); err == nil {
				n++
			}
		}
	}
	return n, nil
}
