package snapshot

import (
	"path/filepath"
	"strings"
)

// Match reports whether path (absolute, cleaned) is excluded by pattern. A
// pattern without a slash matches any path element (`*.tmp`, `node_modules`);
// one with a slash matches the whole path or a leading part of it
// (`/srv/media/cache`, `/home/*/.cache`). Patterns use filepath.Match syntax.
func Match(pattern, path string) bool {
	if !strings.Contains(pattern, "/") {
		ok, _ := filepath.Match(pattern, filepath.Base(path))
		return ok
	}
	pattern = filepath.Clean(pattern)
	for p := path; ; p = filepath.Dir(p) {
		if ok, _ := filepath.Match(pattern, p); ok {
			return true
		}
		if p == "/" || p == "." {
			return false
		}
	}
}
