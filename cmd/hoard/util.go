package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// quotePath returns p as it may be printed on a terminal: unchanged if it
// is valid UTF-8 of printable characters, else Go-quoted ("a\nb",
// "\x1b[31m", "\xff") as GNU ls quotes such names, so that a file name
// cannot send escape sequences to the terminal or pass for two lines.
func quotePath(p string) string {
	if !utf8.ValidString(p) {
		return strconv.Quote(p)
	}
	for _, r := range p {
		if !strconv.IsPrint(r) {
			return strconv.Quote(p)
		}
	}
	return p
}

// rawStrings is a repeatable string flag (cli.GenericFlag) that keeps its
// values byte for byte. cli.StringSlice copies values between a flag's
// names (--include and -i) through JSON, which turns bytes that are not
// UTF-8 into U+FFFD: an exact non-UTF-8 path then matched nothing.
type rawStrings struct{ list []string }

// rawStringsPrefix marks rawStrings' own serialisation (see Serialize).
const rawStringsPrefix = "hoard-raw-strings:"

// Set adds v, or replaces the list with a serialisation from Serialize.
func (r *rawStrings) Set(v string) error {
	if rest, ok := strings.CutPrefix(v, rawStringsPrefix); ok {
		var raw [][]byte // base64 in JSON: any bytes survive
		if err := json.Unmarshal([]byte(rest), &raw); err == nil {
			r.list = r.list[:0]
			for _, b := range raw {
				r.list = append(r.list, string(b))
			}
			return nil
		}
	}
	r.list = append(r.list, v)
	return nil
}

// Serialize implements cli.Serializer, which cli uses to copy the values
// to the flag's other names.
func (r *rawStrings) Serialize() string {
	raw := make([][]byte, len(r.list))
	for i, s := range r.list {
		raw[i] = []byte(s)
	}
	b, _ := json.Marshal(raw)
	return rawStringsPrefix + string(b)
}

func (r *rawStrings) String() string { return strings.Join(r.list, ", ") }

// Value returns the values in the order given.
func (r *rawStrings) Value() []string { return r.list }

// plural is "1 snapshot", "2 snapshots": n and the word, with an s unless
// n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
