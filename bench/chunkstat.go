//go:build ignore

// chunkstat reads a stream (a day's database dump) on standard input,
// chunks it with several size profiles of hoard's chunker, and prints for
// each profile how many bytes and chunks are new compared with every
// stream it saw before (kept in -state). It measures deduplication before
// compression, to choose a chunk profile for dumps (bench/db-series.sh).
//
//	pg_dump -Fc -Z0 db | go run bench/chunkstat.go -state DIR
//
// The polynomial is drawn once and kept in DIR, like a repository's.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hoard-backup/hoard/chunk"
)

type profile struct {
	name string
	p    chunk.Params
}

var profiles = []profile{
	{"default 512K/1M/8M", chunk.Params{MinSize: 512 << 10, MaxSize: 8 << 20, AverageBits: 20}},
	{"256K/512K/4M", chunk.Params{MinSize: 256 << 10, MaxSize: 4 << 20, AverageBits: 19}},
	{"128K/256K/2M", chunk.Params{MinSize: 128 << 10, MaxSize: 2 << 20, AverageBits: 18}},
	{"64K/128K/1M", chunk.Params{MinSize: 64 << 10, MaxSize: 1 << 20, AverageBits: 17}},
	{"32K/64K/512K", chunk.Params{MinSize: 32 << 10, MaxSize: 512 << 10, AverageBits: 16}},
}

type state struct {
	Pol    uint64
	Chunks []map[[16]byte]bool
}

func main() {
	dir := flag.String("state", "", "directory keeping the chunks seen so far")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: chunkstat -state DIR < stream")
		os.Exit(2)
	}
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "chunkstat:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	st := &state{}
	file := filepath.Join(dir, "chunkstat.gob")
	if f, err := os.Open(file); err == nil {
		err = gob.NewDecoder(bufio.NewReader(f)).Decode(st)
		f.Close()
		if err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	} else {
		pol, err := chunk.RandomPolynomial()
		if err != nil {
			return err
		}
		st.Pol = uint64(pol)
		st.Chunks = make([]map[[16]byte]bool, len(profiles))
		for i := range st.Chunks {
			st.Chunks[i] = map[[16]byte]bool{}
		}
	}
	tmp, err := os.CreateTemp(dir, "stream-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	size, err := io.Copy(tmp, bufio.NewReaderSize(os.Stdin, 1<<20))
	if err != nil {
		return err
	}
	fmt.Printf("stream %d bytes\n", size)
	buf := make([]byte, 0, chunk.MaxSize)
	for i, pr := range profiles {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		c := chunk.New(bufio.NewReaderSize(tmp, 1<<20), chunk.Pol(st.Pol), pr.p)
		var newBytes, newChunks, chunks int64
		seen := st.Chunks[i]
		for {
			data, err := c.Next(buf)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			buf = data[:0]
			sum := sha256.Sum256(data)
			var k [16]byte
			copy(k[:], sum[:])
			chunks++
			if !seen[k] {
				seen[k] = true
				newBytes += int64(len(data))
				newChunks++
			}
		}
		fmt.Printf("profile %-20s chunks %7d new %7d new bytes %12d (%.2f %%)\n", pr.name, chunks, newChunks, newBytes,
			100*float64(newBytes)/float64(max(size, 1)))
	}
	f, err := os.Create(file + ".tmp")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := gob.NewEncoder(w).Encode(st); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(file+".tmp", file)
}
