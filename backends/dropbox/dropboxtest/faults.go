package dropboxtest

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Fault makes requests to a route misbehave. The zero value of each field
// means "no such fault"; the first field that is set wins, in the order
// CutRequestAfter, Status, CutResponseAfter.
type Fault struct {
	// Route is the route the fault applies to, as in Server.Calls
	// ("files/upload", "files/upload_session/append_v2", "oauth2/token");
	// empty means every route.
	Route string
	// CutRequestAfter > 0 reads that many bytes of the request body, then
	// drops the connection without answering: an upload cut halfway.
	CutRequestAfter int64
	// Status answers with this HTTP status instead of serving the request:
	// 429 with a too_many_requests error body, anything else with a plain
	// text body, as Dropbox does for 5xx.
	Status int
	// RetryAfter is sent as the Retry-After header (whole seconds) with
	// Status, and as retry_after in a 429 body.
	RetryAfter time.Duration
	// CutResponseAfter > 0 serves the request but drops the connection
	// after that many bytes of the response body: a download cut halfway.
	CutResponseAfter int64
	// Times is how many matching requests the fault applies to; 0 means 1.
	Times int
}

// InjectFault queues f. A request takes the first queued fault whose Route
// matches and has uses left.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Times <= 0 {
		f.Times = 1
	}
	s.faults = append(s.faults, &f)
}

// takeFault returns a copy of the fault for route, using it up. s.mu must be held.
func (s *Server) takeFault(route string) *Fault {
	for i, f := range s.faults {
		if f.Route != "" && f.Route != route {
			continue
		}
		f.Times--
		if f.Times == 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		c := *f
		return &c
	}
	return nil
}

// apply carries out the fault. It returns the writer to serve the request
// with, or false if the fault has answered it already.
func (f *Fault) apply(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, bool) {
	switch {
	case f.CutRequestAfter > 0:
		_, _ = io.CopyN(io.Discard, r.Body, f.CutRequestAfter)
		panic(http.ErrAbortHandler) // closes the connection without a response
	case f.Status != 0:
		secs := int((f.RetryAfter + time.Second - 1) / time.Second)
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(secs))
		}
		if f.Status == http.StatusTooManyRequests {
			writeJSON(w, f.Status, apiError("too_many_requests", map[string]any{
				"reason": map[string]any{".tag": "too_many_requests"}, "retry_after": secs,
			}))
			return nil, false
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(f.Status)
		fmt.Fprintf(w, "dropboxtest: injected %d %s", f.Status, http.StatusText(f.Status))
		return nil, false
	case f.CutResponseAfter > 0:
		return &cutWriter{ResponseWriter: w, left: f.CutResponseAfter}, true
	}
	return w, true
}

// cutWriter passes left bytes of the body on, then drops the connection.
type cutWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) <= c.left {
		c.left -= int64(len(p))
		return c.ResponseWriter.Write(p)
	}
	_, _ = c.ResponseWriter.Write(p[:c.left])
	if fl, ok := c.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
	panic(http.ErrAbortHandler) // closes the connection mid-body
}
