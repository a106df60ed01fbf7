// Package database runs what hoard does with databases on a repository:
// a backup of databases (and media trees) into one snapshot, with the
// parent chosen per database; a restore of one database's dump from a
// snapshot into its engine; and the restore drill, which restores a dump
// into a scratch database and proves it whole.
//
// The engines themselves (package dump and below) know nothing of
// repositories; the archiver and restorer know nothing of databases. This
// package joins them, so that the command line only parses, opens, calls
// and prints, and so that tests can run the whole of it on an in-memory
// repository.
package database

import (
	"github.com/hoard-backup/hoard/dump"
	"github.com/hoard-backup/hoard/dump/postgres"
	"github.com/hoard-backup/hoard/snapshot"
)

// Record is the snapshot's record of database name, whose dump described
// by in is the file path in the snapshot.
func Record(name, path string, in dump.Info) snapshot.DatabaseInfo {
	rec := snapshot.DatabaseInfo{Name: name, Path: path}
	copyInfo(&in, &rec, true)
	return rec
}

// DumpInfo is what a snapshot's record says of the dump, as the engines
// take it (dump.Target.Source).
func DumpInfo(rec *snapshot.DatabaseInfo) dump.Info {
	var in dump.Info
	copyInfo(&in, rec, false)
	return in
}

// copyInfo copies the fields dump.Info and snapshot.DatabaseInfo share,
// into the record (toRecord) or out of it. Both directions read this one
// list, so that a field added to both types is one line here.
func copyInfo(in *dump.Info, rec *snapshot.DatabaseInfo, toRecord bool) {
	field(toRecord, &in.Engine, &rec.Engine)
	field(toRecord, &in.Database, &rec.Database)
	field(toRecord, &in.Host, &rec.Host)
	field(toRecord, &in.ServerVersion, &rec.ServerVersion)
	field(toRecord, &in.Tool, &rec.Tool)
	field(toRecord, &in.ToolVersion, &rec.ToolVersion)
	field(toRecord, &in.Options, &rec.Options)
	field(toRecord, &in.Format, &rec.Format)
	field(toRecord, &in.Details, &rec.Details)
}

func field[T any](toRecord bool, in, rec *T) {
	if toRecord {
		*rec = *in
	} else {
		*in = *rec
	}
}

// FileName is the file of database name's dump in a snapshot, by the
// dump's format: "db/NAME" and an extension.
func FileName(name, format string) string {
	ext := map[string]string{"custom": ".pgdump", "tar": ".tar", "sql": ".sql", "sqlite": ".sqlite", postgres.FormatBaseBackup: ".base.tar"}[format]
	return "db/" + name + ext
}
