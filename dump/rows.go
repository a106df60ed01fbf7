package dump

import (
	"bytes"
	"errors"
	"io"
	"strings"
)

// A fingerprint is recorded at backup time so that a restore drill can
// prove the restored database holds what was archived, not merely what the
// live database holds when the drill runs. It is counted from the dump
// stream itself, on its way into the repository: exact, and nearly free,
// since the bytes pass through memory anyway.

// Fingerprint is what a backup records of a dump: the rows of each table,
// as counted in the dump stream. Names are as Checker.Tables gives them
// (schema.table for PostgreSQL). A table the dump holds no rows of may be
// missing: it counts as 0.
type Fingerprint struct {
	Rows map[string]int64 `json:"rows"`
	// done: the dump was counted to its end. A fingerprint that is not
	// done is not recorded (IsZero), so that a dump the counter could not
	// follow is stored without one rather than with wrong counts.
	done bool
}

// IsZero reports whether there is no fingerprint to record (encoding/json's
// omitzero asks).
func (f *Fingerprint) IsZero() bool { return f == nil || (!f.done && f.Rows == nil) }

// Limits on what a counter keeps, so that hostile bytes (a damaged or
// forged dump read by a drill) cannot make it grow without bound.
const (
	maxHead   = 1024    // bytes of a statement's start kept to recognise it
	maxTables = 1 << 16 // tables in one fingerprint
)

// ErrCount is a dump the counter cannot follow to its end: it ends inside
// a statement, string or COPY block, or names too many tables.
var ErrCount = errors.New("dump: cannot count the rows of the dump")

// RowCounter counts the rows of each table in a dump as its bytes are
// written to it. It never buffers the dump: only a statement's first bytes
// and the counts. Write never fails; Rows says whether the count is whole.
type RowCounter interface {
	io.Writer
	// Rows returns the counts once the whole dump has been written, or
	// ErrCount (wrapped) if it did not end where a dump can end.
	Rows() (map[string]int64, error)
}

// NewRowCounter returns the counter for an engine's dump format, or nil
// if rows cannot be counted in that format (pg_dump's tar format, an
// SQLite database file). A counter that is an io.Closer must be closed
// (Rows does) so that it ends its goroutine.
func NewRowCounter(engine, format string) RowCounter {
	switch {
	case format == "sql" && engine == Postgres:
		return newSQLCounter(dialectPostgres)
	case format == "sql" && engine == MySQL:
		return newSQLCounter(dialectMySQL)
	case format == "sql" && engine == SQLite:
		return newSQLCounter(dialectSQLite)
	case format == "custom" && engine == Postgres:
		return newCustomCounter()
	}
	return nil
}

// Fingerprinted counts the rows of a dump stream as it is read. The
// fingerprint is filled in when the stream has been read to io.EOF and the
// counter followed it; until then (and for a format with no counter) it is
// zero, and a snapshot records none.
func Fingerprinted(rc io.ReadCloser, info Info) (io.ReadCloser, *Fingerprint) {
	fp := &Fingerprint{}
	var c RowCounter
	if k, ok := rc.(Counted); ok {
		c = knownRows(k.CountedRows())
	} else {
		c = NewRowCounter(info.Engine, info.Format)
	}
	if c == nil {
		return rc, fp
	}
	return &countingReader{rc: rc, c: c, fp: fp}, fp
}

// Counted is a dump stream whose rows were counted before it is read, by
// the database itself: an SQLite backup is a database file, not text a
// counter could follow, and its copy is counted with the engine's tool.
// CountedRows returns nil if they could not be counted. As with a counted
// stream, the fingerprint is recorded only once it has been read to its end.
type Counted interface {
	CountedRows() map[string]int64
}

// knownRows is the counter of a Counted stream: it has nothing to follow.
type knownRowsCounter map[string]int64

func knownRows(rows map[string]int64) RowCounter {
	if rows == nil {
		return nil
	}
	return knownRowsCounter(rows)
}

func (k knownRowsCounter) Write(p []byte) (int, error)     { return len(p), nil }
func (k knownRowsCounter) Rows() (map[string]int64, error) { return k, nil }

type countingReader struct {
	rc io.ReadCloser
	c  RowCounter
	fp *Fingerprint
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if n > 0 && r.c != nil {
		_, _ = r.c.Write(p[:n])
	}
	if err == io.EOF && r.c != nil {
		if rows, cerr := r.c.Rows(); cerr == nil {
			r.fp.Rows, r.fp.done = rows, true
		}
		r.c = nil
	}
	return n, err
}

func (r *countingReader) Close() error {
	if cl, ok := r.c.(io.Closer); ok {
		_ = cl.Close()
	}
	r.c = nil
	return r.rc.Close()
}

type dialect uint8

const (
	dialectPostgres dialect = iota // '' strings (E'' with backslashes), "" identifiers, $$ strings, COPY blocks
	dialectMySQL                   // '' and "" strings with backslash escapes, `` identifiers
	dialectSQLite                  // '' strings, "" `` [] identifiers
)

// Scanner states.
const (
	stStart     = iota // between statements
	stHead             // the start of a statement, kept in head
	stBody             // the rest of a statement that is not counted
	stValues           // an INSERT's VALUES list
	stLine             // the rest of a line (a psql meta-command; after COPY ... ;)
	stCopy             // COPY data, one row a line, up to \.
	stLineComm         // -- comment
	stBlockComm        // /* comment */
	stBad              // given up: too many tables
)

// sqlCounter follows SQL text: it recognises each statement by its first
// bytes, counts the tuples of INSERT ... VALUES (top-level parentheses) and
// the lines of COPY ... FROM stdin blocks, and skips everything else,
// honouring quotes and comments so that a ';' or '(' in a string is data.
type sqlCounter struct {
	d     dialect
	st    int
	ret   int // state to go back to after a comment
	head  []byte
	depth int // parenthesis depth within the statement
	table string
	rows  map[string]int64

	// Quote state: q is the open quote (0: none); esc says backslash
	// escapes apply; the pending flags carry a backslash or a quote that
	// may be doubled across Write calls.
	q         byte
	esc       bool
	pendBack  bool
	pendQuote bool
	dollar    []byte // $tag$ of an open dollar quote (q == '$')
	dmatch    int    // bytes of dollar matched so far
	dtag      []byte // a $tag being read (q == 0, collecting)
	inTag     bool

	prev, prev2 byte // the last two bytes outside quotes, for E'' and $
	star        bool // block comment: last byte was '*'

	copyPos  int // COPY: 0 at a line start, 1 after "\" at a line start, -1 mid-line
	lastByte byte
	worded   bool // the statement's first word has been checked

	// The head and table of the last INSERT recognised: sqlite3 and
	// pg_dump --inserts repeat the same one for every row.
	lastHead  []byte
	lastTable string
	n         int64 // tuples of the current INSERT not yet added to rows
}

func newSQLCounter(d dialect) *sqlCounter {
	return &sqlCounter{d: d, rows: map[string]int64{}, head: make([]byte, 0, 128)}
}

func (c *sqlCounter) Rows() (map[string]int64, error) {
	c.flush()
	if c.st == stBad {
		return nil, errors.Join(ErrCount, errors.New("too many tables"))
	}
	if c.q != 0 || c.inTag || c.st == stCopy || c.st == stValues || c.st == stBlockComm ||
		c.st == stBody || (c.st == stHead && len(bytes.TrimSpace(c.head)) > 0) {
		return nil, errors.Join(ErrCount, errors.New("the dump ends inside a statement"))
	}
	if c.st == stLine && c.table != "" {
		return nil, errors.Join(ErrCount, errors.New("the dump ends before a COPY block"))
	}
	return c.rows, nil
}

func (c *sqlCounter) add(table string, n int64) {
	if c.st == stBad {
		return
	}
	if c.d == dialectSQLite && len(table) >= 7 && strings.EqualFold(table[:7], "sqlite_") {
		return // SQLite's own tables (sqlite_sequence), which a drill does not count
	}
	if _, ok := c.rows[table]; !ok && len(c.rows) >= maxTables {
		c.st = stBad
		return
	}
	c.rows[table] += n
}

func isIdent(b byte) bool {
	return b == '_' || b == '$' || b >= 0x80 || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')
}

func (c *sqlCounter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if c.st == stBad {
			return n, nil
		}
		if c.q != 0 {
			p = c.inQuote(p)
			continue
		}
		switch c.st {
		case stCopy:
			p = c.copyData(p)
			continue
		case stValues:
			p = c.values(p)
			continue
		case stLine:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return n, nil
			}
			p = p[i+1:]
			if c.table != "" {
				c.add(c.table, 0) // an empty COPY block still names its table
				c.st, c.copyPos = stCopy, 0
			} else {
				c.st = stStart
			}
			continue
		case stLineComm:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return n, nil
			}
			p = p[i+1:]
			c.st = c.ret
			continue
		case stBlockComm:
			for len(p) > 0 {
				b := p[0]
				p = p[1:]
				if c.star && b == '/' {
					c.st, c.star = c.ret, false
					break
				}
				c.star = b == '*'
			}
			continue
		}
		b := p[0]
		p = p[1:]
		c.step(b)
	}
	return n, nil
}

// step takes one byte outside quotes in stStart, stHead or stBody.
func (c *sqlCounter) step(b byte) {
	if c.inTag {
		// Reading a $tag$ opener (PostgreSQL).
		switch {
		case b == '$':
			c.dollar = append(append(append(c.dollar[:0], '$'), c.dtag...), '$')
			c.inTag, c.q, c.dmatch = false, '$', 0
			c.keep(b)
			return
		case isIdent(b) && b != '$' && len(c.dtag) < 64:
			c.dtag = append(c.dtag, b)
			c.keep(b)
			return
		}
		c.inTag = false // not a dollar quote after all: $1, a$b
	}
	prev, prev2 := c.prev, c.prev2
	c.prev2, c.prev = c.prev, b
	if c.st == stStart {
		switch {
		case b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == ';':
			return
		case b == '\\' && c.d == dialectPostgres:
			// A psql meta-command (\connect, \restrict): one line.
			c.st, c.table = stLine, ""
			return
		}
		c.st, c.depth, c.head, c.worded = stHead, 0, c.head[:0], false
	}
	// Comments.
	if (b == '-' && c.lastByte == '-') || (b == '*' && c.lastByte == '/') {
		c.ret, c.lastByte, c.star = c.st, 0, false
		if c.ret == stHead {
			c.trimHead(1)
			if len(bytes.TrimSpace(c.head)) == 0 {
				c.ret = stStart
			}
		}
		c.st = stLineComm
		if b == '*' {
			c.st = stBlockComm
		}
		return
	}
	c.lastByte = b
	switch b {
	case '\'':
		c.q, c.esc = '\'', c.d == dialectMySQL || (c.d == dialectPostgres && (prev == 'E' || prev == 'e') && !isIdent(prev2))
		c.keep(b)
		return
	case '"':
		c.q, c.esc = '"', c.d == dialectMySQL
		c.keep(b)
		return
	case '`':
		if c.d != dialectPostgres {
			c.q, c.esc = '`', false
		}
		c.keep(b)
		return
	case '$':
		if c.d == dialectPostgres && !isIdent(prev) {
			c.inTag, c.dtag = true, c.dtag[:0]
		}
		c.keep(b)
		return
	case '(':
		if c.depth == 0 && c.st == stHead && c.open() {
			return
		}
		c.depth++
	case ')':
		if c.depth > 0 {
			c.depth--
		}
	case ';':
		if c.depth == 0 {
			if c.st == stHead {
				c.end()
			}
			if c.st != stLine {
				c.st = stStart
			}
			return
		}
	}
	c.keep(b)
}

// keep adds a byte to the head of a statement being recognised.
func (c *sqlCounter) keep(b byte) {
	if c.st != stHead {
		return
	}
	if len(c.head) >= maxHead {
		c.st = stBody
		return
	}
	c.head = append(c.head, b)
	// Statements that are never counted are skipped once their first word
	// is read.
	if !c.worded && !isIdent(b) && !(len(c.head) == 1 && (b == '-' || b == '/')) { // a comment may start
		c.worded = true
		if !counted(c.head[:len(c.head)-1]) {
			c.st = stBody
		}
	}
}

// counted says whether a statement's first word starts one that may be
// counted or name a table.
func counted(w []byte) bool {
	for _, k := range []string{"INSERT", "REPLACE", "COPY", "CREATE"} {
		if len(w) == len(k) && strings.EqualFold(string(w), k) {
			return true
		}
	}
	return false
}

func (c *sqlCounter) trimHead(n int) {
	if len(c.head) >= n {
		c.head = c.head[:len(c.head)-n]
	}
}

// open handles a top-level '(' in a statement's head: the first tuple of
// an INSERT's VALUES (it returns true and counts it), an INSERT's column
// list, or a CREATE TABLE's columns.
func (c *sqlCounter) open() bool {
	if c.lastHead != nil && bytes.Equal(c.head, c.lastHead) {
		c.table, c.n, c.st, c.depth = c.lastTable, 1, stValues, 1
		return true
	}
	t := tokens(c.head, c.d)
	if name, rest, ok := c.insertInto(t); ok {
		if valuesNext(rest) {
			c.add(name, 0)
			if c.st != stBad {
				c.table, c.n, c.st, c.depth = name, 1, stValues, 1
				c.lastHead, c.lastTable = append(c.lastHead[:0], c.head...), name
			}
			return true
		}
		if len(rest) == 0 {
			return false // the column list
		}
		c.st = stBody
		return false
	}
	if c.d == dialectPostgres && len(t) == 2 && t[0].kw("COPY") || len(t) == 4 && t[0].kw("COPY") && t[2].s == "." {
		return false // COPY's column list
	}
	if name, ok := c.createTable(t); ok {
		c.add(name, 0)
	}
	if c.st != stBad {
		c.st = stBody
	}
	return false
}

// valuesNext says whether the tokens after an INSERT's table name end
// where its VALUES list starts: an optional column list, words such as
// pg_dump's OVERRIDING SYSTEM VALUE, then VALUES.
func valuesNext(rest []token) bool {
	if len(rest) == 0 || !rest[len(rest)-1].kw("VALUES") {
		return false
	}
	for i, t := range rest[:len(rest)-1] {
		if !(t.ident && !t.quoted) && !(i == 0 && t.s == "(") {
			return false
		}
	}
	return true
}

// end handles the ';' that ends a statement's head.
func (c *sqlCounter) end() {
	t := tokens(c.head, c.d)
	if name, rest, ok := c.insertInto(t); ok {
		if len(rest) == 2 && rest[0].kw("DEFAULT") && rest[1].kw("VALUES") {
			c.add(name, 1)
		}
		return
	}
	if c.d == dialectPostgres && len(t) >= 4 && t[0].kw("COPY") {
		name, rest := c.name(t[1:])
		if name != "" && len(rest) >= 2 && rest[len(rest)-2].kw("FROM") && rest[len(rest)-1].kw("STDIN") &&
			(len(rest) == 2 || rest[0].s == "(") {
			c.table, c.st = name, stLine
			return
		}
	}
	if name, ok := c.createTable(t); ok {
		c.add(name, 0)
	}
}

// insertInto matches INSERT [IGNORE|OR x] INTO name and returns the tokens
// after the name (a column list is one "(" token followed by the rest).
func (c *sqlCounter) insertInto(t []token) (string, []token, bool) {
	if len(t) < 3 || !(t[0].kw("INSERT") || t[0].kw("REPLACE")) {
		return "", nil, false
	}
	i := 1
	for i < len(t) && !t[i].kw("INTO") && i < 3 {
		i++
	}
	if i >= len(t) || !t[i].kw("INTO") {
		return "", nil, false
	}
	name, rest := c.name(t[i+1:])
	if name == "" {
		return "", nil, false
	}
	return name, rest, true
}

// createTable matches CREATE [UNLOGGED] TABLE [IF NOT EXISTS] name.
func (c *sqlCounter) createTable(t []token) (string, bool) {
	if len(t) < 3 || !t[0].kw("CREATE") {
		return "", false
	}
	i := 1
	if t[i].kw("UNLOGGED") {
		i++
	}
	if i >= len(t) || !t[i].kw("TABLE") {
		return "", false
	}
	i++
	if i+2 < len(t) && t[i].kw("IF") && t[i+1].kw("NOT") && t[i+2].kw("EXISTS") {
		i += 3
	}
	name, rest := c.name(t[i:])
	if name == "" || len(rest) != 0 {
		return "", false // CREATE TABLE ... AS, PARTITION OF: no rows of its own in the dump
	}
	return name, true
}

// name reads a possibly qualified table name: PostgreSQL's schema.table,
// the table alone for MySQL and SQLite (as their Tables name them).
func (c *sqlCounter) name(t []token) (string, []token) {
	var parts []string
	i := 0
	for i < len(t) && t[i].ident {
		parts = append(parts, t[i].s)
		i++
		if i < len(t) && t[i].s == "." {
			i++
			continue
		}
		break
	}
	if len(parts) == 0 || len(parts) > 3 {
		return "", t
	}
	if c.d == dialectPostgres {
		if len(parts) != 2 {
			return strings.Join(parts, "."), t[i:]
		}
		return parts[0] + "." + parts[1], t[i:]
	}
	return parts[len(parts)-1], t[i:]
}

type token struct {
	s      string
	ident  bool // a name: a word or a quoted identifier
	quoted bool
}

func (t token) kw(k string) bool { return t.ident && !t.quoted && strings.EqualFold(t.s, k) }

// tokens splits a statement's head into words, quoted identifiers and
// punctuation; a parenthesised list is one "(" token.
func tokens(h []byte, d dialect) []token {
	var t []token
	for i := 0; i < len(h); {
		b := h[i]
		switch {
		case b == ' ' || b == '\t' || b == '\n' || b == '\r':
			i++
		case b == '"' || b == '`' || (b == '[' && d == dialectSQLite):
			end := b
			if b == '[' {
				end = ']'
			}
			var s []byte
			j := i + 1
			for j < len(h) {
				if h[j] == end {
					if end != ']' && j+1 < len(h) && h[j+1] == end {
						s = append(s, end)
						j += 2
						continue
					}
					break
				}
				s = append(s, h[j])
				j++
			}
			t = append(t, token{s: string(s), ident: true, quoted: true})
			i = j + 1
		case isIdent(b) && b != '$':
			j := i
			for j < len(h) && isIdent(h[j]) {
				j++
			}
			s := string(h[i:j])
			if d == dialectPostgres {
				s = strings.ToLower(s)
			}
			t = append(t, token{s: s, ident: true})
			i = j
		case b == '(':
			depth, j := 0, i
			for ; j < len(h); j++ {
				if h[j] == '(' {
					depth++
				} else if h[j] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			t = append(t, token{s: "("})
			i = j + 1
		default:
			t = append(t, token{s: string(b)})
			i++
		}
	}
	return t
}

// inQuote skips the inside of a quoted string or identifier; the head
// keeps what it skips while a statement is being recognised.
func (c *sqlCounter) inQuote(p []byte) []byte {
	if c.q == '$' {
		for i, b := range p {
			c.keepQuoted(b)
			if b == c.dollar[c.dmatch] {
				c.dmatch++
				if c.dmatch == len(c.dollar) {
					c.q, c.dmatch, c.prev, c.prev2 = 0, 0, '$', 0
					return p[i+1:]
				}
			} else if b == '$' {
				c.dmatch = 1
			} else {
				c.dmatch = 0
			}
		}
		return nil
	}
	if c.pendBack {
		c.pendBack = false
		c.keepQuoted(p[0])
		return p[1:]
	}
	if c.pendQuote {
		c.pendQuote = false
		if p[0] == c.q {
			c.keepQuoted(p[0])
			return p[1:]
		}
		c.closeQuote()
		return p
	}
	for len(p) > 0 {
		j := bytes.IndexByte(p, c.q)
		seg := p
		if j >= 0 {
			seg = p[:j]
		}
		if c.esc {
			if k := bytes.IndexByte(seg, '\\'); k >= 0 {
				c.keepQuotedBytes(p[:k+1])
				if k+1 == len(p) {
					c.pendBack = true
					return nil
				}
				c.keepQuoted(p[k+1])
				p = p[k+2:]
				continue
			}
		}
		if j < 0 {
			c.keepQuotedBytes(p)
			return nil
		}
		c.keepQuotedBytes(p[:j+1])
		if j+1 == len(p) {
			c.pendQuote = true
			return nil
		}
		if p[j+1] == c.q {
			c.keepQuoted(p[j+1])
			p = p[j+2:]
			continue
		}
		c.closeQuote()
		return p[j+1:]
	}
	return nil
}

func (c *sqlCounter) closeQuote() {
	c.prev, c.prev2, c.lastByte = c.q, 0, c.q
	c.q = 0
}

func (c *sqlCounter) keepQuoted(b byte) {
	if c.st == stHead {
		if len(c.head) >= maxHead {
			c.st = stBody
			return
		}
		c.head = append(c.head, b)
	}
}

func (c *sqlCounter) keepQuotedBytes(p []byte) {
	if c.st == stHead {
		if len(c.head)+len(p) > maxHead {
			c.st = stBody
			return
		}
		c.head = append(c.head, p...)
	}
}

// values counts the tuples of an INSERT's VALUES list: each '(' at depth 0.
// Anything else at depth 0 but ',' and blanks (ON CONFLICT ..., ON
// DUPLICATE KEY UPDATE ...) ends the list; the rest of the statement is
// skipped.
func (c *sqlCounter) values(p []byte) []byte {
	for i := 0; i < len(p); i++ {
		if c.depth > 0 {
			// Inside a tuple only quotes and parentheses matter.
			for i < len(p) && !valueSpecial[p[i]] {
				i++
			}
			if i == len(p) {
				break
			}
		}
		b := p[i]
		switch b {
		case '\'', '"', '`':
			if b == '`' && c.d == dialectPostgres {
				continue
			}
			prev, prev2 := c.prev, byte(0)
			if i > 0 {
				prev = p[i-1]
			}
			if i > 1 {
				prev2 = p[i-2]
			}
			c.q = b
			c.esc = c.d == dialectMySQL && b != '`' || (c.d == dialectPostgres && b == '\'' && (prev == 'E' || prev == 'e') && !isIdent(prev2))
			// Skip the string here while it ends in p (most do).
			j := c.skipString(p[i+1:])
			if j < 0 {
				return nil // the string goes on in the next write
			}
			i += j
			continue
		case '(':
			if c.depth == 0 {
				c.n++
			}
			c.depth++
		case ')':
			if c.depth > 0 {
				c.depth--
			}
		case ';':
			if c.depth == 0 {
				c.flush()
				c.st, c.table = stStart, ""
				return p[i+1:]
			}
		case ',', ' ', '\n', '\r', '\t':
		default:
			if c.depth == 0 {
				c.flush()
				c.st, c.lastByte, c.prev = stBody, 0, 0
				return p[i:]
			}
		}
		c.prev = b
	}
	if len(p) > 0 {
		c.prev = p[len(p)-1]
	}
	return nil
}

// skipString skips an open string (c.q) in p, which starts after its
// opening quote, and returns the index in p of its closing quote. If the
// string does not end within p (or a doubled quote or backslash may
// straddle the next write) it returns -1 with the quote state set, and
// inQuote takes over.
func (c *sqlCounter) skipString(p []byte) int {
	off := 0
	for {
		j := bytes.IndexByte(p[off:], c.q)
		if c.esc {
			seg := p[off:]
			if j >= 0 {
				seg = seg[:j]
			}
			if k := bytes.IndexByte(seg, '\\'); k >= 0 {
				if off+k+2 > len(p) {
					c.pendBack = true
					return -1
				}
				off += k + 2
				continue
			}
		}
		if j < 0 || off+j+1 == len(p) {
			if j >= 0 {
				c.pendQuote = true
			}
			return -1
		}
		if p[off+j+1] == c.q {
			off += j + 2
			continue
		}
		c.prev, c.q = c.q, 0
		return off + j + 1
	}
}

// flush adds the tuples of the INSERT just ended to its table.
func (c *sqlCounter) flush() {
	if c.n != 0 {
		c.add(c.table, c.n)
		c.n = 0
	}
}

// valueSpecial marks the bytes that matter inside a tuple.
var valueSpecial = [256]bool{'\'': true, '"': true, '`': true, '(': true, ')': true, ';': true}

// copyData counts the lines of a COPY block up to the line "\.". A row's
// line breaks are escaped (\n) in COPY's text format, so every line is a
// row, and no row's line starts with "\." (a backslash is written "\\").
func (c *sqlCounter) copyData(p []byte) []byte {
	for len(p) > 0 {
		switch c.copyPos {
		case 0: // at a line start
			if p[0] == '\\' {
				c.copyPos = 1
				p = p[1:]
				continue
			}
			// One whole row, as pg_dump's custom format writes them a
			// chunk each: a single scan.
			if bytes.IndexByte(p, '\n') == len(p)-1 {
				c.n++
				return nil
			}
		case 1: // after "\" at a line start
			if p[0] == '.' {
				c.flush()
				c.st, c.table = stLine, ""
				return p[1:]
			}
			c.copyPos = -1
		}
		i := bytes.Index(p, []byte("\n\\."))
		if i < 0 {
			c.n += int64(bytes.Count(p, []byte{'\n'}))
			switch {
			case p[len(p)-1] == '\n':
				c.copyPos = 0
			case len(p) >= 2 && p[len(p)-2] == '\n' && p[len(p)-1] == '\\':
				c.copyPos = 1
			default:
				c.copyPos = -1
			}
			return nil
		}
		c.n += int64(bytes.Count(p[:i+1], []byte{'\n'}))
		c.flush()
		c.st, c.table = stLine, ""
		return p[i+3:]
	}
	return nil
}
