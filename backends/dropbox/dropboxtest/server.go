// Package dropboxtest is a TEST DOUBLE of the Dropbox API v2: a local HTTP
// server that speaks the routes backends/dropbox uses, so that the backend
// and end-to-end tests run without the network. No Dropbox server can run
// here (Dropbox is a hosted service with no self-hosted edition), so this is
// not a real server: it implements what the API documentation says about
// these routes, and nothing else. Passing against it does not prove that the
// backend works against api.dropboxapi.com; it proves that the backend
// speaks the documented protocol and handles the documented errors.
//
// Routes, as documented at https://www.dropbox.com/developers/documentation/http/documentation:
//
//	POST /2/files/upload                     content: Dropbox-API-Arg header, body is the file
//	POST /2/files/download                   content: Dropbox-API-Arg; Range supported; result in Dropbox-API-Result
//	POST /2/files/get_metadata               RPC: JSON body
//	POST /2/files/list_folder                RPC (recursive, limit; paged by Server.PageSize)
//	POST /2/files/list_folder/continue       RPC
//	POST /2/files/delete_v2                  RPC
//	POST /2/files/upload_session/start       content
//	POST /2/files/upload_session/append_v2   content
//	POST /2/files/upload_session/finish      content
//	POST /oauth2/token                       form: grant_type=refresh_token
//
// Errors are as Dropbox sends them: 409 with a JSON body
// {"error_summary": "path/not_found/..", "error": {...}} for route errors,
// 401 {"error_summary": "invalid_access_token/..", ...} for bad tokens, 429
// with Retry-After for rate limits. Paths are case-insensitive and case-
// preserving, folders exist implicitly while they hold files, and a file is
// committed only when its upload completes. "add" uploads of identical
// content to an existing file succeed without change unless strict_conflict
// is set, as Dropbox documents. Files live in memory.
//
// Faults (InjectFault) make a route answer with an HTTP status or cut the
// connection in the middle of a request or response body.
package dropboxtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropbox/dropbox-sdk-go-unofficial/v6/dropbox/contenthash"
)

// MaxUploadSize is the largest body /2/files/upload and each upload session
// call accept (150 MiB, as on Dropbox).
const MaxUploadSize = 150 << 20

// Server is a running test double. Its exported methods are safe for
// concurrent use; set the exported fields before the first request.
type Server struct {
	// URL is the base URL (http://127.0.0.1:PORT) that serves both the API
	// (/2/...) and the token endpoint (/oauth2/token).
	URL string
	// Token is an access token the server accepts until ExpireTokens.
	Token string
	// RefreshToken, AppKey and AppSecret are what /oauth2/token accepts to
	// issue new access tokens.
	RefreshToken string
	AppKey       string
	AppSecret    string
	// PageSize is the most entries a list_folder page holds (default 2000,
	// the API's largest limit); tests set it low to exercise continue.
	PageSize int

	srv *httptest.Server

	mu       sync.Mutex
	files    map[string]*file // by lower-cased path
	sessions map[string]*session
	cursors  map[string][]entry
	tokens   map[string]bool // access token -> still valid
	quota    int64           // 0: unlimited
	faults   []*Fault
	calls    map[string]int
	rev      int
}

type file struct {
	display  string // path as first written
	data     []byte
	rev      string
	modified time.Time
}

type session struct {
	data   []byte
	closed bool
}

// entry is a listing entry: a file or an (implicit) folder.
type entry struct {
	lower, display string
	f              *file // nil for a folder
}

// NewServer starts a server on 127.0.0.1 at a random port, closed at the end of tb.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{
		Token:        "test-access-" + randomHex(8),
		RefreshToken: "test-refresh-" + randomHex(8),
		AppKey:       "test-app-key",
		AppSecret:    "test-app-secret-" + randomHex(4),
		files:        make(map[string]*file),
		sessions:     make(map[string]*session),
		cursors:      make(map[string][]entry),
		tokens:       make(map[string]bool),
		calls:        make(map[string]int),
	}
	s.tokens[s.Token] = true
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	tb.Cleanup(s.srv.Close)
	return s
}

// Close stops the server (NewServer's cleanup also does).
func (s *Server) Close() { s.srv.Close() }

// ExpireTokens makes every access token issued so far expired: requests
// with them fail with expired_access_token until a new one is fetched with
// the refresh token.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tokens {
		s.tokens[t] = false
	}
}

// SetQuota limits the total size of stored files; 0 means unlimited.
// Uploads beyond it fail with path/insufficient_space.
func (s *Server) SetQuota(bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quota = bytes
}

// File returns the content stored at path (any case), and whether it exists.
func (s *Server) File(path string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[strings.ToLower(path)]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), f.data...), true
}

// Paths returns the display paths of all stored files, sorted.
func (s *Server) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var paths []string
	for _, f := range s.files {
		paths = append(paths, f.display)
	}
	sort.Strings(paths)
	return paths
}

// OpenSessions returns the number of upload sessions not yet finished.
func (s *Server) OpenSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Calls returns how many requests route (e.g. "files/upload",
// "oauth2/token") has received, faults included.
func (s *Server) Calls(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[route]
}

// routeHandler serves one route after authentication. arg is the JSON
// argument (header or body); body is the request body of content routes.
type routeHandler func(s *Server, w http.ResponseWriter, r *http.Request, arg []byte)

var routes = map[string]struct {
	content bool // argument in Dropbox-API-Arg, body is data
	handle  routeHandler
}{
	"files/upload":                   {true, (*Server).upload},
	"files/download":                 {true, (*Server).download},
	"files/get_metadata":             {false, (*Server).getMetadata},
	"files/list_folder":              {false, (*Server).listFolder},
	"files/list_folder/continue":     {false, (*Server).listFolderContinue},
	"files/delete_v2":                {false, (*Server).delete},
	"files/upload_session/start":     {true, (*Server).sessionStart},
	"files/upload_session/append_v2": {true, (*Server).sessionAppend},
	"files/upload_session/finish":    {true, (*Server).sessionFinish},
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	route := strings.TrimPrefix(r.URL.Path, "/2/")
	if r.URL.Path == "/oauth2/token" {
		route = "oauth2/token"
	}
	s.mu.Lock()
	s.calls[route]++
	fault := s.takeFault(route)
	s.mu.Unlock()
	if fault != nil {
		var serve bool
		if w, serve = fault.apply(w, r); !serve {
			return
		}
	}
	if r.Method != http.MethodPost {
		http.Error(w, "Error in call to API function: only POST", http.StatusMethodNotAllowed)
		return
	}
	if route == "oauth2/token" {
		s.token(w, r)
		return
	}
	rt, ok := routes[route]
	if !ok || !strings.HasPrefix(r.URL.Path, "/2/") {
		http.Error(w, "Unknown API function: "+r.URL.Path, http.StatusNotFound)
		return
	}
	if !s.authorized(w, r) {
		return
	}
	var arg []byte
	if rt.content {
		arg = []byte(r.Header.Get("Dropbox-API-Arg"))
		if ct := r.Header.Get("Content-Type"); route != "files/download" && ct != "application/octet-stream" {
			badRequest(w, "Bad HTTP \"Content-Type\" header: %q. Expecting \"application/octet-stream\".", ct)
			return
		}
	} else {
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			badRequest(w, "Bad HTTP \"Content-Type\" header: %q. Expecting \"application/json\".", ct)
			return
		}
		var err error
		if arg, err = readBody(r, 1<<20); err != nil {
			badRequest(w, "could not read the request body: %v", err)
			return
		}
	}
	if !json.Valid(arg) {
		badRequest(w, "Error in call to API function %q: could not decode input as JSON", route)
		return
	}
	rt.handle(s, w, r, arg)
}

// authorized checks the bearer token and answers 401 if it is bad.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		badRequest(w, "Error in call to API function: Missing \"Authorization\" header")
		return false
	}
	s.mu.Lock()
	valid, known := s.tokens[token]
	s.mu.Unlock()
	switch {
	case !known:
		writeJSON(w, http.StatusUnauthorized, apiError("invalid_access_token", map[string]any{".tag": "invalid_access_token"}))
		return false
	case !valid:
		writeJSON(w, http.StatusUnauthorized, apiError("expired_access_token", map[string]any{".tag": "expired_access_token"}))
		return false
	}
	return true
}

// token serves /oauth2/token for grant_type=refresh_token, with the app key
// and secret in the form or in basic authentication.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": err.Error()})
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	switch {
	case r.PostForm.Get("grant_type") != "refresh_token":
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unsupported_grant_type", "error_description": "only refresh_token"})
	case id != s.AppKey || secret != s.AppSecret:
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_client", "error_description": "Invalid client_id or client_secret"})
	case r.PostForm.Get("refresh_token") != s.RefreshToken:
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": "refresh token is invalid or revoked"})
	default:
		tok := "test-access-" + randomHex(8)
		s.mu.Lock()
		s.tokens[tok] = true
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": 14400})
	}
}

// apiError is the body of a route error: error_summary is the chain of tags
// followed by "/..", as Dropbox writes it.
func apiError(summary string, detail map[string]any) map[string]any {
	return map[string]any{"error_summary": summary + "/..", "error": detail}
}

// routeError answers 409 with a route error.
func routeError(w http.ResponseWriter, summary string, detail map[string]any) {
	writeJSON(w, http.StatusConflict, apiError(summary, detail))
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, format, args...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own values
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// contentHash is Dropbox's content hash of data.
func contentHash(data []byte) string {
	h := contenthash.New()
	_, _ = h.Write(data) // never fails
	return hex.EncodeToString(h.Sum(nil))
}

// metadata is the JSON of a file's or folder's metadata, as Dropbox sends it.
func (e entry) metadata() map[string]any {
	name := e.display[strings.LastIndex(e.display, "/")+1:]
	if e.f == nil {
		return map[string]any{
			".tag": "folder", "name": name, "path_lower": e.lower, "path_display": e.display,
			"id": "id:" + hex.EncodeToString([]byte(e.lower))[:min(22, 2*len(e.lower))],
		}
	}
	return map[string]any{
		".tag":            "file",
		"name":            name,
		"path_lower":      e.lower,
		"path_display":    e.display,
		"id":              "id:" + e.f.rev,
		"client_modified": e.f.modified.UTC().Format(time.RFC3339),
		"server_modified": e.f.modified.UTC().Format(time.RFC3339),
		"rev":             e.f.rev,
		"size":            len(e.f.data),
		"is_downloadable": true,
		"content_hash":    contentHash(e.f.data),
	}
}
