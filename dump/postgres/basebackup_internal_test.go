package postgres

import (
	"strings"
	"testing"
)

func TestParseLabelAndManifest(t *testing.T) {
	out := map[string]string{}
	parseLabel(strings.NewReader("START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\n"+
		"BACKUP METHOD: streamed\nSTART TIME: 2026-12-02 06:58:08 UTC\nLABEL: pg_basebackup base backup\nSTART TIMELINE: 3\n"), out)
	if out["start_lsn"] != "0/2000028" || out["start_wal"] != "000000010000000000000002" || out["timeline"] != "3" {
		t.Errorf("backup_label: %v", out)
	}
	err := parseManifest(strings.NewReader(`{"PostgreSQL-Backup-Manifest-Version": 1, "Files": [],
"WAL-Ranges": [{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }], "Manifest-Checksum": "x"}`), out)
	if err != nil || out["stop_lsn"] != "0/2000100" {
		t.Errorf("backup_manifest: %v %v", out, err)
	}
	if err := parseManifest(strings.NewReader(`{"WAL-Ranges": [`), out); err == nil {
		t.Error("a truncated manifest was accepted")
	}
}
