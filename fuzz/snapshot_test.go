package fuzz

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
)

func sampleTrees() []*snapshot.Tree {
	mtime := time.Date(2026, 11, 21, 23, 59, 0, 123456789, time.UTC)
	sub := fixedID("subtree")
	return []*snapshot.Tree{
		{},
		{Nodes: []snapshot.Node{
			{Name: "a.txt", Type: snapshot.TypeFile, Mode: 0o644, UID: 1000, GID: 1000, User: "deploy", Group: "deploy",
				ModTime: mtime, ChangeTime: mtime, Inode: 42, DeviceID: 2049, Size: 11, Content: []id.ID{fixedID("c1"), fixedID("c2")}},
			{Name: "dir", Type: snapshot.TypeDir, Mode: 0o755 | 1<<31, ModTime: mtime, Subtree: &sub},
			{Name: "link", Type: snapshot.TypeSymlink, Mode: 0o777 | 1<<27, LinkTarget: "../a.txt"},
		}},
		{Nodes: []snapshot.Node{
			{Name: "caf\xe9", Type: snapshot.TypeSymlink, LinkTarget: "\xff/x"},
			{Name: "null", Type: snapshot.TypeCharDev, Rdev: 259},
			{Name: "pipe", Type: snapshot.TypeFifo},
			{Name: "sda", Type: snapshot.TypeDev, Rdev: 2048},
			{Name: "sock", Type: snapshot.TypeSocket},
			{Name: "\u00e9t\u00e9", Type: snapshot.TypeFile},
		}},
		{Nodes: []snapshot.Node{ // a hard-link group (links, device_id, inode)
			{Name: "a", Type: snapshot.TypeFile, Inode: 7, DeviceID: 2049, Links: 2, Size: 3, Content: []id.ID{fixedID("l")}},
			{Name: "b", Type: snapshot.TypeFile, Inode: 7, DeviceID: 2049, Links: 2, Size: 3, Content: []id.ID{fixedID("l")}},
		}},
	}
}

// FuzzTree feeds snapshot.DecodeTree arbitrary bytes. An accepted tree must
// follow FORMAT.md section 8 (checked here independently of Validate), must
// encode, and encoding must be a fixed point: decode(encode(t)) == t and
// encode of that gives the same bytes.
func FuzzTree(f *testing.F) {
	for _, tr := range sampleTrees() {
		b, err := tr.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"nodes":[{"name":"..","type":"dir","subtree":"` + strings.Repeat("00", 32) + `"}]}`,
		`{"nodes":[{"name":"b","type":"fifo"},{"name":"a","type":"fifo"}]}`,
		`{"nodes":[{"name_raw":"YS9i","type":"fifo"}]}`,
		`{"nodes":[{"name":"a","name_raw":"/w==","type":"file"}]}`,
		`{"nodes":[{"name":"a\u0000","type":"file"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := snapshot.DecodeTree(data)
		if err != nil {
			if !errors.Is(err, snapshot.ErrInvalidTree) {
				t.Fatalf("error without snapshot.ErrInvalidTree: %v", err)
			}
			return
		}
		checkTreeRules(t, tr)
		enc, err := tr.Encode()
		if err != nil {
			t.Fatalf("accepted tree does not encode: %v", err)
		}
		tr2, err := snapshot.DecodeTree(enc)
		if err != nil {
			t.Fatalf("encoded tree rejected: %v\n%s", err, enc)
		}
		if !sameTree(tr, tr2) {
			t.Fatalf("round trip changed the tree:\n%+v\n%+v", tr, tr2)
		}
		enc2, err := tr2.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not a fixed point (%v):\n%s\n%s", err, enc, enc2)
		}
	})
}

// checkTreeRules restates FORMAT.md section 8 without calling Validate.
func checkTreeRules(t *testing.T, tr *snapshot.Tree) {
	t.Helper()
	for i, n := range tr.Nodes {
		if n.Name == "" || n.Name == "." || n.Name == ".." || strings.ContainsAny(n.Name, "/\x00") {
			t.Fatalf("accepted name %q", n.Name)
		}
		if i > 0 && !(tr.Nodes[i-1].Name < n.Name) {
			t.Fatalf("accepted names %q, %q out of order or duplicate", tr.Nodes[i-1].Name, n.Name)
		}
		switch n.Type {
		case snapshot.TypeDir:
			if n.Subtree == nil {
				t.Fatalf("accepted directory %q without subtree", n.Name)
			}
		case snapshot.TypeFile, snapshot.TypeSymlink, snapshot.TypeDev, snapshot.TypeCharDev, snapshot.TypeFifo, snapshot.TypeSocket:
			if n.Subtree != nil {
				t.Fatalf("accepted %s %q with a subtree", n.Type, n.Name)
			}
		default:
			t.Fatalf("accepted type %q", n.Type)
		}
		if n.Type != snapshot.TypeFile && len(n.Content) > 0 {
			t.Fatalf("accepted %s %q with content", n.Type, n.Name)
		}
	}
}

// sameTree compares trees, times by instant (a decoded time's location
// depends on how its offset was written).
func sameTree(a, b *snapshot.Tree) bool {
	if len(a.Nodes) != len(b.Nodes) {
		return false
	}
	for i := range a.Nodes {
		x, y := a.Nodes[i], b.Nodes[i]
		if !x.ModTime.Equal(y.ModTime) || !x.ChangeTime.Equal(y.ChangeTime) {
			return false
		}
		x.ModTime, y.ModTime, x.ChangeTime, y.ChangeTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if len(x.Content) == 0 && len(y.Content) == 0 {
			x.Content, y.Content = nil, nil
		}
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

func sampleSnapshots() []*snapshot.Snapshot {
	parent := fixedID("parent")
	return []*snapshot.Snapshot{
		{Time: time.Date(2026, 11, 21, 23, 59, 0, 123456789, time.UTC), Host: "web1", Username: "deploy",
			Tags: []string{"daily"}, Paths: []string{"/srv/media"}, Source: snapshot.Source{Kind: snapshot.KindFiles},
			Tree: fixedID("root"), Parent: &parent, Program: "hoard 0.1.0",
			Summary: &snapshot.Summary{FilesNew: 1, FilesUnmodified: 2, Dirs: 3, DataBlobsNew: 1, TreeBlobsNew: 2,
				BytesRead: 10, BytesAdded: 40, BytesStored: 70, DurationNs: 1200000}},
		{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", 3600)), Host: "db",
			Source: snapshot.Source{Kind: snapshot.KindCommand, Command: []string{"pg_dump", "-Fc", "app"}}, Tree: fixedID("dump")},
		{Host: "x", Source: snapshot.Source{Kind: snapshot.KindStdin, Filename: "dump.sql"}, Tree: fixedID("stdin")},
		{Host: "w", Source: snapshot.Source{Kind: snapshot.KindFiles}, Tree: fixedID("signed"), Writer: crypto.WriterID(fixedKey("snapshot")),
			WriterKey: []byte("wrapped key"), MAC: fixedKey("mac")},
	}
}

// FuzzSnapshot feeds snapshot.Decode arbitrary bytes. An accepted snapshot
// names a tree, and marshalling it and decoding again gives the same value.
func FuzzSnapshot(f *testing.F) {
	for _, sn := range sampleSnapshots() {
		b, err := json.Marshal(sn)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"tree":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sn, err := snapshot.Decode(data)
		if err != nil {
			return
		}
		if sn.Tree.IsNull() {
			t.Fatal("snapshot without a tree accepted")
		}
		if (sn.Writer == "") != (sn.MAC == nil) || (sn.Writer == "") != (sn.WriterKey == nil) ||
			sn.Writer != "" && (len(sn.Writer) != 32 || len(sn.MAC) != 32 || len(sn.WriterKey) > 4096) {
			t.Fatalf("accepted writer %q, writer_key of %d bytes, mac of %d", sn.Writer, len(sn.WriterKey), len(sn.MAC))
		}
		enc, err := json.Marshal(sn)
		if err != nil {
			t.Fatalf("accepted snapshot does not marshal: %v", err)
		}
		sn2, err := snapshot.Decode(enc)
		if err != nil {
			t.Fatalf("marshalled snapshot rejected: %v\n%s", err, enc)
		}
		if !sn.Time.Equal(sn2.Time) {
			t.Fatalf("time changed: %v, %v", sn.Time, sn2.Time)
		}
		sn.Time, sn2.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(normalSnapshot(*sn), normalSnapshot(*sn2)) {
			t.Fatalf("round trip changed the snapshot:\n%+v\n%+v", sn, sn2)
		}
	})
}

// normalSnapshot makes empty lists nil: omitempty drops them, so [] and an
// absent field are the same snapshot.
func normalSnapshot(sn snapshot.Snapshot) snapshot.Snapshot {
	if len(sn.Tags) == 0 {
		sn.Tags = nil
	}
	if len(sn.Paths) == 0 {
		sn.Paths = nil
	}
	if len(sn.Source.Command) == 0 {
		sn.Source.Command = nil
	}
	return sn
}
