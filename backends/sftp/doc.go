// Package sftp stores a repository in a folder of an SSH server, through
// SFTP (github.com/pkg/sftp over golang.org/x/crypto/ssh).
//
// # Location
//
//	sftp://[USER@]HOST[:PORT]/PATH
//
// PATH is relative to the login folder (the user's home on OpenSSH); a
// second slash makes it absolute: sftp://backup@nas//srv/backups. The user
// defaults to $USER and the port to 22. ~/.ssh/config is not read.
//
// # Credentials and host keys
//
// Opener, which the hoard command uses, takes credentials from the
// environment, never from the location:
//
//	HOARD_SFTP_KEY_FILE     private key file (not passphrase-protected;
//	                        use an agent for those)
//	SSH_AUTH_SOCK           an ssh-agent whose keys are offered
//	HOARD_SFTP_PASSWORD     password, tried after the keys
//	HOARD_SFTP_KNOWN_HOSTS  known_hosts file; default ~/.ssh/known_hosts
//
// With none of the first three set, ~/.ssh/id_ed25519, id_ecdsa and id_rsa
// are tried, as ssh does. The server's host key must be in the known_hosts
// file: an unknown key fails with its SHA256 fingerprint and the command that
// adds it, and a changed key fails as a possible attack. Both failures, and
// a refused login, match backends.ErrPermanent. There is no switch to skip
// the check.
//
// # Layout and writes
//
// The layout is that of backends/local (config, keys/, data/XY/, index/,
// snapshots/, locks/); Create makes data/00 to data/ff. Folders are created
// 0700 and files 0600, set explicitly after creation because SFTP applies
// the server's umask. Save writes NAME.tmp-RANDOM in the final folder,
// checks the byte count and the size the server reports against the
// reader's Length, fsyncs the file if the server has the fsync@openssh.com
// extension, and renames it into place with posix-rename@openssh.com, which
// replaces atomically (Properties().HasAtomicReplace). Without that
// extension the old file is removed before the rename. A failed Save removes
// its temp file when the connection allows; temp files are never listed.
//
// # Connections and failures
//
// The backend keeps one SSH connection; concurrent calls share it (SFTP
// multiplexes requests) and Properties().Connections (default 5) advises
// how many to make at once. A connection that is lost fails the calls that
// use it and is replaced by the next call. Config.Timeout (default 60s)
// bounds how long the server may stay silent: every read and write on the
// connection has that deadline, and keep-alives every third of it keep a
// healthy idle connection talking, so a dead network fails calls instead of
// hanging them.
//
// Errors: a missing file is backends.ErrNotExist; permission denied, a
// refused login, a bad host key and a full disk match backends.ErrPermanent.
// OpenSSH reports a full disk as a generic failure, so after a failed write
// the backend asks the server for the free space (statvfs@openssh.com) and
// reports "no space left on the server" when the file cannot fit.
package sftp
