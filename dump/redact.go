package dump

import (
	"path/filepath"
	"regexp"
	"strings"
)

// Redacted replaces what a command line may hold of secrets with "***", so
// that argv can be stored in a snapshot (which any write-only key reads) and
// printed in messages. It covers, in every argument and in every word of an
// argument (a shell command given to sh -c):
//
//   - the password of a URL: postgres://user:SECRET@host/db;
//   - NAME=VALUE where NAME holds "pass", "pwd", "secret" or "token", in any
//     case: libpq's password=SECRET (also quoted: password='a b'), a URL's
//     ?password=SECRET, PGPASSWORD=SECRET, MYSQL_PWD=SECRET;
//   - options --password=SECRET (any tool), the argument after a lone
//     --password of a tool other than MySQL's (whose --password asks), and
//     MySQL's and MariaDB's -pSECRET.
//
// It cannot know every tool's conventions: the safe way is to keep secrets
// out of the command line (docs/databases.md).
func Redacted(argv []string) []string {
	out := make([]string, len(argv))
	mysql := false
	redactNext := false
	for i, a := range argv {
		if redactNext && a != "" && !strings.HasPrefix(a, "-") {
			out[i] = redactedMark
			redactNext = false
			continue
		}
		redactNext = false
		if isMySQLTool(a) {
			mysql = true
		}
		a = urlPassword.ReplaceAllString(a, "${1}"+redactedMark+"@")
		a = secretAssignment.ReplaceAllString(a, "${1}"+redactedMark)
		a = redactWords(a, &mysql)
		if a == "--password" || a == "--pass" || a == "-password" {
			redactNext = !mysql
		}
		out[i] = a
	}
	return out
}

// redactedMark replaces a secret.
const redactedMark = "***"

var (
	// urlPassword matches the user:password@ of a URL; group 1 is up to the
	// colon. The password runs to the last '@' of the word, since users do
	// not always encode an '@' in it as %40.
	urlPassword = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s'"]*:)[^\s'"]*@`)
	// secretAssignment matches NAME=VALUE with a secret-sounding NAME;
	// group 1 is up to the '='. VALUE is quoted or runs to a space or '&'.
	secretAssignment = regexp.MustCompile(`(?i)(\b[a-z0-9_.-]*(?:pass|pwd|secret|token)[a-z0-9_.-]*\s*=\s*)(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&'"]+)`)
)

// redactWords redacts MySQL's -pSECRET in the words of a, once a MySQL tool
// was named (before a or in it), and returns a.
func redactWords(a string, mysql *bool) string {
	words := strings.Fields(a)
	if len(words) == 0 {
		return a
	}
	changed := false
	for i, w := range words {
		if isMySQLTool(w) {
			*mysql = true
		}
		if *mysql && strings.HasPrefix(w, "-p") && len(w) > 2 {
			words[i] = "-p" + redactedMark
			changed = true
		}
	}
	if !changed {
		return a
	}
	return strings.Join(words, " ")
}

// isMySQLTool reports whether w names a MySQL or MariaDB client program
// (mysqldump, mysql, mariadb-dump, /usr/bin/mariadb, ...).
func isMySQLTool(w string) bool {
	b := filepath.Base(strings.Trim(w, `'"`))
	return strings.HasPrefix(b, "mysql") || strings.HasPrefix(b, "mariadb")
}
