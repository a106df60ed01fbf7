package restorer_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends/local"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/archiver"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

// TestParallelRestoreManySmallFewLarge backs up a tree of many small files
// (some empty, some with the same content as others, so blobs are shared
// between files) and a few large ones (random, compressible, and mostly
// zeroes) into small packs, then restores it through the parallel pipeline
// (several reads ahead, blobs decoded on several goroutines and written as
// they come) and dumps the large files, and requires every byte, mode and
// time to come back. Run it with -race: the writers share file state.
func TestParallelRestoreManySmallFewLarge(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	src := filepath.Join(base, "src")
	rnd := rand.New(rand.NewPCG(7, 11))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	want := map[string][]byte{}
	mtime := time.Date(2023, 4, 5, 6, 7, 8, 123456789, time.UTC)
	write := func(rel string, data []byte, mode fs.FileMode) {
		p := filepath.Join(src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		want[rel] = data
	}
	shared := random(2000)
	for i := range 1500 {
		rel := fmt.Sprintf("d%02d/f%04d.bin", i%40, i)
		var data []byte
		switch i % 10 {
		case 0:
			data = nil // empty
		case 1:
			data = shared // the same blob in many files
		default:
			data = random(rnd.IntN(6000))
		}
		write(rel, data, fs.FileMode(0o600|(i%3)*0o040))
	}
	// Modes a file cannot be created with (bits the umask of 022 clears,
	// special bits), which the restorer sets afterwards.
	write("modes/world.txt", random(3000), 0o666)
	write("modes/setgid.bin", random(3000), fs.ModeSetgid|0o755)
	write("modes/sticky.bin", random(3000), fs.ModeSticky|0o644)
	write("modes/none.bin", random(3000), 0)
	write("big/random.bin", random(5<<20+12345), 0o640)
	text := bytes.Repeat([]byte("INSERT INTO t VALUES (42, 'some text that compresses');\n"), 120000)
	write("big/text.sql", text, 0o644)
	sparse := make([]byte, 6<<20)
	copy(sparse[3<<20:], random(1000))
	write("big/sparse.img", sparse, 0o600)

	be, err := local.Open(ctx, local.Config{Path: filepath.Join(base, "repo")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, be, repo.InitOptions{Options: repo.Options{Passphrase: []byte("parallel")}, S2K: crypto.S2KIterated, PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sn, err := archiver.New(r, archiver.Options{}).Backup(ctx, []archiver.Item{{Name: "t", Path: src}}, archiver.Meta{Host: "h", Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.Index().Packs()); n < 5 {
		t.Fatalf("%d packs: the test wants blobs spread over many packs", n)
	}

	for _, workers := range []int{1, 6} {
		target := filepath.Join(base, fmt.Sprintf("restore-%d", workers))
		st, err := restorer.Restore(ctx, r, sn, target, restorer.Options{Workers: workers})
		if err != nil {
			t.Fatalf("workers %d: %v", workers, err)
		}
		if st.Files != uint64(len(want)) {
			t.Errorf("workers %d: restored %d files, want %d", workers, st.Files, len(want))
		}
		got := 0
		err = filepath.WalkDir(filepath.Join(target, "t"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(filepath.Join(target, "t"), p)
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			exp, ok := want[rel]
			switch {
			case !ok:
				t.Errorf("workers %d: unexpected file %s", workers, rel)
			case !bytes.Equal(data, exp):
				t.Errorf("workers %d: %s: %d bytes differ from the %d backed up", workers, rel, len(data), len(exp))
			}
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			srcFi, err := os.Stat(filepath.Join(src, rel))
			if err != nil {
				return err
			}
			if fi.Mode() != srcFi.Mode() || !fi.ModTime().Equal(mtime) {
				t.Errorf("workers %d: %s: mode %v time %v, want %v %v", workers, rel, fi.Mode(), fi.ModTime(), srcFi.Mode(), mtime)
			}
			got++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got != len(want) {
			t.Errorf("workers %d: %d files on disk, want %d", workers, got, len(want))
		}
	}

	for _, name := range []string{"big/random.bin", "big/text.sql", "big/sparse.img", "d01/f0001.bin"} {
		n, err := restorer.FindNode(ctx, r, sn, "/t/"+name)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := restorer.Dump(ctx, r, n, &out, 3); err != nil {
			t.Fatalf("dump %s: %v", name, err)
		}
		if !bytes.Equal(out.Bytes(), want[name]) {
			t.Errorf("dump %s: %d bytes differ from the %d backed up", name, out.Len(), len(want[name]))
		}
	}

	rep, err := snapshot.Check(ctx, r, snapshot.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.PacksRead != len(r.Index().Packs()) {
		t.Errorf("check --read-data: %d problems, %d packs read of %d", len(rep.Problems), rep.PacksRead, len(r.Index().Packs()))
	}
}
