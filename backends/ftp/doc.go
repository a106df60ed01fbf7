// Package ftp stores a repository in a folder of an FTP server
// (github.com/jlaffaye/ftp), in plain FTP or with explicit TLS.
//
// # Location
//
//	ftp://[USER[:PASSWORD]@]HOST[:PORT]/PATH     plain FTP (port 21)
//	ftps://[USER[:PASSWORD]@]HOST[:PORT]/PATH    AUTH TLS on the same port,
//	                                             data connections under TLS too
//
// PATH is relative to the folder the server puts the user in at login; a
// second slash makes it absolute: ftp://backup@nas//srv/backups. Without a
// user the login is anonymous. Passive mode (EPSV, else PASV) is always
// used, with the control connection's address (a server's PASV address is
// not trusted).
//
// # Credentials
//
// The password comes from the location or, when it has none, from
// HOARD_FTP_PASSWORD (Opener), or from Config.Password. It never appears in
// Location, Config's String or any error. HOARD_FTP_CA_FILE (Config.CAFile)
// names PEM certificates to trust for ftps:// besides the system's, for a
// server with a self-signed certificate. Plain FTP sends the password and
// the (encrypted) data in clear: prefer ftps://, or SFTP.
//
// # Layout and writes
//
// The layout is that of backends/local (config, keys/, data/XY/, index/,
// snapshots/, locks/), except that Create does not make the 256 pack
// shards: the first Save into a shard makes it, since every folder costs
// List a transfer over FTP. FTP cannot set modes; the server's umask decides
// them (vsftpd: local_umask=077 for a private repository).
//
// Save uploads NAME.tmp-RANDOM in the final folder, checks the byte count
// against the reader's Length and the size the server reports (SIZE), then
// renames it into place (RNFR/RNTO), so a reader never sees half a file. A
// server that refuses to rename onto an existing file gets it deleted first;
// since FTP does not promise an atomic replace, HasAtomicReplace is false.
// A failed Save deletes its temp file when the connection allows; temp
// files are never listed.
//
// # Connections
//
// FTP carries one transfer per connection, so the backend keeps a pool of
// logged-in connections, at most Config.Connections (default 4, reported
// by Properties) in use at once. An idle connection older than ten seconds
// is checked with NOOP before use. Load uses REST and RETR for a range
// (and SIZE first for a read to the end of the file). When the reader stops
// before the end of the file, the data connection is closed, the server's
// reply of failure read, and a NOOP checks that the control connection is
// still in step before it is reused; a connection out of step is dropped.
// A connection that fails at the network level
// is dropped with the idle ones, so the next call starts afresh.
// Config.Timeout (default 60s) bounds every read and write: a server or
// network that goes silent fails the call instead of hanging it. A
// cancelled ctx interrupts the call's connection at once.
//
// # Errors
//
// 550 (file unavailable) is backends.ErrNotExist for Load, Stat and Remove,
// and permanent for Save (the folder is missing or out of reach). 530
// (login refused), 552 and 452 (no space), 553 (name refused) and an
// untrusted certificate match backends.ErrPermanent. vsftpd answers a full
// disk with 451 (a transient reply by the protocol): the error then says the
// disk may be full, and retries are left to the caller.
package ftp
