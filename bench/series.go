//go:build ignore

// series writes day N of a daily web-application dump series (run with
// gen.go: go run bench/gen.go bench/series.go series -mb 300 -day 3 -out day3.sql).
//
// The dump has three tables in dump order, users, posts and comments, of
// SQL text (one INSERT a row; pseudo-words drawn with a Zipf skew, so it
// compresses about as real text does). Day 1 is about -mb MiB. Every later
// day, from the state of the day before:
//
//   - rows are appended to every table (new users 0.1 %, posts 0.3 %,
//     comments 0.5 % of the table's rows);
//   - recent rows are edited (0.2 % of posts, 0.1 % of comments, chosen with
//     an exponential bias to the newest: half of them among the newest 2 %):
//     a new body and updated_at;
//   - a few rows are deleted (0.01 % of comments and posts, anywhere);
//   - a last_login-style column is updated on -scatter random rows of every
//     table, spread over the whole table (users.last_login, posts.views,
//     comments.likes): -scatter defaults to 3000 a table for 300 MiB (scaled
//     with -mb), so nearly every 128 KiB chunk of the dump changes each day.
//
// The same flags always give the same bytes: day N replays the changes of
// days 2..N from the seed, so days can be written one at a time.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
)

// seriesRow is one row's state: its ID, how often its scattered column was
// updated and on which day last, and how often its body was edited.
type seriesRow struct {
	id      int32
	touches uint16
	day     uint16 // day of the last scattered update (0: never)
	edits   uint16
	deleted bool
}

type seriesTable struct {
	name string
	rows []seriesRow
	next int32 // next ID
}

type seriesGen struct {
	seed   uint64
	v      *vocab
	tables [3]*seriesTable
	first  [3]int32 // rows of each table on day 1
	r      rng
}

const seriesDay = 86400

func (g *seriesGen) rowRNG(t int, id int32, salt uint64) *rng {
	g.r.reseed(g.seed ^ splitmix(uint64(t)<<40^uint64(id)) ^ salt*0x9e3779b97f4a7c15)
	return &g.r
}

// row appends the INSERT of row x of table t.
func (g *seriesGen) row(b []byte, t int, x seriesRow, users, posts int32) []byte {
	id := int64(x.id)
	created := epoch + id*61 + int64(t)*7
	switch t {
	case 0:
		r := g.rowRNG(t, x.id, 0)
		b = append(b, "INSERT INTO users (id, email, name, created_at, last_login, karma, country) VALUES ("...)
		b = strconv.AppendInt(b, id, 10)
		b = append(b, ", '"...)
		b = append(b, g.v.word(r)...)
		b = append(b, '.')
		b = append(b, g.v.word(r)...)
		b = strconv.AppendInt(b, int64(r.intn(1000)), 10)
		b = append(b, "@example.com', '"...)
		for k := 0; k < 2; k++ {
			w := g.v.word(r)
			if k > 0 {
				b = append(b, ' ')
			}
			b = append(b, w[0]-'a'+'A')
			b = append(b, w[1:]...)
		}
		b = append(b, "', "...)
		b = appendTime(b, created)
		b = append(b, ", "...)
		login := created + int64(r.intn(seriesDay*30))
		if x.day > 0 {
			login = epoch + 86400*2000 + int64(x.day)*seriesDay + int64(g.rowRNG(t, x.id, 1+uint64(x.touches)).intn(seriesDay))
		}
		b = appendTime(b, login)
		b = append(b, ", "...)
		b = strconv.AppendInt(b, int64(g.rowRNG(t, x.id, 2).intn(5000)), 10)
		b = append(b, ", '"...)
		b = append(b, countries[g.rowRNG(t, x.id, 3).intn(len(countries))]...)
		b = append(b, "');\n"...)
	case 1:
		r := g.rowRNG(t, x.id, 0)
		b = append(b, "INSERT INTO posts (id, user_id, title, body, created_at, updated_at, views, score, published) VALUES ("...)
		b = strconv.AppendInt(b, id, 10)
		b = append(b, ", "...)
		b = strconv.AppendInt(b, int64(1+r.intn(int(users))), 10)
		b = append(b, ", '"...)
		b = g.v.sentence(b, r, 3+r.intn(8))
		b = append(b, "', '"...)
		br := g.rowRNG(t, x.id, 100+uint64(x.edits))
		for s, n := 0, 1+br.intn(6); s < n; s++ {
			if s > 0 {
				b = append(b, ' ')
			}
			b = g.v.sentence(b, br, 5+br.intn(20))
		}
		b = append(b, "', "...)
		b = appendTime(b, created)
		b = append(b, ", "...)
		b = appendTime(b, created+int64(x.edits)*seriesDay*3+int64(x.edits%7)*1111)
		b = append(b, ", "...)
		b = strconv.AppendInt(b, int64(g.rowRNG(t, x.id, 1).intn(10000))+int64(x.touches)*17, 10)
		b = append(b, ", "...)
		b = strconv.AppendFloat(b, float64(g.rowRNG(t, x.id, 2).intn(100000))/100, 'f', 2, 64)
		if g.rowRNG(t, x.id, 3).intn(10) == 0 {
			b = append(b, ", false);\n"...)
		} else {
			b = append(b, ", true);\n"...)
		}
	default:
		r := g.rowRNG(t, x.id, 0)
		b = append(b, "INSERT INTO comments (id, post_id, user_id, body, created_at, likes, ip) VALUES ("...)
		b = strconv.AppendInt(b, id, 10)
		b = append(b, ", "...)
		b = strconv.AppendInt(b, int64(1+r.intn(int(posts))), 10)
		b = append(b, ", "...)
		b = strconv.AppendInt(b, int64(1+r.intn(int(users))), 10)
		b = append(b, ", '"...)
		br := g.rowRNG(t, x.id, 100+uint64(x.edits))
		for s, n := 0, 1+br.intn(3); s < n; s++ {
			if s > 0 {
				b = append(b, ' ')
			}
			b = g.v.sentence(b, br, 4+br.intn(16))
		}
		b = append(b, "', "...)
		b = appendTime(b, created)
		b = append(b, ", "...)
		b = strconv.AppendInt(b, int64(g.rowRNG(t, x.id, 1).intn(50))+int64(x.touches), 10)
		b = append(b, ", '"...)
		for k := 0; k < 4; k++ {
			if k > 0 {
				b = append(b, '.')
			}
			b = strconv.AppendInt(b, int64(r.intn(256)), 10)
		}
		b = append(b, "');\n"...)
	}
	return b
}

// live picks a row that is not deleted: uniformly, or with an exponential
// bias to the newest when recent.
func (tb *seriesTable) pick(r *rng, recent bool) *seriesRow {
	n := len(tb.rows)
	for {
		var i int
		if recent {
			// Half of the picks among the newest 2 %.
			back := int(-math.Log(1-r.float()) / math.Ln2 * 0.02 * float64(n))
			i = n - 1 - back
			if i < 0 {
				continue
			}
		} else {
			i = r.intn(n)
		}
		if !tb.rows[i].deleted {
			return &tb.rows[i]
		}
	}
}

type seriesCounts struct{ appended, edited, deleted, scattered int }

// change applies day d's changes.
func (g *seriesGen) change(d int, scatter int) seriesCounts {
	r := newRNG(g.seed ^ splitmix(uint64(d)*0x51ed27))
	var c seriesCounts
	for t, tb := range g.tables {
		n := len(tb.rows)
		appendPerMille := []float64{1, 3, 5}[t]
		editPerMille := []float64{0, 2, 1}[t]
		delPerMille := []float64{0, 0.1, 0.1}[t]
		for k := 0; k < int(float64(n)*delPerMille/1000); k++ {
			tb.pick(r, false).deleted = true
			c.deleted++
		}
		for k := 0; k < int(float64(n)*editPerMille/1000); k++ {
			tb.pick(r, true).edits++
			c.edited++
		}
		for k := 0; k < scatter; k++ {
			x := tb.pick(r, false)
			x.touches++
			x.day = uint16(d)
			c.scattered++
		}
		for k := 0; k < max(int(float64(n)*appendPerMille/1000), 1); k++ {
			tb.rows = append(tb.rows, seriesRow{id: tb.next})
			tb.next++
			c.appended++
		}
	}
	return c
}

func series(args []string) error {
	fs := flag.NewFlagSet("series", flag.ExitOnError)
	mb := fs.Int("mb", 300, "approximate size of day 1 in MiB")
	seed := fs.Uint64("seed", 1, "seed")
	day := fs.Int("day", 1, "which day to write (1 is the first)")
	scatter := fs.Int("scatter", -1, "rows of each table whose last_login-style column changes a day (-1: 3000 per 300 MiB)")
	out := fs.String("out", "-", "output file (- for standard output)")
	fs.Parse(args)
	if *scatter < 0 {
		*scatter = max(3000**mb/300, 1)
	}
	g := &seriesGen{seed: splitmix(*seed ^ 0x736572696573), v: newVocab(*seed)}
	// Day 1's rows: users 25 %, posts 45 %, comments 30 % of the bytes,
	// with row sizes measured on a sample.
	target := float64(int64(*mb) << 20)
	share := []float64{0.25, 0.45, 0.30}
	var buf []byte
	for t := range g.tables {
		var sample int
		for i := int32(1); i <= 2000; i++ {
			buf = g.row(buf[:0], t, seriesRow{id: i}, 1000, 1000)
			sample += len(buf)
		}
		n := int32(target * share[t] / (float64(sample) / 2000))
		tb := &seriesTable{name: []string{"users", "posts", "comments"}[t], next: 1}
		tb.rows = make([]seriesRow, n, n+n/50)
		for i := range tb.rows {
			tb.rows[i].id = tb.next
			tb.next++
		}
		g.tables[t] = tb
		g.first[t] = n
	}
	var c seriesCounts
	for d := 2; d <= *day; d++ {
		c = g.change(d, *scatter)
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	var f *os.File
	if *out != "-" {
		var err error
		if f, err = os.Create(*out); err != nil {
			return err
		}
		w = bufio.NewWriterSize(f, 1<<20)
	}
	var size int64
	put := func(b []byte) {
		w.Write(b)
		size += int64(len(b))
	}
	put([]byte("-- hoard benchmark dump series\nSET client_encoding = 'UTF8';\nBEGIN;\n"))
	// Foreign keys point among day 1's users and posts, so that appended
	// rows change no old row.
	users, posts := g.first[0], g.first[1]
	rows := 0
	for t, tb := range g.tables {
		for _, x := range tb.rows {
			if x.deleted {
				continue
			}
			buf = g.row(buf[:0], t, x, users, posts)
			put(buf)
			rows++
		}
	}
	put([]byte("COMMIT;\n"))
	if err := w.Flush(); err != nil {
		return err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "series: day %d: %d rows, %d bytes; changes of the day: %d appended, %d edited, %d deleted, %d scattered updates\n",
		*day, rows, size, c.appended, c.edited, c.deleted, c.scattered)
	return nil
}
