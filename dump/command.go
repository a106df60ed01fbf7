package dump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Command is one run of an external tool.
type Command struct {
	Path string
	Args []string
	// Env is added to this process's environment ("KEY=VALUE"); a key
	// given here replaces the inherited one.
	Env []string
	// Stderr, when not nil, receives the tool's standard error as it is
	// written. The end of it is kept for the error either way.
	Stderr io.Writer
}

// maxTail is how much of a tool's standard error an error keeps.
const maxTail = 4096

func (c Command) cmd(ctx context.Context) (*exec.Cmd, *tailBuffer) {
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env = mergeEnv(os.Environ(), c.Env)
	tail := &tailBuffer{max: maxTail}
	if c.Stderr != nil {
		cmd.Stderr = io.MultiWriter(c.Stderr, tail)
	} else {
		cmd.Stderr = tail
	}
	// A tool that leaves a child holding its pipes must not hang us.
	cmd.WaitDelay = 5 * time.Second
	return cmd, tail
}

func mergeEnv(base, extra []string) []string {
	if len(extra) == 0 {
		return base
	}
	override := map[string]bool{}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		override[k] = true
	}
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !override[k] {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

func (c Command) toolError(err error, tail *tailBuffer) *ToolError {
	return &ToolError{Tool: c.Path, Err: err, Stderr: tail.String()}
}

// Start runs the tool and returns its standard output as a stream. Close
// waits for the tool: it returns a *ToolError if the tool failed, or if it
// was stopped because the stream was closed before its end.
func (c Command) Start(ctx context.Context) (*Stream, error) {
	cctx, cancel := context.WithCancel(ctx)
	cmd, tail := c.cmd(cctx)
	out, w, err := newPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close() // the tool holds its own copy
	if err != nil {
		out.Close()
		cancel()
		return nil, c.toolError(err, tail)
	}
	return &Stream{c: c, cmd: cmd, out: out, tail: tail, cancel: cancel}, nil
}

// Stream is a running tool's standard output.
type Stream struct {
	c      Command
	cmd    *exec.Cmd
	out    *os.File
	tail   *tailBuffer
	cancel context.CancelFunc

	eof    bool
	closed bool
	err    error
}

// Read reads the tool's output.
func (s *Stream) Read(p []byte) (int, error) {
	n, err := s.out.Read(p)
	if errors.Is(err, io.EOF) {
		s.eof = true
	}
	return n, err
}

// Close waits for the tool (stopping it first if the output was not read
// to its end) and reports how it ended.
func (s *Stream) Close() error {
	if s.closed {
		return s.err
	}
	s.closed = true
	if !s.eof {
		s.cancel()
	}
	err := s.cmd.Wait()
	s.out.Close()
	s.cancel()
	switch {
	case err != nil && !s.eof:
		s.err = s.c.toolError(fmt.Errorf("stopped before the end of its output: %w", err), s.tail)
	case err != nil:
		s.err = s.c.toolError(err, s.tail)
	case !s.eof:
		s.err = s.c.toolError(errors.New("stopped before the end of its output"), s.tail)
	}
	return s.err
}

// Pid is the tool's process ID.
func (s *Stream) Pid() int { return s.cmd.Process.Pid }

// maxOutput bounds what Output keeps of a tool's standard output.
const maxOutput = 1 << 20

// Output runs the tool with stdin (may be nil) and returns its standard
// output, which must be small (queries, versions).
func (c Command) Output(ctx context.Context, stdin io.Reader) ([]byte, error) {
	cmd, tail := c.cmd(ctx)
	cmd.Stdin = stdin
	var out limitedBuffer
	out.max = maxOutput
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return nil, c.toolError(err, tail)
	}
	if out.over {
		return nil, c.toolError(fmt.Errorf("more than %d bytes of output", maxOutput), tail)
	}
	return out.buf.Bytes(), nil
}

// Feed runs the tool with r as its standard input and waits for it. Its
// standard output goes where its standard error goes. If reading r fails,
// the tool is stopped before it sees the end of its input, and the read
// error is returned.
func (c Command) Feed(ctx context.Context, r io.Reader) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd, tail := c.cmd(cctx)
	cmd.Stdout = cmd.Stderr
	// The default pipe buffer: a larger one would hide a tool that exits
	// without reading the last of its input (the check below would miss up
	// to a buffer's worth).
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return c.toolError(err, tail)
	}
	_, copyErr := io.Copy(in, readerOnly{r})
	var readErr error
	if copyErr != nil && !errors.Is(copyErr, syscall.EPIPE) && !errors.Is(copyErr, os.ErrClosed) {
		// Not the tool going away: the input failed. Kill the tool so that
		// it does not take a truncated input for a whole one.
		readErr = copyErr
		cancel()
	}
	in.Close()
	werr := cmd.Wait()
	if readErr != nil {
		return fmt.Errorf("dump: reading the dump: %w", readErr)
	}
	if werr != nil {
		return c.toolError(werr, tail)
	}
	if copyErr != nil {
		return c.toolError(fmt.Errorf("stopped reading its input: %w", copyErr), tail)
	}
	return nil
}

// readerOnly hides a WriterTo, so that io.Copy's errors come from Read or
// Write, never from a source's WriteTo mixing both.
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

// Version returns the first line of `tool --version`.
func Version(ctx context.Context, tool string) (string, error) {
	out, err := Command{Path: tool, Args: []string{"--version"}}.Output(ctx, nil)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line), nil
}

type limitedBuffer struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.max {
		b.over = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if t.buf.Len() > 2*t.max {
		b := t.buf.Bytes()
		keep := append([]byte(nil), b[len(b)-t.max:]...)
		t.buf.Reset()
		t.buf.Write(keep)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf.Bytes()
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	return string(b)
}
