package dropboxtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// errTooLarge is returned by readBody for a body over its limit.
var errTooLarge = errors.New("payload too large")

func readBody(r *http.Request, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errTooLarge
	}
	return data, nil
}

// cleanPath checks a Dropbox path ("" for the root, else "/a/b") and returns
// its lower-cased form.
func cleanPath(p string) (lower string, ok bool) {
	if p == "" {
		return "", true
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return "", false
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\\\x00") {
			return "", false
		}
	}
	return strings.ToLower(p), true
}

// lookup finds a file, or an implicit folder, at lower. s.mu must be held.
func (s *Server) lookup(lower string) (entry, bool) {
	if lower == "" {
		return entry{}, true
	}
	if f, ok := s.files[lower]; ok {
		return entry{lower: lower, display: f.display, f: f}, true
	}
	for l, f := range s.files {
		if strings.HasPrefix(l, lower+"/") {
			return entry{lower: lower, display: displayPrefix(f.display, lower)}, true
		}
	}
	return entry{}, false
}

// displayPrefix returns the leading folders of display that lowerPrefix
// names, in display's case.
func displayPrefix(display, lowerPrefix string) string {
	n := strings.Count(lowerPrefix, "/")
	i := 0
	for ; i < len(display); i++ {
		if display[i] == '/' {
			if n == 0 {
				break
			}
			n--
		}
	}
	return display[:i]
}

// writeMode is a WriteMode: "add", "overwrite" or "update" with a rev.
type writeMode struct {
	tag string
	rev string
}

func parseWriteMode(raw json.RawMessage) (writeMode, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return writeMode{tag: "add"}, nil
	}
	var tag string
	if json.Unmarshal(raw, &tag) == nil {
		return writeMode{tag: tag}, nil
	}
	var obj struct {
		Tag    string `json:".tag"`
		Update string `json:"update"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return writeMode{}, err
	}
	return writeMode{tag: obj.Tag, rev: obj.Update}, nil
}

// commitInfo is the CommitInfo of upload and upload_session/finish.
type commitInfo struct {
	Path           string          `json:"path"`
	Mode           json.RawMessage `json:"mode"`
	Autorename     bool            `json:"autorename"`
	Mute           bool            `json:"mute"`
	StrictConflict bool            `json:"strict_conflict"`
}

// commit stores data at c.Path unless the mode forbids it. It returns the
// file's entry, or a WriteError and its summary. s.mu must be held.
func (s *Server) commit(c commitInfo, data []byte) (entry, map[string]any, string) {
	lower, ok := cleanPath(c.Path)
	if !ok || lower == "" {
		return entry{}, map[string]any{".tag": "malformed_path"}, "malformed_path"
	}
	mode, err := parseWriteMode(c.Mode)
	if err != nil || (mode.tag != "add" && mode.tag != "overwrite" && mode.tag != "update") {
		return entry{}, map[string]any{".tag": "malformed_path"}, "malformed_path"
	}
	conflict := func(what string) (entry, map[string]any, string) {
		return entry{}, map[string]any{".tag": "conflict", "conflict": map[string]any{".tag": what}}, "conflict/" + what
	}
	// A file where a parent folder should be.
	for i := 1; i < len(lower); i++ {
		if _, isFile := s.files[lower[:i]]; isFile && lower[i] == '/' {
			return conflict("file")
		}
	}
	if e, found := s.lookup(lower); found && e.f == nil {
		return conflict("folder")
	}
	old, exists := s.files[lower]
	if exists {
		same := contentHash(old.data) == contentHash(data)
		switch {
		case same && !c.StrictConflict:
			return entry{lower: lower, display: old.display, f: old}, nil, ""
		case mode.tag == "overwrite":
		case mode.tag == "update" && mode.rev == old.rev:
		default:
			return conflict("file")
		}
	}
	if s.quota > 0 {
		used := int64(0)
		for _, f := range s.files {
			used += int64(len(f.data))
		}
		if exists {
			used -= int64(len(old.data))
		}
		if used+int64(len(data)) > s.quota {
			return entry{}, map[string]any{".tag": "insufficient_space"}, "insufficient_space"
		}
	}
	s.rev++
	f := &file{display: c.Path, data: data, rev: fmt.Sprintf("%09x", s.rev), modified: time.Now()}
	if exists {
		f.display = old.display
	}
	s.files[lower] = f
	return entry{lower: lower, display: f.display, f: f}, nil, ""
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request, arg []byte) {
	var a struct {
		commitInfo
		ContentHash string `json:"content_hash"`
	}
	if err := json.Unmarshal(arg, &a); err != nil {
		badRequest(w, "Error in call to API function \"files/upload\": %v", err)
		return
	}
	if a.Autorename {
		badRequest(w, "dropboxtest: autorename is not implemented by this test double")
		return
	}
	data, err := readBody(r, MaxUploadSize)
	if errors.Is(err, errTooLarge) {
		routeError(w, "payload_too_large", map[string]any{".tag": "payload_too_large"})
		return
	}
	if err != nil {
		return // the client went away: nothing is committed
	}
	if a.ContentHash != "" && a.ContentHash != contentHash(data) {
		routeError(w, "content_hash_mismatch", map[string]any{".tag": "content_hash_mismatch"})
		return
	}
	s.mu.Lock()
	e, werr, summary := s.commit(a.commitInfo, data)
	var md map[string]any
	if werr == nil {
		md = e.metadata()
	}
	s.mu.Unlock()
	if werr != nil {
		routeError(w, "path/"+summary, map[string]any{".tag": "path", "reason": werr, "upload_session_id": randomHex(8)})
		return
	}
	writeJSON(w, http.StatusOK, md)
}

// lookupArg decodes {"path": ...} and finds the entry, answering the route
// error itself (with the union member named tag) if it cannot.
func (s *Server) lookupArg(w http.ResponseWriter, arg []byte, tag string) (entry, []byte, bool) {
	var a struct {
		Path string `json:"path"`
	}
	if err := json.Unmarshal(arg, &a); err != nil {
		badRequest(w, "Error in call to API function: %v", err)
		return entry{}, nil, false
	}
	lower, ok := cleanPath(a.Path)
	if !ok {
		routeError(w, tag+"/malformed_path", map[string]any{".tag": tag, tag: map[string]any{".tag": "malformed_path"}})
		return entry{}, nil, false
	}
	s.mu.Lock()
	e, found := s.lookup(lower)
	var data []byte
	if found && e.f != nil {
		data = e.f.data // never modified in place: commit makes a new file
	}
	s.mu.Unlock()
	if !found {
		routeError(w, tag+"/not_found", map[string]any{".tag": tag, tag: map[string]any{".tag": "not_found"}})
		return entry{}, nil, false
	}
	return e, data, true
}

func (s *Server) download(w http.ResponseWriter, r *http.Request, arg []byte) {
	e, data, ok := s.lookupArg(w, arg, "path")
	if !ok {
		return
	}
	if e.f == nil {
		routeError(w, "path/not_file", map[string]any{".tag": "path", "path": map[string]any{".tag": "not_file"}})
		return
	}
	md, err := json.Marshal(e.metadata())
	if err != nil {
		panic(err)
	}
	size := int64(len(data))
	start, end, status := parseRange(r.Header.Get("Range"), size)
	if status == http.StatusRequestedRangeNotSatisfiable {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Dropbox-API-Result", string(md))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(end-start, 10))
	if status == http.StatusPartialContent {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, size))
	}
	w.WriteHeader(status)
	_, _ = w.Write(data[start:end])
}

// parseRange interprets a single-range Range header for a file of size
// bytes: the byte range [start, end) and the status to answer. A header it
// cannot parse is ignored, as HTTP says.
func parseRange(h string, size int64) (start, end int64, status int) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if h == "" || !ok || strings.Contains(spec, ",") {
		return 0, size, http.StatusOK
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, size, http.StatusOK
	}
	if first == "" { // suffix: the last N bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, size, http.StatusOK
		}
		if n == 0 || size == 0 {
			return 0, 0, http.StatusRequestedRangeNotSatisfiable
		}
		return max(size-n, 0), size, http.StatusPartialContent
	}
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a < 0 {
		return 0, size, http.StatusOK
	}
	b := size - 1
	if last != "" {
		if b, err = strconv.ParseInt(last, 10, 64); err != nil || b < a {
			return 0, size, http.StatusOK
		}
	}
	if a >= size {
		return 0, 0, http.StatusRequestedRangeNotSatisfiable
	}
	return a, min(b+1, size), http.StatusPartialContent
}

func (s *Server) getMetadata(w http.ResponseWriter, _ *http.Request, arg []byte) {
	var a struct {
		Path string `json:"path"`
	}
	if json.Unmarshal(arg, &a) == nil && a.Path == "" {
		badRequest(w, "Error in call to API function \"files/get_metadata\": request body: path: The root folder is unsupported.")
		return
	}
	e, _, ok := s.lookupArg(w, arg, "path")
	if !ok {
		return
	}
	s.mu.Lock()
	md := e.metadata()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, md)
}

func (s *Server) listFolder(w http.ResponseWriter, _ *http.Request, arg []byte) {
	var a struct {
		Path      string `json:"path"`
		Recursive bool   `json:"recursive"`
		Limit     int    `json:"limit"`
	}
	if err := json.Unmarshal(arg, &a); err != nil {
		badRequest(w, "Error in call to API function \"files/list_folder\": %v", err)
		return
	}
	if a.Limit < 0 || a.Limit > 2000 {
		badRequest(w, "Error in call to API function \"files/list_folder\": limit: %d is not within range [1, 2000]", a.Limit)
		return
	}
	e, _, ok := s.lookupArg(w, arg, "path")
	if !ok {
		return
	}
	if e.f != nil {
		routeError(w, "path/not_folder", map[string]any{".tag": "path", "path": map[string]any{".tag": "not_folder"}})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	entries := s.children(e.lower, a.Recursive)
	page := s.PageSize
	if page <= 0 {
		page = 2000
	}
	if a.Limit > 0 {
		page = min(page, a.Limit)
	}
	s.writePage(w, entries, page)
}

// children lists what lies under the folder lower: direct children, or
// everything below it. s.mu must be held.
func (s *Server) children(lower string, recursive bool) []entry {
	seen := make(map[string]bool)
	var entries []entry
	for l, f := range s.files {
		rest, ok := strings.CutPrefix(l, lower+"/")
		if !ok {
			continue
		}
		// Folders between lower and the file.
		for i, c := range rest {
			if c != '/' {
				continue
			}
			fl := lower + "/" + rest[:i]
			if !seen[fl] && (recursive || !strings.Contains(rest[:i], "/")) {
				seen[fl] = true
				entries = append(entries, entry{lower: fl, display: displayPrefix(f.display, fl)})
			}
		}
		if recursive || !strings.Contains(rest, "/") {
			entries = append(entries, entry{lower: l, display: f.display, f: f})
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].lower < entries[j].lower })
	return entries
}

// writePage answers with the first page of entries and keeps the rest
// under a new cursor. s.mu must be held.
func (s *Server) writePage(w http.ResponseWriter, entries []entry, page int) {
	n := min(page, len(entries))
	out := make([]map[string]any, 0, n)
	for _, e := range entries[:n] {
		out = append(out, e.metadata())
	}
	cursor := "cursor-" + randomHex(8)
	s.cursors[cursor] = entries[n:]
	writeJSON(w, http.StatusOK, map[string]any{"entries": out, "cursor": cursor, "has_more": n < len(entries)})
}

func (s *Server) listFolderContinue(w http.ResponseWriter, _ *http.Request, arg []byte) {
	var a struct {
		Cursor string `json:"cursor"`
	}
	if err := json.Unmarshal(arg, &a); err != nil {
		badRequest(w, "Error in call to API function \"files/list_folder/continue\": %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rest, ok := s.cursors[a.Cursor]
	if !ok {
		routeError(w, "reset", map[string]any{".tag": "reset"})
		return
	}
	delete(s.cursors, a.Cursor)
	page := s.PageSize
	if page <= 0 {
		page = 2000
	}
	s.writePage(w, rest, page)
}

func (s *Server) delete(w http.ResponseWriter, _ *http.Request, arg []byte) {
	e, _, ok := s.lookupArg(w, arg, "path_lookup")
	if !ok {
		return
	}
	if e.lower == "" {
		routeError(w, "path_write/disallowed_name", map[string]any{".tag": "path_write", "path_write": map[string]any{".tag": "disallowed_name"}})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	md := e.metadata()
	if e.f != nil {
		delete(s.files, e.lower)
	} else {
		for l := range s.files {
			if strings.HasPrefix(l, e.lower+"/") {
				delete(s.files, l)
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"metadata": md})
}

func (s *Server) sessionStart(w http.ResponseWriter, r *http.Request, arg []byte) {
	var a struct {
		Close       bool   `json:"close"`
		ContentHash string `json:"content_hash"`
	}
	if err := json.Unmarshal(arg, &a); err != nil {
		badRequest(w, "Error in call to API function \"files/upload_session/start\": %v", err)
		return
	}
	data, ok := s.readChunk(w, r, a.ContentHash)
	if !ok {
		return
	}
	id := "session-" + randomHex(8)
	s.mu.Lock()
	s.sessions[id] = &session{data: data, closed: a.Close}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"session_id": id})
}

// readChunk reads the body of an upload session call and checks its hash,
// answering the error itself if it cannot.
func (s *Server) readChunk(w http.ResponseWriter, r *http.Request, hash string) ([]byte, bool) {
	data, err := readBody(r, MaxUploadSize)
	if errors.Is(err, errTooLarge) {
		routeError(w, "payload_too_large", map[string]any{".tag": "payload_too_large"})
		return nil, false
	}
	if err != nil {
		return nil, false // the client went away
	}
	if hash != "" && hash != contentHash(data) {
		routeError(w, "content_hash_mismatch", map[string]any{".tag": "content_hash_mismatch"})
		return nil, false
	}
	return data, true
}

type cursorArg struct {
	SessionID string `json:"session_id"`
	Offset    int64  `json:"offset"`
}

// checkSession finds a session and checks that data may be added at the
// cursor's offset, or returns a lookup error and its summary. s.mu must be
// held.
func (s *Server) checkSession(c cursorArg, data []byte) (*session, map[string]any, string) {
	sess, ok := s.sessions[c.SessionID]
	switch {
	case !ok:
		return nil, map[string]any{".tag": "not_found"}, "not_found"
	case c.Offset != int64(len(sess.data)):
		return nil, map[string]any{".tag": "incorrect_offset", "correct_offset": len(sess.data)}, "incorrect_offset"
	case sess.closed && len(data) > 0:
		return nil, map[string]any{".tag": "closed"}, "closed"
	}
	return sess, nil, ""
}

func (s *Server) sessionAppend(w http.ResponseWriter, r *http.Request, arg []byte) {
	var a struct {
		Cursor      cursorArg `json:"cursor"`
		Close       bool      `json:"close"`
		ContentHash string    `json:"content_hash"`
	}
	if err := json.Unmarshal(arg, &a); err != nil {
		badRequest(w, "Error in call to API function \"files/upload_session/append_v2\": %v", err)
		return
	}
	data, ok := s.readChunk(w, r, a.ContentHash)
	if !ok {
		return
	}
	s.mu.Lock()
	sess, lerr, summary := s.checkSession(a.Cursor, data)
	if lerr == nil {
		sess.data = append(sess.data, data...)
		sess.closed = sess.closed || a.Close
	}
	s.mu.Unlock()
	if lerr != nil {
		routeError(w, summary, lerr)
		return
	}
	writeJSON(w, http.StatusOK, nil)
}

func (s *Server) sessionFinish(w http.ResponseWriter, r *http.Request, arg []byte) {
	var a struct {
		Cursor      cursorArg  `json:"cursor"`
		Commit      commitInfo `json:"commit"`
		ContentHash string     `json:"content_hash"`
	}
	if err := json.Unmarshal(arg, &a); err != nil {
		badRequest(w, "Error in call to API function \"files/upload_session/finish\": %v", err)
		return
	}
	if a.Commit.Autorename {
		badRequest(w, "dropboxtest: autorename is not implemented by this test double")
		return
	}
	data, ok := s.readChunk(w, r, a.ContentHash)
	if !ok {
		return
	}
	s.mu.Lock()
	sess, lerr, summary := s.checkSession(a.Cursor, data)
	var (
		werr map[string]any
		md   map[string]any
	)
	if lerr == nil {
		// The session is consumed only if the commit succeeds.
		full := append(append(make([]byte, 0, len(sess.data)+len(data)), sess.data...), data...)
		var e entry
		e, werr, summary = s.commit(a.Commit, full)
		if werr == nil {
			delete(s.sessions, a.Cursor.SessionID)
			md = e.metadata()
		}
	}
	s.mu.Unlock()
	switch {
	case lerr != nil:
		routeError(w, "lookup_failed/"+summary, map[string]any{".tag": "lookup_failed", "lookup_failed": lerr})
	case werr != nil:
		routeError(w, "path/"+summary, map[string]any{".tag": "path", "path": werr})
	default:
		writeJSON(w, http.StatusOK, md)
	}
}
