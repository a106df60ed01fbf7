package dump

import "context"

// ScratchPrefix starts the name of every scratch database a restore drill
// (hoard db verify) makes, so that a later drill can recognise and drop
// the leftovers of one that was killed.
const ScratchPrefix = "hoard_verify_"

// CheckResult is one of an engine's own checks on a restored database.
type CheckResult struct {
	Name   string `json:"name"`             // what was checked: "PRAGMA integrity_check", "CHECK TABLE t", ...
	OK     bool   `json:"ok"`               // it passed
	Detail string `json:"detail,omitempty"` // the engine's message when it did not
}

// Checker is an engine that can prove a restored database whole. Into is
// as in Target: a database name on the configured server (a file path for
// SQLite); empty means the configured database itself.
type Checker interface {
	// Check runs the engine's own consistency checks on the database.
	Check(ctx context.Context, into string) ([]CheckResult, error)
	// Tables counts the rows of each table, by name (schema.table for
	// PostgreSQL).
	Tables(ctx context.Context, into string) (map[string]int64, error)
	// Drop removes the database; a missing one is no error.
	Drop(ctx context.Context, into string) error
	// Scratch lists the databases on the server whose names start with
	// prefix (none for SQLite, whose scratch copies are files).
	Scratch(ctx context.Context, prefix string) ([]string, error)
}
