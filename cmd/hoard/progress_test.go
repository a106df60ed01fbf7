package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestStatusLine(t *testing.T) {
	var out bytes.Buffer
	s := &statusLine{w: &out, width: 20}
	s.show("first")
	s.show("a line much longer than the terminal")
	if _, err := io.WriteString(s, "a warning\n"); err != nil {
		t.Fatal(err)
	}
	s.clear() // nothing shown: writes nothing
	want := "\r\x1b[Kfirst" + "\r\x1b[Ka line much longer " + "\r\x1b[K" + "a warning\n"
	if got := out.String(); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	for d, want := range map[time.Duration]string{0: "0:00", 65 * time.Second: "1:05", 3725 * time.Second: "1:02:05"} {
		if got := clock(d); got != want {
			t.Errorf("clock(%v) = %q, want %q", d, got, want)
		}
	}
	line := bytesProgress(func() uint64 { return 3 << 20 }, 4<<20)(2 * time.Second)
	if !strings.Contains(line, "3.00 MiB of 4.00 MiB (1.50 MiB/s), 75 %") {
		t.Errorf("progress line %q", line)
	}
}

// TestE2EProgress: a backup of a slow stream shows a status line on
// standard error when asked (HOARD_PROGRESS=1), cleared before the
// summary; not otherwise when standard error is not a terminal.
func TestE2EProgress(t *testing.T) {
	e := newEnv(t)
	slow := func() io.Reader {
		pr, pw := io.Pipe()
		go func() {
			pw.Write(bytes.Repeat([]byte("row\n"), 1<<18))
			time.Sleep(1500 * time.Millisecond)
			pw.Write(bytes.Repeat([]byte("more\n"), 1<<18))
			pw.Close()
		}()
		return pr
	}
	on := e.on(t)
	on.extraEnv = append(on.extraEnv, "HOARD_PROGRESS=1")
	var stdout bytes.Buffer
	stderr, code := on.runIO(slow(), &stdout, "backup", "--stdin")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "\r\x1b[K[0:0") || !strings.Contains(stderr, "MiB read (") || !strings.HasSuffix(stderr, "\r\x1b[K") {
		t.Errorf("no status line, or not cleared at the end: %q", stderr)
	}
	if !strings.Contains(stdout.String(), "snapshot ") {
		t.Errorf("summary: %q", stdout.String())
	}
	stderr, code = e.runIO(slow(), io.Discard, "backup", "--stdin")
	if code != 0 || strings.Contains(stderr, "\x1b[K") {
		t.Errorf("exit %d; progress without a terminal: %q", code, stderr)
	}
}
