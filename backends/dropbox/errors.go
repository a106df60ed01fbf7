package dropbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	sdk "github.com/dropbox/dropbox-sdk-go-unofficial/v6/dropbox"
	"github.com/dropbox/dropbox-sdk-go-unofficial/v6/dropbox/auth"
	"golang.org/x/oauth2"

	"github.com/hoard-backup/hoard/backends"
)

// TransientError is a rate limit (HTTP 429) or server error (5xx) from
// Dropbox: the request may succeed later. It never matches
// backends.ErrPermanent. A retry layer finds the wait the server asked for
// through errors.As with interface{ RetryAfter() time.Duration }.
type TransientError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Wait is the delay the server asked for (Retry-After, or retry_after
	// in a 429 body); zero if it named none.
	Wait time.Duration
	// Summary is the error_summary of the body, if it had one.
	Summary string
}

func (e *TransientError) Error() string {
	msg := fmt.Sprintf("dropbox: server answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Summary != "" {
		msg += " (" + e.Summary + ")"
	}
	if e.Wait > 0 {
		msg += fmt.Sprintf(", retry after %v", e.Wait)
	}
	return msg
}

// RetryAfter returns how long the server asked to wait before retrying.
func (e *TransientError) RetryAfter() time.Duration { return e.Wait }

// errRangeIgnored is returned when a ranged download answers with the whole file.
var errRangeIgnored = errors.New("dropbox: the server ignored the Range header")

// classifier turns 429 and 5xx answers into a *TransientError before the
// SDK sees them (the SDK would lose the Retry-After header), and refuses a
// full answer to a ranged request.
type classifier struct{ base http.RoundTripper }

func (c classifier) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)) // best effort: the status says enough
		_ = resp.Body.Close()
		te := &TransientError{StatusCode: resp.StatusCode, Wait: parseRetryAfter(resp.Header.Get("Retry-After"))}
		var j struct {
			Summary string `json:"error_summary"`
			Error   struct {
				RetryAfter int64 `json:"retry_after"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &j) == nil {
			te.Summary = j.Summary
			if te.Wait == 0 && j.Error.RetryAfter > 0 {
				te.Wait = time.Duration(j.Error.RetryAfter) * time.Second
			}
		}
		return nil, te
	case resp.StatusCode == http.StatusOK && req.Header.Get("Range") != "":
		_ = resp.Body.Close()
		return nil, errRangeIgnored
	}
	return resp, nil
}

// parseRetryAfter reads a Retry-After header in seconds or as an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// refreshSource fetches access tokens with a refresh token and keeps the
// current one until it expires or is invalidated (when Dropbox calls it
// expired early).
type refreshSource struct {
	cfg     *oauth2.Config
	ctx     context.Context // carries the HTTP client for the token endpoint only
	refresh string

	mu  sync.Mutex
	tok *oauth2.Token
}

func (s *refreshSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.Valid() {
		return s.tok, nil
	}
	tok, err := s.cfg.TokenSource(s.ctx, &oauth2.Token{RefreshToken: s.refresh}).Token()
	if err != nil {
		return nil, fmt.Errorf("dropbox: refreshing the access token: %w", err)
	}
	s.tok = tok
	if tok.RefreshToken != "" {
		s.refresh = tok.RefreshToken
	}
	return tok, nil
}

func (s *refreshSource) invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tok = nil
}

// summaryOf returns the error_summary of a route error of type T (such as
// files.DownloadAPIError), or "".
func summaryOf[T error](err error) string {
	var e T
	if errors.As(err, &e) {
		return e.Error()
	}
	return ""
}

// fail adds the operation to err and translates it: a missing file becomes
// backends.ErrNotExist, an unsatisfiable range backends.ErrRange, and errors
// that retrying cannot fix (bad or revoked tokens, a full Dropbox, bad
// requests) also match backends.ErrPermanent. Rate limits, server errors and
// network errors stay plain (retryable). summary is the route error's
// error_summary, if any. A cancelled ctx wins over the error it caused.
// Tokens and the app secret are scrubbed from the message.
func (b *Backend) fail(ctx context.Context, op string, err error, summary string) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("dropbox: %s: %w", op, cerr)
	}
	sentinel, note := b.classify(err, summary)
	msg := err.Error()
	scrubbed := msg
	for _, s := range b.secrets {
		scrubbed = strings.ReplaceAll(scrubbed, s, "***")
	}
	if note != "" {
		op += ": " + note
	}
	switch {
	case scrubbed != msg && sentinel != nil:
		return fmt.Errorf("dropbox: %s: %s: %w", op, scrubbed, sentinel)
	case scrubbed != msg:
		return fmt.Errorf("dropbox: %s: %s", op, scrubbed)
	case sentinel != nil:
		return fmt.Errorf("dropbox: %s: %w: %w", op, err, sentinel)
	}
	return fmt.Errorf("dropbox: %s: %w", op, err)
}

// classify returns the sentinel err stands for (nil: retryable) and a note
// for the message.
//
//lint:ignore ST1008 the sentinel is classify's answer, not its failure, so it comes first
func (b *Backend) classify(err error, summary string) (error, string) {
	var te *TransientError
	if errors.As(err, &te) {
		return nil, ""
	}
	if summary != "" {
		switch {
		case strings.Contains(summary, "insufficient_space"):
			return backends.ErrPermanent, "the Dropbox account is full"
		case strings.Contains(summary, "not_found"):
			return backends.ErrNotExist, ""
		case strings.Contains(summary, "too_many_write_operations"), strings.Contains(summary, "content_hash_mismatch"),
			strings.Contains(summary, "incorrect_offset"), strings.Contains(summary, "internal_error"),
			strings.HasPrefix(summary, "reset"):
			return nil, ""
		}
		return backends.ErrPermanent, ""
	}
	var authErr auth.AuthAPIError
	if errors.As(err, &authErr) {
		if strings.HasPrefix(authErr.ErrorSummary, "expired_access_token") && b.refresh != nil {
			// A new access token will be fetched on the next try.
			b.refresh.invalidate()
			return nil, "access token expired"
		}
		return backends.ErrPermanent, "check the Dropbox token"
	}
	var (
		accessErr  auth.AccessAPIError
		badRequest auth.BadRequest
		retrieve   *oauth2.RetrieveError
		internal   sdk.SDKInternalError
		syntax     *json.SyntaxError
	)
	switch {
	case errors.As(err, &accessErr), errors.As(err, &badRequest):
		return backends.ErrPermanent, ""
	case errors.As(err, &retrieve):
		if retrieve.Response != nil && retrieve.Response.StatusCode < 500 {
			return backends.ErrPermanent, "check the refresh token and app key"
		}
	case errors.As(err, &internal):
		switch {
		case internal.StatusCode == http.StatusRequestedRangeNotSatisfiable:
			return backends.ErrRange, ""
		case internal.StatusCode >= 400 && internal.StatusCode < 500 && internal.StatusCode != http.StatusRequestTimeout:
			return backends.ErrPermanent, ""
		}
	case errors.As(err, &syntax):
		// An answer the SDK could not parse: most likely a proxy's error page.
		return nil, ""
	}
	return nil, ""
}
