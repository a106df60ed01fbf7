package snapshot

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
)

// MaxFindResults bounds the matches FindFiles reports for one snapshot. A
// hostile tree can name one subtree at every level, so that a few hundred
// bytes expand to more paths than a walk could ever finish; the bound turns
// that into an error instead of a run without end.
const MaxFindResults = 1 << 20

// ErrTooManyResults is returned when a snapshot holds more matches than
// MaxFindResults.
var ErrTooManyResults = errors.New("snapshot: more matches than a walk may report")

// FindPattern matches paths of a snapshot. A pattern without a slash is
// matched against each entry's name (`*.sql`, `invoice-2026*`); one with a
// slash against the entry's whole path (`/srv/media/*/thumbs`). Patterns use
// filepath.Match syntax; IgnoreCase folds both sides to lower case.
type FindPattern struct {
	Pattern    string
	IgnoreCase bool
}

// Valid reports a malformed pattern.
func (p FindPattern) Valid() error {
	if _, err := filepath.Match(p.Pattern, ""); err != nil {
		return fmt.Errorf("pattern %q: %w", p.Pattern, err)
	}
	return nil
}

// Match reports whether the entry at full path p (absolute) matches.
func (p FindPattern) Match(full string) bool {
	pat, subject := p.Pattern, full
	if !strings.Contains(pat, "/") {
		subject = path.Base(full)
	}
	if p.IgnoreCase {
		pat, subject = strings.ToLower(pat), strings.ToLower(subject)
	}
	ok, _ := filepath.Match(pat, subject)
	return ok
}

// Found is one match: the entry and its path in the snapshot.
type Found struct {
	Path string
	Node *Node
}

// Finder walks snapshot trees for matching entries. It remembers what it
// found below each tree, so snapshots that share directories (most
// snapshots of one host do) load and search each shared tree once. Name
// patterns depend only on the subtree; whole-path patterns also depend on
// where the subtree stands, so they are remembered per (tree, directory).
type Finder struct {
	// Limit is the most matches Find reports for one snapshot before it
	// fails with ErrTooManyResults; NewFinder sets MaxFindResults.
	Limit int

	r       *repo.Repository
	pattern FindPattern
	memo    map[memoKey][]Found // relative paths below the tree
}

type memoKey struct {
	tree id.ID
	dir  string // "" for name patterns
}

// NewFinder returns a Finder for pattern over r.
func NewFinder(r *repo.Repository, pattern FindPattern) *Finder {
	return &Finder{Limit: MaxFindResults, r: r, pattern: pattern, memo: map[memoKey][]Found{}}
}

// Find returns the entries of sn that match, in tree order (directories
// before their contents).
func (f *Finder) Find(ctx context.Context, sn *Snapshot) ([]Found, error) {
	rel, err := f.find(ctx, sn.Tree, "/", 0)
	if err != nil {
		return nil, err
	}
	out := make([]Found, len(rel))
	for i, m := range rel {
		out[i] = Found{Path: "/" + m.Path, Node: m.Node}
	}
	return out, nil
}

// find returns the matches below tree tid standing at directory dir, with
// paths relative to dir.
func (f *Finder) find(ctx context.Context, tid id.ID, dir string, depth int) ([]Found, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if depth > maxFindDepth {
		return nil, fmt.Errorf("%w: tree %s: directories nested deeper than %d", repo.ErrInvalidData, tid.Str(), maxFindDepth)
	}
	key := memoKey{tree: tid}
	if strings.Contains(f.pattern.Pattern, "/") {
		key.dir = dir
	}
	if m, ok := f.memo[key]; ok {
		return m, nil
	}
	t, err := LoadTree(ctx, f.r, tid)
	if err != nil {
		return nil, err
	}
	var out []Found
	for i := range t.Nodes {
		n := &t.Nodes[i]
		full := path.Join(dir, n.Name)
		if f.pattern.Match(full) {
			out = append(out, Found{Path: n.Name, Node: n})
		}
		if n.Type != TypeDir || n.Subtree == nil {
			continue
		}
		sub, err := f.find(ctx, *n.Subtree, full, depth+1)
		if err != nil {
			return nil, err
		}
		if len(out)+len(sub) > f.Limit {
			return nil, fmt.Errorf("%w (%d) below %s", ErrTooManyResults, f.Limit, full)
		}
		for _, m := range sub {
			out = append(out, Found{Path: n.Name + "/" + m.Path, Node: m.Node})
		}
	}
	f.memo[key] = out
	return out, nil
}

// maxFindDepth bounds directory nesting; real trees are far shallower, and
// a cycle cannot exist (tree IDs are hashes of their content), but a chain
// of distinct trees can be as deep as a writer likes.
const maxFindDepth = 4096
