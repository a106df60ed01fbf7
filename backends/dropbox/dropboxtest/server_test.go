package dropboxtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hoard-backup/hoard/backends/dropbox/dropboxtest"
)

// call sends a raw request: a content call when arg is set in the header
// (content-style), else an RPC call with body as JSON.
func call(t *testing.T, srv *dropboxtest.Server, route, token, headerArg, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/2/"+route, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if headerArg != "" {
		req.Header.Set("Dropbox-API-Arg", headerArg)
		req.Header.Set("Content-Type", "application/octet-stream")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

type result struct {
	resp *http.Response
	body []byte
}

// errCall is call for routeError.
func errCall(t *testing.T, srv *dropboxtest.Server, route, token, headerArg, body string) result {
	t.Helper()
	resp, data := call(t, srv, route, token, headerArg, body, nil)
	return result{resp, data}
}

// routeError decodes a 409 body.
func routeError(t *testing.T, r result) (string, map[string]any) {
	t.Helper()
	resp, body := r.resp, r.body
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("status %d (%s), want 409", resp.StatusCode, body)
	}
	var e struct {
		Summary string         `json:"error_summary"`
		Error   map[string]any `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("409 body %q: %v", body, err)
	}
	return e.Summary, e.Error
}

func TestProtocol(t *testing.T) {
	srv := dropboxtest.NewServer(t)
	tok := srv.Token

	resp, body := call(t, srv, "files/upload", tok, `{"path":"/Dir/File.txt","mode":"add"}`, "hello world", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	var md map[string]any
	if err := json.Unmarshal(body, &md); err != nil || md["size"] != float64(11) || md["path_lower"] != "/dir/file.txt" {
		t.Fatalf("upload result %s (%v)", body, err)
	}

	// Same content again in add mode: no conflict; other content: conflict.
	if resp, body := call(t, srv, "files/upload", tok, `{"path":"/dir/file.txt","mode":{".tag":"add"}}`, "hello world", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("re-upload of the same content: %d %s", resp.StatusCode, body)
	}
	summary, detail := routeError(t, errCall(t, srv, "files/upload", tok, `{"path":"/dir/file.txt","mode":"add"}`, "other"))
	if !strings.HasPrefix(summary, "path/conflict/file/") || detail[".tag"] != "path" {
		t.Errorf("conflict: %q %v", summary, detail)
	}
	summary, _ = routeError(t, errCall(t, srv, "files/upload", tok, `{"path":"/x","content_hash":"00"}`, "data"))
	if !strings.HasPrefix(summary, "content_hash_mismatch/") {
		t.Errorf("hash mismatch: %q", summary)
	}

	// Download with ranges.
	for _, tc := range []struct {
		rng    string
		status int
		body   string
	}{
		{"", 200, "hello world"},
		{"bytes=6-", 206, "world"},
		{"bytes=0-4", 206, "hello"},
		{"bytes=6-100", 206, "world"},
		{"bytes=-5", 206, "world"},
		{"bytes=11-", 416, ""},
		{"bytes=20-30", 416, ""},
	} {
		resp, body := call(t, srv, "files/download", tok, `{"path":"/DIR/file.TXT"}`, "", map[string]string{"Range": tc.rng})
		if resp.StatusCode != tc.status || string(body) != tc.body {
			t.Errorf("download Range %q: %d %q, want %d %q", tc.rng, resp.StatusCode, body, tc.status, tc.body)
		}
		if tc.status != 416 && !strings.Contains(resp.Header.Get("Dropbox-API-Result"), `"size":11`) {
			t.Errorf("download Range %q: Dropbox-API-Result %q", tc.rng, resp.Header.Get("Dropbox-API-Result"))
		}
	}

	// Errors of each route, as Dropbox words them.
	for _, tc := range []struct {
		route, headerArg, body, summary string
	}{
		{"files/download", `{"path":"/nope"}`, "", "path/not_found/"},
		{"files/get_metadata", "", `{"path":"/nope"}`, "path/not_found/"},
		{"files/list_folder", "", `{"path":"/nope"}`, "path/not_found/"},
		{"files/list_folder", "", `{"path":"/dir/file.txt"}`, "path/not_folder/"},
		{"files/list_folder/continue", "", `{"cursor":"bogus"}`, "reset/"},
		{"files/delete_v2", "", `{"path":"/nope"}`, "path_lookup/not_found/"},
		{"files/upload_session/append_v2", `{"cursor":{"session_id":"x","offset":0}}`, "", "not_found/"},
		{"files/upload_session/finish", `{"cursor":{"session_id":"x","offset":0},"commit":{"path":"/y"}}`, "", "lookup_failed/not_found/"},
	} {
		summary, _ := routeError(t, errCall(t, srv, tc.route, tok, tc.headerArg, tc.body))
		if !strings.HasPrefix(summary, tc.summary) {
			t.Errorf("%s: error_summary %q, want %q", tc.route, summary, tc.summary)
		}
	}

	// Upload session: start, append at the right offset, finish.
	resp, body = call(t, srv, "files/upload_session/start", tok, `{}`, "abc", nil)
	var start struct {
		SessionID string `json:"session_id"`
	}
	if err := json.Unmarshal(body, &start); err != nil || resp.StatusCode != 200 {
		t.Fatalf("session start: %d %s", resp.StatusCode, body)
	}
	summary, detail = routeError(t, errCall(t, srv, "files/upload_session/append_v2", tok,
		`{"cursor":{"session_id":"`+start.SessionID+`","offset":1}}`, "def"))
	if !strings.HasPrefix(summary, "incorrect_offset/") || detail["correct_offset"] != float64(3) {
		t.Errorf("append at a wrong offset: %q %v", summary, detail)
	}
	if resp, body := call(t, srv, "files/upload_session/append_v2", tok,
		`{"cursor":{"session_id":"`+start.SessionID+`","offset":3}}`, "def", nil); resp.StatusCode != 200 {
		t.Fatalf("append: %d %s", resp.StatusCode, body)
	}
	if resp, body := call(t, srv, "files/upload_session/finish", tok,
		`{"cursor":{"session_id":"`+start.SessionID+`","offset":6},"commit":{"path":"/s/joined","mode":"add"}}`, "gh", nil); resp.StatusCode != 200 {
		t.Fatalf("finish: %d %s", resp.StatusCode, body)
	}
	if data, ok := srv.File("/S/JOINED"); !ok || string(data) != "abcdefgh" {
		t.Errorf("session file = %q, %v", data, ok)
	}

	// Listing: implicit folders, recursion, paging.
	srv.PageSize = 1
	resp, body = call(t, srv, "files/list_folder", tok, "", `{"path":"","recursive":true}`, nil)
	var page struct {
		Entries []map[string]any `json:"entries"`
		Cursor  string           `json:"cursor"`
		HasMore bool             `json:"has_more"`
	}
	seen := 0
	for {
		if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 {
			t.Fatalf("list: %d %s", resp.StatusCode, body)
		}
		seen += len(page.Entries)
		if !page.HasMore {
			break
		}
		resp, body = call(t, srv, "files/list_folder/continue", tok, "", `{"cursor":"`+page.Cursor+`"}`, nil)
	}
	if seen != 4 { // /dir, /dir/file.txt, /s, /s/joined (not /x: its hash was wrong)
		t.Errorf("recursive listing of the root gave %d entries, want 4", seen)
	}

	// Authentication.
	resp, body = call(t, srv, "files/get_metadata", "bogus", "", `{"path":"/dir"}`, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "invalid_access_token") {
		t.Errorf("bad token: %d %s", resp.StatusCode, body)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {srv.RefreshToken}, "client_id": {srv.AppKey}, "client_secret": {srv.AppSecret}}
	tr, err := http.PostForm(srv.URL+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Body.Close()
	var tok2 struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(tr.Body).Decode(&tok2); err != nil || tok2.AccessToken == "" {
		t.Fatalf("token endpoint: %d %v", tr.StatusCode, err)
	}
	srv.ExpireTokens()
	resp, body = call(t, srv, "files/get_metadata", tok2.AccessToken, "", `{"path":"/dir"}`, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "expired_access_token") {
		t.Errorf("expired token: %d %s", resp.StatusCode, body)
	}
}
