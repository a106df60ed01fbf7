// Package dropbox stores a repository in a Dropbox folder, through the
// Dropbox API v2 (github.com/dropbox/dropbox-sdk-go-unofficial/v6).
//
// # Locations and credentials
//
//	dropbox:///Backups/hoard    the folder /Backups/hoard
//	dropbox:///                 the root (of the app folder, for app-folder apps)
//
// Credentials come from Config (the config file) or the environment: an
// OAuth2 access token in HOARD_DROPBOX_TOKEN, or a refresh token in
// HOARD_DROPBOX_REFRESH_TOKEN with the app's key and secret in
// HOARD_DROPBOX_APP_KEY and HOARD_DROPBOX_APP_SECRET, exchanged for
// short-lived access tokens at the token endpoint. Dropbox's long-lived
// access tokens are deprecated: prefer a refresh token. HOARD_DROPBOX_API_URL
// points the backend at another server (the test double in dropboxtest).
// Tokens and the app secret never appear in Location, Config.Redacted,
// errors or logs.
//
// # Layout
//
// As in backends/local: config, keys/NAME, data/XY/NAME, index/NAME,
// snapshots/NAME, locks/NAME under the folder. Dropbox paths are
// case-insensitive: two names that differ only in case are one file (hoard's
// names are lower-case hex).
//
// # Semantics
//
// Files up to ChunkSize (8 MiB) are sent with one /2/files/upload call;
// larger ones through an upload session (start, append_v2, finish) in
// ChunkSize pieces. Dropbox shows a file only once its upload is committed,
// so Save is atomic; an abandoned session expires. Every call carries the
// Dropbox content hash of its bytes. Uploads use mode "add" without
// autorename: files are immutable, and a conflict with a file of the same
// size and content hash counts as success (a retry of a Save that had
// worked), with another file as backends.ErrExist. Load downloads with a
// Range header; List uses list_folder (recursive for data/) and
// list_folder/continue; Remove uses delete_v2; Stat uses get_metadata. A
// connection on which nothing moves for Config.Timeout (default 60s) fails
// its request, so a stalled network never hangs a backup.
//
// # Errors
//
// path/not_found and path_lookup/not_found are backends.ErrNotExist. Bad,
// revoked or expired tokens, missing scopes, a full Dropbox
// (insufficient_space), malformed paths and other 4xx answers match
// backends.ErrPermanent; an access token that expired while a refresh token
// is configured is retryable, and the next try fetches a new one. Rate limits
// (429) and server errors (5xx) are a *TransientError carrying the wait the
// server asked for (RetryAfter). The SDK does not retry: backends/retry does.
package dropbox
