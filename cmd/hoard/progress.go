package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/hoard-backup/hoard/snapshot/archiver"
)

// progressInterval is how often a status line is redrawn.
const progressInterval = 500 * time.Millisecond

// statusLine is the last line of a terminal, kept for a progress report.
// Everything hoard writes to standard error goes through it, so that a
// warning, a dump tool's message or the final error first clears the
// line; the next tick draws it again below.
type statusLine struct {
	mu    sync.Mutex
	w     io.Writer
	width int // columns; 0 when unknown
	shown bool
}

// newStatusLine returns a status line on stderr when progress is wanted:
// HOARD_PROGRESS=1 always, 0 never; otherwise when stderr is a terminal
// and the output is not --json. It returns nil otherwise.
func newStatusLine(stderr io.Writer, json bool) *statusLine {
	f, _ := stderr.(*os.File)
	tty := f != nil && term.IsTerminal(int(f.Fd()))
	switch os.Getenv("HOARD_PROGRESS") {
	case "0":
		return nil
	case "1":
	default:
		if !tty || json {
			return nil
		}
	}
	s := &statusLine{w: stderr}
	if tty {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			s.width = w
		}
	}
	return s
}

func (s *statusLine) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked()
	return s.w.Write(p)
}

func (s *statusLine) clearLocked() {
	if s.shown {
		_, _ = io.WriteString(s.w, "\r\x1b[K")
		s.shown = false
	}
}

// show replaces the line's text, cut to the terminal's width.
func (s *statusLine) show(line string) {
	if r := []rune(line); s.width > 1 && len(r) >= s.width {
		line = string(r[:s.width-1])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = io.WriteString(s.w, "\r\x1b[K"+line)
	s.shown = true
}

func (s *statusLine) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked()
}

// startProgress draws line() on the status line every progressInterval
// until the returned function is called, which clears it. Without a
// status line it does nothing.
func (g *globals) startProgress(line func(elapsed time.Duration) string) (stop func()) {
	if g.status == nil {
		return func() {}
	}
	start := time.Now()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				g.status.show(line(time.Since(start)))
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
			g.status.clear()
		})
	}
}

// backupProgress is the status line of a backup.
func backupProgress(a *archiver.Archiver) func(time.Duration) string {
	return func(el time.Duration) string {
		p := a.Progress()
		var b strings.Builder
		fmt.Fprintf(&b, "[%s] %s read (%s/s), %s new, %s stored, %d files", clock(el), formatBytes(p.BytesRead),
			formatBytes(rate(p.BytesRead, el)), formatBytes(p.BytesAdded), formatBytes(p.BytesStored), p.Files)
		if p.Errors > 0 {
			fmt.Fprintf(&b, ", %d errors", p.Errors)
		}
		return b.String()
	}
}

// bytesProgress is the status line of a restore or dump: bytes written of total.
func bytesProgress(done func() uint64, total uint64) func(time.Duration) string {
	return func(el time.Duration) string {
		n := done()
		s := fmt.Sprintf("[%s] %s of %s (%s/s)", clock(el), formatBytes(n), formatBytes(total), formatBytes(rate(n, el)))
		if total > 0 {
			s += fmt.Sprintf(", %.0f %%", 100*float64(min(n, total))/float64(total))
		}
		return s
	}
}

func rate(n uint64, el time.Duration) uint64 {
	if el <= 0 {
		return 0
	}
	return uint64(float64(n) / el.Seconds())
}

// clock formats a duration as m:ss or h:mm:ss.
func clock(d time.Duration) string {
	s := int(d.Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
