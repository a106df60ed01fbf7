package archiver_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/chunk"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
	"github.com/hoard-backup/hoard/snapshot/archiver"
	"github.com/hoard-backup/hoard/snapshot/restorer"
)

// dumpLike returns n bytes of text rows: compressible, and without long
// repeats, so that chunks are mostly distinct.
func dumpLike(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString("INSERT INTO t VALUES (")
		b.WriteString(string(rune('a' + rng.IntN(26))))
		for k := rng.IntN(80); k > 0; k-- {
			b.WriteByte(byte('0' + rng.IntN(75)))
		}
		b.WriteString(");\n")
	}
	return b.Bytes()[:n]
}

// TestParentGivesSameCuts backs up a stream, then changed versions of it,
// once with the first snapshot as parent (chunks the parent had are
// recognised by their hash) and once without (every cut searched for). The
// contents must be the same lists of blobs: following the parent is only a
// shortcut to the cuts the chunker finds.
func TestParentGivesSameCuts(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	base := dumpLike(rng, 6<<20)
	edit := func(f func(b []byte) []byte) []byte { return f(slices.Clone(base)) }
	cases := map[string][]byte{
		"same":            base,
		"appended":        append(slices.Clone(base), dumpLike(rng, 300<<10)...),
		"truncated":       base[:len(base)-123457],
		"cut short":       base[:len(base)/3],
		"prefixed":        append(dumpLike(rng, 5000), base...),
		"middle inserted": edit(func(b []byte) []byte { return slices.Insert(b, len(b)/2, dumpLike(rng, 70000)...) }),
		"middle deleted":  edit(func(b []byte) []byte { return slices.Delete(b, 2<<20, 2<<20+50000) }),
		"bytes changed": edit(func(b []byte) []byte {
			for k := 0; k < 20; k++ {
				b[rng.IntN(len(b))] ^= 0x20
			}
			return b
		}),
		"first byte":  edit(func(b []byte) []byte { b[0] ^= 1; return b }),
		"last byte":   edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }),
		"other":       dumpLike(rng, 3<<20),
		"empty":       nil,
		"one byte":    base[:1],
		"repeated":    append(slices.Clone(base[:1<<20]), base[:3<<20]...),
		"doubled end": append(slices.Clone(base), base[len(base)-200000:]...),
	}
	// Small chunks, so that a few MiB make hundreds of them.
	params := chunk.Params{MinSize: 4 << 10, MaxSize: 64 << 10, AverageBits: 14}
	r, err := repo.Init(ctx, mem.New(), repo.InitOptions{Options: repo.Options{Passphrase: []byte("p")},
		S2K: crypto.S2KIterated, Chunker: &params})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	backup := func(data []byte, parent *snapshot.Snapshot) (*snapshot.Snapshot, []id.ID) {
		t.Helper()
		a := archiver.New(r, archiver.Options{Parent: parent})
		sn, err := a.BackupReader(ctx, bytes.NewReader(data), "db.sql", archiver.Meta{Host: "h"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := restorer.FindNode(ctx, r, sn, "/db.sql")
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := restorer.Dump(ctx, r, n, &out, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatal("restored stream differs")
		}
		return sn, n.Content
	}
	parent, baseIDs := backup(base, nil)
	if len(baseIDs) < 100 {
		t.Fatalf("only %d chunks: the test needs many", len(baseIDs))
	}
	// Where most of the old stream is still there, most of it must have
	// been recognised without chunking, or the shortcut does not work.
	mostlyOld := map[string]bool{"same": true, "appended": true, "truncated": true, "cut short": true,
		"middle inserted": true, "middle deleted": true, "bytes changed": true, "last byte": true, "doubled end": true}
	for name, data := range cases {
		snWith, with := backup(data, parent)
		snWithout, without := backup(data, nil)
		if !slices.Equal(with, without) {
			t.Errorf("%s: %d chunks following the parent, %d without; first difference at %d",
				name, len(with), len(without), firstDiff(with, without))
		}
		matched := snWith.Summary.BytesMatched
		if snWithout.Summary.BytesMatched != 0 {
			t.Errorf("%s: %d bytes matched without a parent", name, snWithout.Summary.BytesMatched)
		}
		if want := uint64(min(len(data), len(base))) * 8 / 10; mostlyOld[name] && matched < want {
			t.Errorf("%s: %d bytes matched, want at least %d", name, matched, want)
		}
		if matched > uint64(len(data)) || name == "other" && matched != 0 {
			t.Errorf("%s: %d bytes matched of %d", name, matched, len(data))
		}
	}
}

func firstDiff(a, b []id.ID) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestParentReadErrors checks that a stream failing while the parent is
// followed fails the backup.
func TestParentReadErrors(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	data := dumpLike(rand.New(rand.NewPCG(3, 4)), 5<<20)
	parent, err := archiver.New(r, archiver.Options{}).BackupReader(ctx, bytes.NewReader(data), "s", archiver.Meta{Host: "h"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rd := io.MultiReader(bytes.NewReader(data[:3<<20]), errReader{})
	if _, err := archiver.New(r, archiver.Options{Parent: parent}).BackupReader(ctx, rd, "s", archiver.Meta{Host: "h"}, nil); err == nil {
		t.Fatal("a failing stream made a snapshot")
	}
}
