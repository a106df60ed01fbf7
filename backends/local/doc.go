// Package local stores a repository in a folder of the local file system.
//
// # Layout
//
// Under the repository folder PATH:
//
//	PATH/config                  the repository config (Handle{Type: ConfigFile})
//	PATH/keys/NAME               key files
//	PATH/data/XY/NAME            packs, sharded by the first two characters of
//	                             their name: data/ab/abcdef...; Create makes
//	                             the shards 00..ff
//	PATH/index/NAME              index files
//	PATH/snapshots/NAME          snapshot files
//	PATH/locks/NAME              lock files
//
// A file being written is named NAME.tmp-RANDOM in its final folder and is
// renamed into place once complete and synced. Such names are never valid
// handles, so List ignores the temp files a crash leaves behind.
//
// # Permissions
//
// A repository is private: folders are created 0700 and files 0600 unless
// Config asks otherwise, and Config never allows permissions for others. The
// modes are set explicitly, so the umask cannot widen or narrow them.
//
// # Durability
//
// Save writes the temp file, checks its length against the reader's Length,
// fsyncs it, renames it into place and fsyncs the folder (except on Windows,
// which cannot sync a folder). File systems that do not support fsync are
// tolerated.
package local
