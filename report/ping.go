package report

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Pinger signals a run's start and end to a monitoring URL the way
// healthchecks.io (and Cronitor, Uptime Kuma and ntfy in its compatible
// form) expects: a request to URL/start when the run starts, to URL when it
// succeeds, and a POST to URL/fail with the log's tail as the body when it
// fails. Every request carries the same run ID (rid), so the service can
// pair start and end and measure the run.
type Pinger struct {
	URL    string
	RunID  string
	Client *http.Client
}

// NewPinger returns a Pinger for url with a fresh run ID and a client that
// gives up after 10 seconds.
func NewPinger(url string) *Pinger {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // a version 4 UUID, as healthchecks.io wants rid
	b[8] = b[8]&0x3f | 0x80
	rid := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	return &Pinger{URL: strings.TrimRight(url, "/"), RunID: rid, Client: &http.Client{Timeout: 10 * time.Second}}
}

// maxBody is how much of the log a failure ping carries (healthchecks.io
// keeps 100 kB of a ping's body).
const maxBody = 100_000

// Start signals that a run started.
func (p *Pinger) Start(ctx context.Context) error { return p.ping(ctx, "/start", nil) }

// Success signals that the run succeeded; body (may be empty) is its log.
func (p *Pinger) Success(ctx context.Context, body []byte) error { return p.ping(ctx, "", body) }

// Fail signals that the run failed, with the tail of its log as the body.
func (p *Pinger) Fail(ctx context.Context, body []byte) error { return p.ping(ctx, "/fail", body) }

// ping sends one request, and once more after a second if the first could
// not be sent or the service answered with a server error.
func (p *Pinger) ping(ctx context.Context, suffix string, body []byte) error {
	if len(body) > maxBody {
		body = body[len(body)-maxBody:]
	}
	url := p.URL + suffix + "?rid=" + p.RunID
	var err error
	for try := 0; try < 2; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
		var req *http.Request
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("ping %s: %w", redactURL(p.URL), err)
		}
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		var resp *http.Response
		resp, err = p.Client.Do(req)
		if err != nil {
			err = fmt.Errorf("ping %s%s: %w", redactURL(p.URL), suffix, stripURL(err))
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			err = fmt.Errorf("ping %s%s: %s", redactURL(p.URL), suffix, resp.Status)
			continue
		}
		if resp.StatusCode >= 300 {
			return fmt.Errorf("ping %s%s: %s", redactURL(p.URL), suffix, resp.Status)
		}
		return nil
	}
	return err
}

// redactURL keeps a ping URL's scheme and host: the path of a
// healthchecks.io URL is its secret (whoever knows it can ping).
func redactURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return u[:i+3+j] + "/..."
		}
	}
	return u
}

// stripURL drops the URL from net/http's errors, which quote it whole.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// RunHook runs command with sh -c, with the run's outcome in the
// environment: HOARD_HOOK_COMMAND (what ran), HOARD_HOOK_ERROR (its error,
// empty on success), HOARD_HOOK_SUCCESS (1 or 0), HOARD_HOOK_HOST and
// HOARD_HOOK_SOURCE. Its output goes to out. It is killed when ctx ends
// or after timeout.
func RunHook(ctx context.Context, command string, run Run, out io.Writer, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	success, msg := "1", ""
	if run.Err != nil {
		success, msg = "0", run.Err.Error()
	}
	cmd.Env = append(os.Environ(),
		"HOARD_HOOK_COMMAND="+run.Command, "HOARD_HOOK_ERROR="+msg, "HOARD_HOOK_SUCCESS="+success,
		"HOARD_HOOK_HOST="+run.Host, "HOARD_HOOK_SOURCE="+run.Source)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("hook %q: %w", command, err)
	}
	return nil
}

// Tail keeps the last bytes written to it (up to its size), for the body
// of a failure ping.
type Tail struct {
	mu   sync.Mutex
	buf  []byte
	size int
}

// NewTail returns a Tail that keeps size bytes.
func NewTail(size int) *Tail { return &Tail{size: size} }

// Write keeps the tail of p; it never fails.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.size {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.size:]...)
	}
	return len(p), nil
}

// Bytes returns what is kept.
func (t *Tail) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}
