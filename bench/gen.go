//go:build ignore

// gen writes the deterministic benchmark data used by bench/run.sh.
//
//	go run bench/gen.go stream -mb 1024 -seed 1 -day1 day1.sql -day2 day2.sql
//	go run bench/gen.go media -files 20000 -seed 2 -out media/
//	go run bench/gen.go bench/series.go series -mb 300 -day 3 -out day3.sql
//
// stream writes an SQL-dump-like text (one INSERT per line, tables users,
// posts and comments in dump order) of about -mb MiB, and a "day 2" version
// of it in which about 1 % of the rows changed: rows in a few "hot" blocks
// updated in place (new counters and updated_at, sometimes an edited body),
// a few rows deleted, and new comment rows appended at the end.
//
// media writes a tree of -files files in 200 directories: about 90 %
// incompressible "JPEG-like" files of 5-200 KiB (log-uniform, so most are
// small) and about 10 % small text files of 0.2-8 KiB.
//
// The same flags always give the same bytes (file mtimes too).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gen stream|media|series [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "stream":
		err = stream(os.Args[2:])
	case "media":
		err = media(os.Args[2:])
	case "series":
		err = series(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// ---- random numbers ----

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// rng is xoshiro256**: fast, and good enough that zstd cannot compress it.
type rng struct{ s [4]uint64 }

func newRNG(seed uint64) *rng {
	r := &rng{}
	r.reseed(seed)
	return r
}

func (r *rng) reseed(seed uint64) {
	for i := range r.s {
		seed = splitmix(seed)
		r.s[i] = seed
	}
}

func rotl(x uint64, k uint) uint64 { return x<<k | x>>(64-k) }

func (r *rng) next() uint64 {
	s := &r.s
	res := rotl(s[1]*5, 7) * 9
	t := s[1] << 17
	s[2] ^= s[0]
	s[3] ^= s[1]
	s[1] ^= s[2]
	s[0] ^= s[3]
	s[2] ^= t
	s[3] = rotl(s[3], 45)
	return res
}

// intn returns a number in [0, n).
func (r *rng) intn(n int) int { return int((r.next() >> 32) * uint64(n) >> 32) }

func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

func (r *rng) fill(b []byte) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		v := r.next()
		b[i], b[i+1], b[i+2], b[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		b[i+4], b[i+5], b[i+6], b[i+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
	}
	for v := r.next(); i < len(b); i++ {
		b[i] = byte(v)
		v >>= 8
	}
}

// ---- words ----

// vocab is a fixed list of pseudo-words, drawn with a Zipf-like skew so the
// text compresses about as well as real prose mixed with numbers.
var (
	vocabSize = 12000 // with zipfS 0.8: zstd -1 ~2.9x, zstd -3 ~3.6x, gzip ~3.1x
	zipfS     = 0.8
)

type vocab struct {
	words [][]byte
	zipf  [1 << 16]uint16
}

func newVocab(seed uint64) *vocab {
	n := vocabSize
	r := newRNG(seed ^ 0x766f636162)
	onsets := []string{"b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br", "ch", "cl", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr", ""}
	vowels := []string{"a", "e", "i", "o", "u", "ai", "ea", "ee", "io", "ou", "y"}
	codas := []string{"", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "ck", "rt"}
	v := &vocab{}
	seen := map[string]bool{}
	for len(v.words) < n {
		syl := 1 + r.intn(3)
		if r.intn(4) == 0 {
			syl++
		}
		w := ""
		for i := 0; i < syl; i++ {
			w += onsets[r.intn(len(onsets))] + vowels[r.intn(len(vowels))]
			if i == syl-1 || r.intn(3) == 0 {
				w += codas[r.intn(len(codas))]
			}
		}
		if seen[w] {
			continue
		}
		seen[w] = true
		v.words = append(v.words, []byte(w))
	}
	// Zipf-like: word k has weight 1/(k+1)^zipfS.
	weight := func(k int) float64 { return math.Pow(float64(k+1), -zipfS) }
	var total float64
	for k := 0; k < n; k++ {
		total += weight(k)
	}
	k, acc := 0, weight(0)/total
	for i := range v.zipf {
		for float64(i)/float64(len(v.zipf)) > acc && k < n-1 {
			k++
			acc += weight(k) / total
		}
		v.zipf[i] = uint16(k)
	}
	return v
}

func (v *vocab) word(r *rng) []byte { return v.words[v.zipf[r.next()&0xffff]] }

// sentence appends n words, capitalised, with a few commas and a full stop.
func (v *vocab) sentence(b []byte, r *rng, n int) []byte {
	for i := 0; i < n; i++ {
		w := v.word(r)
		if i == 0 {
			b = append(b, w[0]-'a'+'A')
			b = append(b, w[1:]...)
		} else {
			b = append(b, ' ')
			b = append(b, w...)
		}
		if i < n-1 && r.intn(9) == 0 {
			b = append(b, ',')
		}
	}
	return append(b, '.')
}

// ---- stream ----

const (
	blockRows   = 2048 // rows per update block
	hotEvery    = 50   // 1 block in each run of hotEvery blocks is hot (2 %)
	updateEvery = 4    // in a hot block, 1 row in updateEvery is updated (so 0.5 % of all rows)
	deleteEvery = 400  // in a hot block, 1 row in deleteEvery is deleted
	appendPerMi = 4500 // appended rows per million day-1 rows (0.45 %)
)

var epoch = time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

func appendTime(b []byte, unix int64) []byte {
	t := time.Unix(unix, 0).UTC()
	b = append(b, '\'')
	b = t.AppendFormat(b, "2006-01-02 15:04:05")
	return append(b, '\'')
}

var countries = []string{"DE", "FR", "US", "GB", "NL", "ES", "IT", "PL", "SE", "BR", "IN", "JP", "CA", "AU", "CH", "AT"}

type streamGen struct {
	seed   uint64
	v      *vocab
	nUsers int
	nPosts int
	r, r2  rng
}

// row appends row i (0-based, over all tables) at revision rev (0: day 1,
// 1: updated on day 2).
func (g *streamGen) row(b []byte, i int, rev int) []byte {
	r := &g.r
	r.reseed(g.seed ^ splitmix(uint64(i)))
	// r2 draws what changes on an update; at rev 0 it is r's twin.
	r2 := &g.r2
	r2.reseed(g.seed ^ splitmix(uint64(i)) ^ uint64(rev)*0x5bd1e995)
	created := epoch + int64(i)*37 + int64(r.intn(30))
	updated := created + int64(r2.intn(86400*30))
	if rev > 0 {
		updated = epoch + int64(i)*37 + 86400*400 + int64(r2.intn(86400))
	}
	switch {
	case i < g.nUsers:
		id := i + 1
		b = append(b, "INSERT INTO users (id, email, name, created_at, updated_at, karma, country) VALUES ("...)
		b = strconv.AppendInt(b, int64(id), 10)
		b = append(b, ", '"...)
		b = append(b, g.v.word(r)...)
		b = append(b, '.')
		b = append(b, g.v.word(r)...)
		b = strconv.AppendInt(b, int64(r.intn(1000)), 10)
		b = append(b, "@example.com', '"...)
		w := g.v.word(r)
		b = append(b, w[0]-'a'+'A')
		b = append(b, w[1:]...)
		b = append(b, ' ')
		w = g.v.word(r)
		b = append(b, w[0]-'a'+'A')
		b = append(b, w[1:]...)
		b = append(b, "', "...)
		b = appendTime(b, created)
		b = append(b, ", "...)
		b = appendTime(b, updated)
		b = append(b, ", "...)
		b = strconv.AppendInt(b, int64(r2.intn(100000)), 10)
		b = append(b, ", '"...)
		b = append(b, countries[r.intn(len(countries))]...)
		b = append(b, "');\n"...)
	case i < g.nUsers+g.nPosts:
		id := i - g.nUsers + 1
		b = append(b, "INSERT INTO posts (id, user_id, title, body, created_at, updated_at, views, score, published) VALUES ("...)
		b = strconv.AppendInt(b, int64(id), 10)
		b = append(b, ", "...)
		b = strconv.AppendInt(b, int64(1+r.intn(g.nUsers)), 10)
		b = append(b, ", '"...)
		b = g.v.sentence(b, r, 3+r.intn(8))
		b = append(b, "', '"...)
		br := r
		if rev > 0 && r2.intn(3) == 0 {
			br = r2 // the body was edited
		}
		for s, n := 0, 1+br.intn(6); s < n; s++ {
			if s > 0 {
				b = append(b, ' ')
			}
			b = g.v.sentence(b, br, 5+br.intn(20))
		}
		b = append(b, "', "...)
		b = appendTime(b, created)
		b = append(b, ", "...)
		b = appendTime(b, updated)
		b = append(b, ", "...)
		b = strconv.AppendInt(b, int64(r2.intn(1000000)), 10)
		b = append(b, ", "...)
		b = strconv.AppendFloat(b, float64(r2.intn(100000))/100, 'f', 2, 64)
		if r.intn(10) == 0 {
			b = append(b, ", false);\n"...)
		} else {
			b = append(b, ", true);\n"...)
		}
	default:
		id := i - g.nUsers - g.nPosts + 1
		b = append(b, "INSERT INTO comments (id, post_id, user_id, body, created_at, likes, ip) VALUES ("...)
		b = strconv.AppendInt(b, int64(id), 10)
		b = append(b, ", "...)
		b = strconv.AppendInt(b, int64(1+r.intn(g.nPosts)), 10)
		b = append(b, ", "...)
		b = strconv.AppendInt(b, int64(1+r.intn(g.nUsers)), 10)
		b = append(b, ", '"...)
		br := r
		if rev > 0 && r2.intn(3) == 0 {
			br = r2
		}
		for s, n := 0, 1+br.intn(3); s < n; s++ {
			if s > 0 {
				b = append(b, ' ')
			}
			b = g.v.sentence(b, br, 4+br.intn(16))
		}
		b = append(b, "', "...)
		b = appendTime(b, created)
		b = append(b, ", "...)
		b = strconv.AppendInt(b, int64(r2.intn(500)), 10)
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

func stream(args []string) error {
	fs := flag.NewFlagSet("stream", flag.ExitOnError)
	mb := fs.Int("mb", 1024, "approximate size of day 1 in MiB")
	seed := fs.Uint64("seed", 1, "seed")
	day1 := fs.String("day1", "day1.sql", "output for day 1")
	day2 := fs.String("day2", "day2.sql", "output for day 2")
	fs.IntVar(&vocabSize, "vocab", vocabSize, "vocabulary size")
	fs.Float64Var(&zipfS, "zipf", zipfS, "Zipf exponent of word frequencies")
	fs.Parse(args)
	target := int64(*mb) << 20

	g := &streamGen{seed: splitmix(*seed), v: newVocab(*seed)}
	// Estimate the row count from a sample so the table split is stable.
	g.nUsers, g.nPosts = 1000, 1000
	var sample int
	var buf []byte
	for i := 0; i < 3000; i++ {
		buf = g.row(buf[:0], i, 0)
		sample += len(buf)
	}
	estRows := int(target * 3000 / int64(sample))
	g.nUsers = max(estRows*5/100, 10)
	g.nPosts = max(estRows*15/100, 10)

	f1, err := os.Create(*day1)
	if err != nil {
		return err
	}
	f2, err := os.Create(*day2)
	if err != nil {
		return err
	}
	w1 := bufio.NewWriterSize(f1, 1<<20)
	w2 := bufio.NewWriterSize(f2, 1<<20)
	head := []byte("-- hoard benchmark SQL dump\nSET client_encoding = 'UTF8';\nBEGIN;\n")
	w1.Write(head)
	w2.Write(head)
	var n1, n2 int64 = int64(len(head)), int64(len(head))
	var rows, updated, deleted, appended int
	hot := newRNG(splitmix(g.seed ^ 0x686f74))
	var isHot bool
	var hotBlock int
	for i := 0; n1 < target; i++ {
		if b := i / blockRows; i%blockRows == 0 {
			if b%hotEvery == 0 {
				hotBlock = b + hot.intn(hotEvery)
			}
			isHot = b == hotBlock
		}
		buf = g.row(buf[:0], i, 0)
		w1.Write(buf)
		n1 += int64(len(buf))
		rows++
		if isHot {
			switch x := hot.intn(deleteEvery * updateEvery); {
			case x == 0:
				deleted++
				continue
			case x%updateEvery == 0:
				buf = g.row(buf[:0], i, 1)
				updated++
			}
		}
		w2.Write(buf)
		n2 += int64(len(buf))
	}
	// Day 2 appends new comments (ids continue) at the end of the dump.
	nApp := max(rows*appendPerMi/1000000, 1)
	for i := rows; i < rows+nApp; i++ {
		buf = g.row(buf[:0], i, 0)
		w2.Write(buf)
		n2 += int64(len(buf))
		appended++
	}
	tail := []byte("COMMIT;\n")
	w1.Write(tail)
	w2.Write(tail)
	n1 += int64(len(tail))
	n2 += int64(len(tail))
	for _, c := range []interface{ Flush() error }{w1, w2} {
		if err := c.Flush(); err != nil {
			return err
		}
	}
	if err := f1.Close(); err != nil {
		return err
	}
	if err := f2.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "stream: day 1 %d rows, %d bytes; day 2 %d bytes: %d updated, %d deleted, %d appended (%.2f %% of rows changed)\n",
		rows, n1, n2, updated, deleted, appended, 100*float64(updated+deleted+appended)/float64(rows))
	return nil
}

// ---- media ----

func media(args []string) error {
	fs := flag.NewFlagSet("media", flag.ExitOnError)
	files := fs.Int("files", 20000, "number of files")
	seed := fs.Uint64("seed", 2, "seed")
	out := fs.String("out", "media", "output directory (must not exist)")
	fs.Parse(args)

	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("%s exists", *out)
	}
	var dirs []string
	for y := 2010; y <= 2025; y++ {
		for m := 1; m <= 12; m++ {
			dirs = append(dirs, fmt.Sprintf("uploads/%d/%02d", y, m))
		}
	}
	dirs = append(dirs, "static/css", "static/js", "static/img", "static/fonts", "docs/en", "docs/de", "docs/fr", "docs/archive/old")
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(*out, d), 0o755); err != nil {
			return err
		}
	}
	r := newRNG(splitmix(*seed))
	v := newVocab(*seed)
	textExt := []string{".txt", ".json", ".md", ".csv"}
	buf := make([]byte, 200<<10)
	mtime := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	var total int64
	var nText int
	for i := 0; i < *files; i++ {
		dir := dirs[r.intn(len(dirs))]
		var name string
		var data []byte
		if r.intn(10) == 0 {
			// small text file
			size := 200 + r.intn(8<<10)
			b := buf[:0]
			for len(b) < size {
				b = v.sentence(b, r, 4+r.intn(16))
				b = append(b, '\n')
			}
			data = b
			name = fmt.Sprintf("note-%06d%s", i, textExt[r.intn(len(textExt))])
			nText++
		} else {
			// log-uniform between 5 KiB and 200 KiB
			size := int(5 * 1024 * math.Exp(r.float()*math.Log(40)))
			data = buf[:size]
			r.fill(data)
			copy(data, []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"))
			copy(data[len(data)-2:], []byte("\xff\xd9"))
			name = fmt.Sprintf("IMG_%06d.jpg", i)
		}
		p := filepath.Join(*out, dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
		t := mtime.Add(time.Duration(i) * time.Second)
		if err := os.Chtimes(p, t, t); err != nil {
			return err
		}
		total += int64(len(data))
	}
	fmt.Fprintf(os.Stderr, "media: %d files (%d text) in %d dirs, %d bytes\n", *files, nText, len(dirs), total)
	return nil
}
