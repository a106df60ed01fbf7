package dump_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/hoard-backup/hoard/dump"
)

// benchDump generates about size bytes of one engine's SQL text dump: pg_dump's
// COPY rows, mariadb-dump's extended INSERTs (about 1 MB each) or sqlite3's
// one INSERT a row, with text that needs escaping.
func benchDump(engine string, size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 1<<20)
	switch engine {
	case dump.Postgres:
		b.WriteString("\\restrict k\nSET standard_conforming_strings = on;\nCREATE TABLE public.t (id int, name text, note text);\nCOPY public.t (id, name, note) FROM stdin;\n")
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, "%d\tname %x\tsome text with a tab\\there and a line\\nbreak, a quote ' and (parens); %d\n", i, i*7919, i%1000)
		}
		b.WriteString("\\.\n\n\\unrestrict k\n")
	case dump.MySQL:
		b.WriteString("/*!40101 SET NAMES utf8mb4 */;\nCREATE TABLE `t` (`id` int, `name` text, `b` blob);\n")
		for i := 0; b.Len() < size; {
			b.WriteString("INSERT INTO `t` VALUES ")
			for n := b.Len(); b.Len()-n < 1<<20; i++ {
				if b.Len() > n+30 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "(%d,'name %x with a quote \\' and (parens); and a\\nline','note'),(%d,NULL,0x%x)", i, i*7919, i+1, i*104729)
				i++
			}
			b.WriteString(";\n")
		}
	case dump.SQLite:
		b.WriteString("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE t (id, name, b);\n")
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, "INSERT INTO t VALUES(%d,'name %x with a quote '' and (parens); and a\nline',X'%x');\n", i, i*7919, i*104729)
		}
		b.WriteString("COMMIT;\n")
	}
	return b.Bytes()
}

// BenchmarkRowCounter measures the counter on a 200 MB dump of each
// engine, written in the 1 MiB pieces a backup reads (go test -bench
// RowCounter -benchtime 5x ./dump/).
func BenchmarkRowCounter(b *testing.B) {
	for _, e := range []string{dump.Postgres, dump.MySQL, dump.SQLite} {
		data := benchDump(e, 200<<20)
		b.Run(e, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				c := dump.NewRowCounter(e, "sql")
				for p := data; len(p) > 0; {
					n := min(len(p), 1<<20)
					_, _ = c.Write(p[:n])
					p = p[n:]
				}
				if rows, err := c.Rows(); err != nil || rows["t"]+rows["public.t"] == 0 {
					b.Fatal(rows, err)
				}
			}
		})
		// A yardstick: a backup hashes every byte (SHA-256) besides
		// chunking, compressing and encrypting it.
		b.Run(e+"/sha256", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				h := sha256.New()
				for p := data; len(p) > 0; {
					n := min(len(p), 1<<20)
					h.Write(p[:n])
					p = p[n:]
				}
				_ = h.Sum(nil)
			}
		})
		// Through the tee, as a backup reads the dump.
		b.Run(e+"/tee", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				rc, fp := dump.Fingerprinted(io.NopCloser(bytes.NewReader(data)), dump.Info{Engine: e, Format: "sql"})
				_, _ = io.CopyBuffer(io.Discard, rc, make([]byte, 1<<20))
				if fp.IsZero() {
					b.Fatal("no fingerprint")
				}
			}
		})
	}
}

// BenchmarkCustomCounter measures the custom-format counter on an archive
// made by pg_dump -Fc --compress=0, named by HOARD_BENCH_CUSTOM (make one
// of a table of 2 million rows with text columns), read in 1 MiB pieces
// through the tee as a backup reads it.
func BenchmarkCustomCounter(b *testing.B) {
	name := os.Getenv("HOARD_BENCH_CUSTOM")
	if name == "" {
		b.Skip("HOARD_BENCH_CUSTOM names no pg_dump custom archive")
	}
	data, err := os.ReadFile(name)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		rc, fp := dump.Fingerprinted(io.NopCloser(bytes.NewReader(data)), dump.Info{Engine: dump.Postgres, Format: "custom"})
		_, _ = io.CopyBuffer(io.Discard, rc, make([]byte, 1<<20))
		if fp.IsZero() {
			b.Fatal("no fingerprint")
		}
	}
}
