package snapshot

import (
	"path/filepath"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Match reports whether path (absolute, cleaned) is excluded by pattern. A
// pattern without a slash matches any path element (`*.tmp`, `node_modules`);
// one with a slash matches the whole path or a leading part of it
// (`/srv/media/cache`, `/home/*/.cache`). Patterns use filepath.Match syntax
// plus `**`, which matches any number of path elements
// (`/srv/**/cache`, `**/*.log`), and `{a,b}` alternatives, as restic's do.
func Match(pattern, path string) bool {
	if !strings.Contains(pattern, "/") {
		ok, _ := doublestar.Match(pattern, filepath.Base(path))
		return ok
	}
	pattern = filepath.Clean(pattern)
	for p := path; ; p = filepath.Dir(p) {
		if ok, _ := doublestar.Match(pattern, p); ok {
			return true
		}
		if p == "/" || p == "." {
			return false
		}
	}
}

// ValidPattern reports whether pattern is well formed for Match.
func ValidPattern(pattern string) bool { return doublestar.ValidatePattern(pattern) }
