package report

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Run is one command's outcome.
type Run struct {
	Command string // backup, run, db backup, forget, prune, copy, ...
	Host    string
	Source  string // what was backed up: a database or tree name, "stdin", paths; may be empty
	Start   time.Time
	End     time.Time
	Err     error
	// Values are the figures of the command's summary, by metric name
	// without the hoard_last_ prefix (bytes_read, bytes_added,
	// bytes_stored, files_new, ...): names of [a-z_] only.
	Values map[string]float64
}

// metricHelp documents the metrics every run writes, and the usual values.
var metricHelp = map[string]string{
	"start_timestamp_seconds": "When the last run of the command started (Unix time).",
	"end_timestamp_seconds":   "When the last run of the command ended (Unix time).",
	"success":                 "1 if the last run of the command succeeded, 0 if it failed.",
	"duration_seconds":        "How long the last run of the command took.",
	"bytes_read":              "Bytes the last run read from its source.",
	"bytes_added":             "Plaintext bytes of new blobs the last run stored.",
	"bytes_stored":            "Bytes (compressed, encrypted) the last run added to the repository.",
	"files_new":               "Files the last run found new.",
	"files_changed":           "Files the last run found changed.",
	"files_unmodified":        "Files the last run found unchanged.",
	"errors":                  "Files or items the last run could not read.",
	"snapshots":               "Snapshots in the repository after the last run.",
	"snapshots_removed":       "Snapshots the last run removed.",
	"repository_bytes":        "Size of the repository's packs after the last run.",
}

// series is one line of the textfile: a metric, its labels and value.
type series struct {
	name   string // without prefix
	labels string // `command="backup",host="web1",source="main"`
	value  float64
}

const prefix = "hoard_last_"

// WriteTextfile records run in the textfile at path, replacing the series
// an earlier run of the same command, host and source wrote and keeping
// those of others. The file is written to a temporary file beside it and
// renamed, so the collector never reads half of it (node_exporter's rule).
// Only lines this function writes are kept from the old file.
func WriteTextfile(path string, run Run) error {
	old, err := readTextfile(path)
	if err != nil {
		return err
	}
	labels := fmt.Sprintf(`command=%s,host=%s,source=%s`, quote(run.Command), quote(run.Host), quote(run.Source))
	var all []series
	for _, s := range old {
		if s.labels != labels {
			all = append(all, s)
		}
	}
	success := 0.0
	if run.Err == nil {
		success = 1
	}
	add := func(name string, v float64) {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			all = append(all, series{name, labels, v})
		}
	}
	add("start_timestamp_seconds", float64(run.Start.UnixMilli())/1000)
	add("end_timestamp_seconds", float64(run.End.UnixMilli())/1000)
	add("success", success)
	add("duration_seconds", run.End.Sub(run.Start).Seconds())
	for name, v := range run.Values {
		if validName(name) {
			add(name, v)
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].name != all[j].name {
			return all[i].name < all[j].name
		}
		return all[i].labels < all[j].labels
	})
	var b bytes.Buffer
	for i, s := range all {
		if i == 0 || all[i-1].name != s.name {
			help := metricHelp[s.name]
			if help == "" {
				help = "A figure of the last run's summary."
			}
			fmt.Fprintf(&b, "# HELP %s%s %s\n# TYPE %s%s gauge\n", prefix, s.name, help, prefix, s.name)
		}
		fmt.Fprintf(&b, "%s%s{%s} %s\n", prefix, s.name, s.labels, strconv.FormatFloat(s.value, 'g', -1, 64))
	}
	return writeAtomic(path, b.Bytes())
}

// readTextfile reads the series an earlier WriteTextfile wrote; a missing
// file is empty.
func readTextfile(path string) ([]series, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("metrics textfile: %w", err)
	}
	defer f.Close()
	var out []series
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		open, close := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
		if open < 0 || close < open {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[close+1:]), 64)
		if err != nil {
			continue
		}
		name := line[len(prefix):open]
		if !validName(name) {
			continue
		}
		out = append(out, series{name: name, labels: line[open+1 : close], value: v})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("metrics textfile %s: %w", path, err)
	}
	return out, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// quote writes a label value as the text format wants: in double quotes,
// with backslash, quote and newline escaped.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("metrics textfile: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("metrics textfile: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("metrics textfile: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("metrics textfile: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("metrics textfile: %w", err)
	}
	return nil
}
