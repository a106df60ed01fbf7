// Package dump holds what the database engines share. Each engine
// (dump/postgres, dump/mysql, dump/sqlite) runs the database's own tools:
// Backup starts the dump tool and yields its output as a stream, whose Close
// reports the tool's exit status and standard error; Restore feeds a stream
// to the restore tool. The engines know nothing of repositories: they yield
// and take streams.
//
// External commands are data, so that tests and unusual installs can name
// them: every engine takes the path of its tools and their arguments in its
// Config, with defaults that work with the tools of Debian's
// postgresql-client, mariadb-client and sqlite3 packages.
// Secrets never go on a command line: passwords reach the tools through
// their environment (PGPASSWORD, MYSQL_PWD).
package dump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Engine names, as the snapshot records them.
const (
	Postgres = "postgres"
	MySQL    = "mysql"
	SQLite   = "sqlite"
)

// ErrNotEmpty is returned by Restore when the target database exists and
// holds data, and Target.Force is not set.
var ErrNotEmpty = errors.New("dump: the target database is not empty (use --force to replace it)")

// ErrSource marks a database that cannot be read before any dump tool
// runs (an SQLite file that is missing or not a regular file). Like a
// failed dump tool (ToolError), it is a failed source: no snapshot is made.
var ErrSource = errors.New("dump: the database cannot be read")

// Engine is one database: its dump and its restore.
type Engine interface {
	// Name is the engine's name as snapshots record it: Postgres, MySQL
	// or SQLite (Info.Engine).
	Name() string
	// Format names the format Backup writes: "custom", "tar", "sql" or
	// "sqlite" (as Info.Format).
	Format() string
	// Backup starts a dump. The stream must be read to its end and then
	// closed: Close waits for the tool and returns a *ToolError if it
	// failed (non-zero exit, killed), so that a truncated dump is never
	// taken for a whole one. Closing before the end stops the tool.
	// Info describes the dump; it is known before the first byte is read.
	Backup(ctx context.Context) (io.ReadCloser, Info, error)
	// Restore loads a dump made by Backup into the target. It returns
	// ErrNotEmpty (wrapped) when the target holds data and t.Force is not
	// set. A read error from r stops the restore tool and is returned.
	Restore(ctx context.Context, r io.Reader, t Target) error
}

// Info describes a dump. It holds no credentials.
type Info struct {
	Engine        string            // Postgres, MySQL or SQLite
	Database      string            // database name on the server; the file's path for SQLite
	Host          string            // server address (host:port or socket), without credentials; empty for SQLite
	ServerVersion string            // as the server reports it (SQLite: the library version)
	Tool          string            // the dump tool as configured (name or path)
	ToolVersion   string            // first line of `tool --version`
	Options       []string          // the dump options used (connection arguments left out)
	Format        string            // "custom" (pg_dump -Fc), "sql" (SQL text) or "sqlite" (a database file)
	Details       map[string]string // engine-specific facts restore uses: encoding, collation
}

// Target says where Restore loads a dump.
type Target struct {
	// Into is the database to restore into: a name on the configured
	// server or a URL (postgres, mysql), or a file path (sqlite). Empty
	// means the configured database itself.
	Into string
	// Force replaces a target that holds data.
	Force bool
	// Source is what the snapshot recorded about the dump, when known:
	// a new database is created with the source's encoding and collation.
	Source *Info
}

// ToolError is a failed external tool: it could not start, exited non-zero
// or was killed. Stderr is the end of what it wrote to standard error.
type ToolError struct {
	Tool   string
	Err    error
	Stderr string
}

func (e *ToolError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		return fmt.Sprintf("%s failed: %v", e.Tool, e.Err)
	}
	return fmt.Sprintf("%s failed (%v): %s", e.Tool, e.Err, msg)
}

// Unwrap returns the exec error.
func (e *ToolError) Unwrap() error { return e.Err }
