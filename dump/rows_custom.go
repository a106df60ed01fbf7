package dump

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// customCounter counts the rows in pg_dump's custom format (-Fc) when it
// is not compressed (--compress=0, as hoard runs it, so that the chunks
// deduplicate): the table of contents names each TABLE DATA entry by dump
// ID, and each data block is a run of length-prefixed chunks of COPY text
// (or of INSERT statements, with --inserts). Only the archive version of
// pg_dump 12 to 15 (1.14) is read; others get no counter's answer.
//
// The format is read sequentially by a goroutine, as pg_restore reads it
// from a pipe. Write hands it a large piece as it is, not a copy, and
// waits until the parser has taken all of it into its buffer: copying
// every piece into a fresh slice cost more than the parsing did (a 1 MiB
// allocation a read, its pages faulted in). Small pieces are gathered into
// one reused buffer first (customBatch).
type customCounter struct {
	ch   chan []byte   // pieces of the stream; closed at its end
	ack  chan struct{} // one a piece, once the parser no longer holds it
	done chan struct{}
	buf  []byte // small pieces not yet handed over
	rows map[string]int64
	err  error
	once sync.Once
}

func newCustomCounter() *customCounter {
	c := &customCounter{ch: make(chan []byte), ack: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		cr := &chanReader{ch: c.ch, ack: c.ack}
		c.rows, c.err = parseCustom(bufio.NewReaderSize(cr, 64<<10))
		// Release the piece the parser stopped in and take what is left,
		// so that Write never blocks on a parser that gave up.
		if cr.held {
			c.ack <- struct{}{}
		}
		for range c.ch {
			c.ack <- struct{}{}
		}
	}()
	return c
}

// customBatch: smaller pieces (a pipe read returns what pg_dump has
// written so far, often a few KiB) are gathered into one of this size
// before the parser is woken, since each hand-over costs two wake-ups.
const customBatch = 256 << 10

func (c *customCounter) Write(p []byte) (int, error) {
	if len(c.buf)+len(p) > customBatch {
		c.send(c.buf)
		c.buf = c.buf[:0]
	}
	if len(p) >= customBatch {
		c.send(p)
		return len(p), nil
	}
	if c.buf == nil {
		c.buf = make([]byte, 0, customBatch)
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// send hands p to the parser and waits until it has taken it.
func (c *customCounter) send(p []byte) {
	if len(p) > 0 {
		c.ch <- p
		<-c.ack
	}
}

// Close ends the stream (the counter's goroutine ends too).
func (c *customCounter) Close() error {
	c.once.Do(func() {
		c.send(c.buf)
		c.buf = nil
		close(c.ch)
	})
	<-c.done
	return nil
}

func (c *customCounter) Rows() (map[string]int64, error) {
	_ = c.Close()
	if c.err != nil {
		return nil, errors.Join(ErrCount, c.err)
	}
	return c.rows, nil
}

// chanReader reads the pieces sent on ch until it is closed, acknowledging
// each on ack once it has been copied out whole.
type chanReader struct {
	ch   chan []byte
	ack  chan struct{}
	cur  []byte
	held bool // cur is a piece not yet acknowledged
}

func (r *chanReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		b, ok := <-r.ch
		if !ok {
			return 0, io.EOF
		}
		r.cur, r.held = b, true
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	if len(r.cur) == 0 {
		r.cur, r.held = nil, false
		r.ack <- struct{}{}
	}
	return n, nil
}

type customReader struct {
	r       *bufio.Reader
	intSize int
	offSize int
}

func (r *customReader) int() (int64, error) {
	// Read from the buffer when the whole integer is in it: one for each
	// chunk of a data block, that is for each row.
	if b, _ := r.r.Peek(1 + r.intSize); len(b) == 1+r.intSize {
		var v uint64
		for i, x := range b[1:] {
			v |= uint64(x) << (8 * i)
		}
		n := int64(v & (1<<62 - 1))
		if b[0] != 0 {
			n = -n
		}
		_, _ = r.r.Discard(len(b))
		return n, nil
	}
	sign, err := r.r.ReadByte()
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := 0; i < r.intSize; i++ {
		b, err := r.r.ReadByte()
		if err != nil {
			return 0, err
		}
		v |= uint64(b) << (8 * i)
	}
	n := int64(v & (1<<62 - 1))
	if sign != 0 {
		n = -n
	}
	return n, nil
}

// str reads a string, keeping at most max bytes of it (the rest is read
// and dropped); ok is false for a NULL string.
func (r *customReader) str(max int) (s string, ok bool, err error) {
	n, err := r.int()
	if err != nil || n < 0 {
		return "", false, err
	}
	keep := min(n, int64(max))
	b := make([]byte, keep)
	if _, err := io.ReadFull(r.r, b); err != nil {
		return "", false, err
	}
	if _, err := io.CopyN(io.Discard, r.r, n-keep); err != nil {
		return "", false, err
	}
	return string(b), true, nil
}

var errCustomVersion = errors.New("not an uncompressed pg_dump custom archive of version 1.14")

func parseCustom(br *bufio.Reader) (map[string]int64, error) {
	head := make([]byte, 11)
	if _, err := io.ReadFull(br, head); err != nil {
		return nil, err
	}
	if !bytes.Equal(head[:5], []byte("PGDMP")) || head[5] != 1 || head[6] != 14 ||
		head[8] < 4 || head[8] > 8 || head[9] < 4 || head[9] > 8 || head[10] != 1 {
		return nil, errCustomVersion
	}
	r := &customReader{r: br, intSize: int(head[8]), offSize: int(head[9])}
	if comp, err := r.int(); err != nil || comp != 0 {
		return nil, errors.Join(errCustomVersion, err)
	}
	for i := 0; i < 7; i++ { // the time: sec, min, hour, day, month, year, isdst
		if _, err := r.int(); err != nil {
			return nil, err
		}
	}
	for i := 0; i < 3; i++ { // database, server and pg_dump versions
		if _, _, err := r.str(0); err != nil {
			return nil, err
		}
	}
	n, err := r.int()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > 1<<24 {
		return nil, fmt.Errorf("%d entries in the table of contents", n)
	}
	const maxIdent = 255
	type entry struct {
		table string
		copy  bool
	}
	entries := map[int64]entry{}
	rows := map[string]int64{}
	for ; n > 0; n-- {
		id, err := r.int()
		if err != nil {
			return nil, err
		}
		if _, err := r.int(); err != nil { // has a data dumper
			return nil, err
		}
		var f [14]string
		// tableoid, oid, tag, desc, (section), defn, dropStmt, copyStmt,
		// namespace, tablespace, tableam, owner, withOids
		for i := 0; i < 13; i++ {
			if i == 4 {
				if _, err := r.int(); err != nil {
					return nil, err
				}
				continue
			}
			keep := 0
			switch i {
			case 2, 3, 8:
				keep = maxHead
			case 7:
				keep = 16
			}
			if f[i], _, err = r.str(keep); err != nil {
				return nil, err
			}
		}
		for deps := 0; ; deps++ {
			_, ok, err := r.str(0)
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			if deps > 1<<20 {
				return nil, errors.New("too many dependencies")
			}
		}
		// The data's offset: a flag byte and offSize bytes.
		if _, err := io.CopyN(io.Discard, br, int64(1+r.offSize)); err != nil {
			return nil, err
		}
		if f[3] == "TABLE DATA" {
			// Entries, not only distinct names, are bounded: hostile
			// bytes could repeat a name in millions of entries.
			if len(rows) >= maxTables || len(entries) >= maxTables {
				return nil, errors.New("too many tables")
			}
			// PostgreSQL's names are at most 63 bytes; a longer one is
			// not pg_dump's.
			if len(f[2]) > maxIdent || len(f[8]) > maxIdent {
				return nil, fmt.Errorf("a table name of %d bytes in schema %d bytes long", len(f[2]), len(f[8]))
			}
			name := f[8] + "." + f[2]
			entries[id] = entry{table: name, copy: f[7] != ""}
			rows[name] += 0
		}
	}
	for {
		t, err := br.ReadByte()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		id, err := r.int()
		if err != nil {
			return nil, err
		}
		switch t {
		case 1: // table data
			e, ok := entries[id]
			var c *sqlCounter
			if ok {
				c = newSQLCounter(dialectPostgres)
				c.rows = rows
				if e.copy {
					c.st, c.table = stCopy, e.table
				}
			}
			if err := r.chunks(c); err != nil {
				return nil, err
			}
			if c != nil {
				c.flush() // rows of a COPY block with no "\." line
			}
			if c != nil && !e.copy {
				if _, err := c.Rows(); err != nil {
					return nil, err
				}
				if len(rows) > maxTables {
					return nil, errors.New("too many tables")
				}
			}
		case 3: // large objects: an OID, its chunks, ... then OID 0
			for {
				oid, err := r.int()
				if err != nil {
					return nil, err
				}
				if oid == 0 {
					break
				}
				if err := r.chunks(nil); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("unknown block type %d", t)
		}
	}
}

// chunks reads a data block's chunks up to the empty one, writing them to
// c (nil: dropping them). pg_dump writes a chunk a row: they are read from
// the buffer, not copied.
func (r *customReader) chunks(c *sqlCounter) error {
	for {
		if c != nil && c.st == stCopy && c.copyPos == 0 && c.q == 0 {
			r.rows(c)
		}
		n, err := r.int()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if n < 0 {
			return fmt.Errorf("a chunk of %d bytes", n)
		}
		for n > 0 {
			b, err := r.r.Peek(int(min(n, int64(r.r.Size()))))
			if len(b) == 0 && err != nil {
				return err
			}
			if c != nil {
				_, _ = c.Write(b)
			}
			_, _ = r.r.Discard(len(b))
			n -= int64(len(b))
		}
	}
}

// rows counts the chunks in the buffer that are one whole COPY row each
// (as pg_dump writes them) in one pass, without a call per row: a chunk
// that is anything else, or is not whole in the buffer, is left to chunks,
// which counts it the same way (sqlCounter.copyData).
func (r *customReader) rows(c *sqlCounter) {
	b, _ := r.r.Peek(r.r.Buffered())
	w := 1 + r.intSize
	off := 0
	for off+w <= len(b) && b[off] == 0 {
		var v uint64
		for i, x := range b[off+1 : off+w] {
			v |= uint64(x) << (8 * i)
		}
		n := v & (1<<62 - 1)
		if n == 0 || n > uint64(len(b)-off-w) {
			break
		}
		d := b[off+w : off+w+int(n)]
		if d[0] == '\\' || bytes.IndexByte(d, '\n') != len(d)-1 {
			break
		}
		c.n++
		off += w + int(n)
	}
	_, _ = r.r.Discard(off)
}
