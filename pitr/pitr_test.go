package pitr_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/backendtest"
	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/backends/retry"
	"github.com/hoard-backup/hoard/pitr"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/wal"
	"github.com/hoard-backup/hoard/snapshot"
)

func newRepo(t *testing.T, be backends.Backend) *repo.Repository {
	t.Helper()
	r, err := repo.Init(context.Background(), be, repo.InitOptions{
		Options: repo.Options{Passphrase: []byte("pw")}, S2K: crypto.S2KIterated, Host: "test", Username: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func reopen(t *testing.T, be backends.Backend, pass string) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), be, repo.Options{Passphrase: []byte(pass)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// segment writes a fake WAL segment of n bytes: random, then zeros (as a
// segment switched early is), so pieces repeat.
func segment(t *testing.T, dir, name string, n int, seed uint64) string {
	t.Helper()
	t.Logf("segment %s seed %d", name, seed)
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < n/3; i++ {
		b[i] = byte(rng.Uint32())
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
		t.Fatalf("%s and %s differ (%v %v, %d and %d bytes)", a, b, err1, err2, len(x), len(y))
	}
}

func TestPushFetch(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := newRepo(t, be)
	dir := t.TempDir()
	seg := segment(t, dir, "000000010000000000000003", 5<<20+123, 1)
	res, err := pitr.Push(ctx, r, "main", seg, "db1", time.Now)
	if err != nil || res.Already || res.Entry.Size != 5<<20+123 || len(res.Entry.Content) != 6 {
		t.Fatalf("push: %+v %v", res, err)
	}
	// The zero-filled pieces are stored once.
	if res.Stored > 2<<20+4096 {
		t.Errorf("stored %d bytes for a segment that is one third random", res.Stored)
	}
	again, err := pitr.Push(ctx, r, "main", seg, "db1", time.Now)
	if err != nil || !again.Already {
		t.Fatalf("second push of the same content: %+v %v", again, err)
	}

	out := filepath.Join(dir, "out")
	if err := pitr.Fetch(ctx, reopen(t, be, "pw"), "main", "000000010000000000000003", out); err != nil {
		t.Fatal(err)
	}
	sameFile(t, seg, out)

	// Other content under the same name is refused, and nothing changes.
	data, _ := os.ReadFile(seg)
	data[7] ^= 1
	os.WriteFile(seg, data, 0o600)
	if _, err := pitr.Push(ctx, r, "main", seg, "db1", time.Now); !errors.Is(err, pitr.ErrConflict) {
		t.Fatalf("push of other content: %v", err)
	}
	if err := pitr.Fetch(ctx, reopen(t, be, "pw"), "main", "000000010000000000000003", out); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); bytes.Equal(got, data) {
		t.Fatal("the refused push replaced the archived segment")
	}

	// Another cluster name is another archive.
	if err := pitr.Fetch(ctx, r, "other", "000000010000000000000003", out+"2"); !errors.Is(err, wal.ErrNotArchived) {
		t.Fatalf("fetch from another cluster: %v", err)
	}
	if _, err := os.Stat(out + "2"); !os.IsNotExist(err) {
		t.Fatal("a failed fetch left a file")
	}
	// History, backup and partial files are archived too; other names not.
	for _, name := range []string{"00000002.history", "000000010000000000000003.00000028.backup", "000000010000000000000004.partial"} {
		p := segment(t, dir, name, 300, 2)
		if _, err := pitr.Push(ctx, r, "main", p, "db1", time.Now); err != nil {
			t.Fatalf("push %s: %v", name, err)
		}
		if err := pitr.Fetch(ctx, reopen(t, be, "pw"), "main", name, filepath.Join(dir, "f")); err != nil {
			t.Fatal(err)
		}
		sameFile(t, p, filepath.Join(dir, "f"))
	}
	for _, name := range []string{"postgresql.conf", "00000001000000000000000g", "../000000010000000000000003"} {
		p := filepath.Join(dir, filepath.Base(name))
		os.WriteFile(p, []byte("x"), 0o600)
		if _, err := pitr.Push(ctx, r, "main", p, "db1", time.Now); !errors.Is(err, wal.ErrName) && filepath.Base(name) == name {
			t.Errorf("push of %s: %v", name, err)
		}
	}
}

// A write-only key pushes (the server never reads) but cannot fetch.
func TestPushWriteOnly(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	full := newRepo(t, be)
	keyFile, err := crypto.EncryptWithPassphrase(full.Keys().Secrets.WriteOnlyCopy(), []byte("writer"), crypto.S2KIterated)
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Save(ctx, backends.Handle{Type: backends.KeyFile, Name: id.Hash(keyFile).String()}, backends.NewByteReader(keyFile)); err != nil {
		t.Fatal(err)
	}
	w := reopen(t, be, "writer")
	dir := t.TempDir()
	seg := segment(t, dir, "000000010000000000000001", 2<<20, 3)
	if _, err := pitr.Push(ctx, w, "main", seg, "db1", time.Now); err != nil {
		t.Fatal(err)
	}
	if res, err := pitr.Push(ctx, w, "main", seg, "db1", time.Now); err != nil || !res.Already {
		t.Fatalf("a write-only key cannot tell an archived segment: %+v %v", res, err)
	}
	if err := pitr.Fetch(ctx, w, "main", "000000010000000000000001", filepath.Join(dir, "out")); !errors.Is(err, repo.ErrWriteOnly) {
		t.Fatalf("fetch with a write-only key: %v", err)
	}
	if err := pitr.Fetch(ctx, reopen(t, be, "pw"), "main", "000000010000000000000001", filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	sameFile(t, seg, filepath.Join(dir, "out"))
}

// A backend that fails transiently: behind the retry decorator the push
// succeeds; without it the push fails, leaves no entry, and the next push
// (PostgreSQL retries) stores the segment whole.
func TestPushFaultyBackend(t *testing.T) {
	ctx := context.Background()
	transient := errors.New("connection reset")
	dir := t.TempDir()
	seg := segment(t, dir, "000000010000000000000005", 3<<20, 4)

	t.Run("retried", func(t *testing.T) {
		inner := mem.New()
		newRepo(t, inner)
		f := &backendtest.Faulty{Backend: inner}
		fails := map[backends.FileType]func(backends.Handle) error{}
		for _, typ := range []backends.FileType{backends.PackFile, backends.IndexFile, backends.WALFile, backends.LockFile} {
			fails[typ] = backendtest.FailTimes(1, transient)
		}
		f.FailSave = func(h backends.Handle) error {
			if fn := fails[h.Type]; fn != nil {
				return fn(h)
			}
			return nil
		}
		be := retry.New(f, retry.Options{Initial: time.Millisecond, Max: 5 * time.Millisecond})
		r := reopen(t, be, "pw")
		if _, err := pitr.Push(ctx, r, "main", seg, "db1", time.Now); err != nil {
			t.Fatalf("push through retries: %v", err)
		}
		out := filepath.Join(t.TempDir(), "out")
		if err := pitr.Fetch(ctx, reopen(t, inner, "pw"), "main", "000000010000000000000005", out); err != nil {
			t.Fatal(err)
		}
		sameFile(t, seg, out)
	})

	for _, typ := range []backends.FileType{backends.PackFile, backends.IndexFile, backends.WALFile} {
		t.Run("fail "+string(typ), func(t *testing.T) {
			inner := mem.New()
			newRepo(t, inner)
			f := &backendtest.Faulty{Backend: inner}
			failed := false
			f.CutSave = func(h backends.Handle) int64 {
				if h.Type == typ && !failed {
					failed = true
					return 100
				}
				return -1
			}
			if _, err := pitr.Push(ctx, reopen(t, f, "pw"), "main", seg, "db1", time.Now); err == nil {
				t.Fatal("push succeeded although the backend failed")
			}
			if ok, _ := wal.Exists(ctx, inner, "main", "000000010000000000000005"); ok {
				t.Fatal("a failed push left a catalog entry")
			}
			if _, err := pitr.Push(ctx, reopen(t, f, "pw"), "main", seg, "db1", time.Now); err != nil {
				t.Fatalf("second push: %v", err)
			}
			out := filepath.Join(t.TempDir(), "out")
			if err := pitr.Fetch(ctx, reopen(t, inner, "pw"), "main", "000000010000000000000005", out); err != nil {
				t.Fatal(err)
			}
			sameFile(t, seg, out)
		})
	}
}

// saveNames puts catalog files with the given WAL names into be (their
// content does not matter to ReadArchive).
func saveNames(t *testing.T, be backends.Backend, cluster string, files ...string) {
	t.Helper()
	for _, f := range files {
		n, err := wal.HandleName(cluster, f)
		if err != nil {
			t.Fatal(err)
		}
		if err := be.Save(context.Background(), backends.Handle{Type: backends.WALFile, Name: n}, backends.NewByteReader([]byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTimelinesAndGaps(t *testing.T) {
	be := mem.New()
	saveNames(t, be, "main", "0000000100000000000000FE", "0000000100000000000000FF", "000000010000000100000002",
		"00000002.history", "000000020000000100000002", "000000020000000100000003", "000000010000000100000002.partial")
	saveNames(t, be, "other", "000000010000000000000001")
	a, err := pitr.ReadArchive(context.Background(), be)
	if err != nil {
		t.Fatal(err)
	}
	tls := a.Timelines()
	if len(tls) != 3 {
		t.Fatalf("timelines: %+v", tls)
	}
	// 16 MiB segments: 256 per log file; 1/00 and 1/01 are missing.
	if m := tls[0].Missing; tls[0].Timeline != 1 || len(m) != 2 || m[0] != "000000010000000100000000" || m[1] != "000000010000000100000001" {
		t.Errorf("timeline 1: %+v", tls[0])
	}
	if tls[1].Timeline != 2 || len(tls[1].Missing) != 0 || !tls[1].History || tls[1].Segments != 2 {
		t.Errorf("timeline 2: %+v", tls[1])
	}
	if tls[2].Cluster != "other" || tls[2].First != "000000010000000000000001" {
		t.Errorf("other: %+v", tls[2])
	}
	// With 1 GiB segments there are 4 per log file: 0/FE is not a segment
	// of that size, but the names still sort; 1/02 follows 1/01.
	a.SetSegmentSize("other", 1<<30)
	if a.SegmentSize("other") != 1<<30 || a.SegmentSize("main") != pitr.DefaultSegmentSize {
		t.Error("segment sizes")
	}
}

func baseSnapshot(start, stopLSN string, stop time.Time) *snapshot.Snapshot {
	return &snapshot.Snapshot{Time: stop.Add(-time.Minute), Source: snapshot.Source{Kind: snapshot.KindDatabase, Databases: []snapshot.DatabaseInfo{{
		Name: "main", Engine: "postgres", Path: "/db/main.base.tar", Format: "basebackup",
		Details: map[string]string{"timeline": "1", "start_wal": start, "start_lsn": "0/1000028",
			"stop_lsn": stopLSN, "stop_time": stop.Format(time.RFC3339Nano), "wal_segment_size": "16777216"},
	}}}}
}

func TestChooseAndExpire(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	sns := []*snapshot.Snapshot{
		baseSnapshot("000000010000000000000004", "0/4000100", t0),
		baseSnapshot("000000010000000000000009", "0/9000100", t0.Add(time.Hour)),
		{Source: snapshot.Source{Kind: snapshot.KindDatabase, Databases: []snapshot.DatabaseInfo{{Name: "main", Format: "custom"}}}},
	}
	bbs := pitr.BaseBackups(sns, "main")
	if len(bbs) != 2 {
		t.Fatalf("base backups: %+v", bbs)
	}
	for _, tc := range []struct {
		t    pitr.Target
		want string // start WAL, or "" for no base backup
	}{
		{pitr.Target{Time: t0.Add(30 * time.Minute)}, "000000010000000000000004"},
		{pitr.Target{Time: t0.Add(2 * time.Hour)}, "000000010000000000000009"},
		{pitr.Target{Time: t0.Add(-time.Second)}, ""},
		{pitr.Target{LSN: "0/8000000"}, "000000010000000000000004"},
		{pitr.Target{LSN: "0/9000100"}, "000000010000000000000009"},
		{pitr.Target{Name: "x"}, "000000010000000000000009"},
		{pitr.Target{}, "000000010000000000000009"},
	} {
		bb, err := pitr.Choose(bbs, tc.t)
		switch {
		case tc.want == "" && !errors.Is(err, pitr.ErrNoBaseBackup):
			t.Errorf("%s: %v, want ErrNoBaseBackup", tc.t, err)
		case tc.want != "" && (err != nil || bb.StartWAL.File != tc.want):
			t.Errorf("%s: %s %v, want %s", tc.t, bb.StartWAL.File, err, tc.want)
		}
	}

	be := mem.New()
	saveNames(t, be, "main", "000000010000000000000002", "000000010000000000000003", "000000010000000000000003.00000028.backup",
		"000000010000000000000004", "00000002.history", "000000020000000000000003", "000000010000000000000005")
	saveNames(t, be, "nobase", "000000010000000000000001")
	a, _ := pitr.ReadArchive(context.Background(), be)
	exp := pitr.Expired(a, sns)
	var names []string
	for _, it := range exp["main"] {
		names = append(names, it.Name.File)
	}
	if got := strings.Join(names, " "); got != "000000010000000000000002 000000010000000000000003 000000010000000000000003.00000028.backup 000000020000000000000003" {
		t.Errorf("expired: %s", got)
	}
	if len(exp["nobase"]) != 0 {
		t.Errorf("WAL of a database without base backups expired: %+v", exp["nobase"])
	}
}

func TestParseLSN(t *testing.T) {
	for s, want := range map[string]uint64{"0/16B3748": 0x16B3748, "1/0": 1 << 32, "FFFFFFFF/FFFFFFFF": 1<<64 - 1} {
		if got, err := pitr.ParseLSN(s); err != nil || got != want {
			t.Errorf("ParseLSN(%s) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "0", "0/", "/1", "0/1/2", "g/1", "100000000/0"} {
		if _, err := pitr.ParseLSN(s); err == nil {
			t.Errorf("ParseLSN(%q) accepted", s)
		}
	}
}

func TestExtractRefusesEscapes(t *testing.T) {
	// archive/tar output with a hostile name.
	var buf bytes.Buffer
	writeTar(t, &buf, "../evil", "x")
	dir := t.TempDir()
	if err := pitr.Extract(&buf, filepath.Join(dir, "data")); !errors.Is(err, repo.ErrInvalidData) {
		t.Fatalf("extract of ../evil: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "evil")); !os.IsNotExist(err) {
		t.Fatal("extract wrote outside the data directory")
	}
	os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("15\n"), 0o600)
	if err := pitr.PrepareDir(dir, false); !errors.Is(err, pitr.ErrNotEmpty) {
		t.Fatalf("PrepareDir of a non-empty dir: %v", err)
	}
	if err := pitr.PrepareDir(dir, true); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("PrepareDir with force left %d entries", len(entries))
	}
}

// Prune keeps the blobs of every WAL catalog entry (they are in no
// snapshot); once Expired and Forget drop an entry, prune frees its pack.
func TestPruneKeepsWAL(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := newRepo(t, be)
	dir := t.TempDir()
	a := segment(t, dir, "000000010000000000000002", 2<<20, 5)
	b := segment(t, dir, "000000010000000000000003", 2<<20, 6)
	for _, p := range []string{a, b} {
		if _, err := pitr.Push(ctx, r, "main", p, "db1", time.Now); err != nil {
			t.Fatal(err)
		}
	}
	prune := func() *repo.PrunePlan {
		t.Helper()
		plan, _, err := snapshot.Prune(ctx, reopen(t, be, "pw"), repo.PruneOptions{MaxUnused: 0.05}, true, false)
		if err != nil {
			t.Fatal(err)
		}
		return plan
	}
	if plan := prune(); len(plan.Delete) != 0 || plan.UsedBlobs == 0 {
		t.Fatalf("prune with only WAL in the repository: delete %d packs, %d used blobs", len(plan.Delete), plan.UsedBlobs)
	}
	for _, p := range []string{a, b} {
		out := filepath.Join(dir, "out")
		if err := pitr.Fetch(ctx, reopen(t, be, "pw"), "main", filepath.Base(p), out); err != nil {
			t.Fatalf("fetch after prune: %v", err)
		}
		sameFile(t, p, out)
	}

	arch, _ := pitr.ReadArchive(ctx, be)
	sns := []*snapshot.Snapshot{baseSnapshot("000000010000000000000003", "0/3000100", time.Now())}
	n, err := pitr.Forget(ctx, r, pitr.Expired(arch, sns))
	if err != nil || n != 1 {
		t.Fatalf("forget: %d %v", n, err)
	}
	// The zero-filled piece both segments share stays (A's pack is
	// repacked rather than deleted).
	if plan := prune(); len(plan.Delete)+len(plan.Repack) != 1 || plan.UnusedBlobs != 1 {
		t.Fatalf("prune after forgetting a segment: delete %d, repack %d packs, %d unused blobs; want one pack and one blob",
			len(plan.Delete), len(plan.Repack), plan.UnusedBlobs)
	}
	if err := pitr.Fetch(ctx, reopen(t, be, "pw"), "main", "000000010000000000000003", filepath.Join(dir, "out")); err != nil {
		t.Fatalf("the kept segment after prune: %v", err)
	}
}

// A version 1 repository takes no WAL: a version 1 hoard could open it and
// its prune would delete the archived segments' blobs.
func TestPushRefusesVersion1(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(ctx, mem.New(), repo.InitOptions{Options: repo.Options{Passphrase: []byte("pw")}, S2K: crypto.S2KIterated, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	seg := segment(t, t.TempDir(), "000000010000000000000001", 1<<20, 4)
	if _, err := pitr.Push(ctx, r, "main", seg, "db1", time.Now); !errors.Is(err, repo.ErrVersion) {
		t.Fatalf("push into a version 1 repository: %v, want ErrVersion", err)
	}
}
