package snapshot_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/snapshot"
)

func testID(s string) id.ID { return id.Hash([]byte(s)) }

// rawJSON encodes nodes as a tree without validating them, as a damaged or
// hostile writer could.
func rawJSON(t *testing.T, nodes ...snapshot.Node) []byte {
	t.Helper()
	b, err := json.Marshal(map[string][]snapshot.Node{"nodes": nodes})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNonUTF8RoundTrip checks that names and link targets that are not
// UTF-8 are stored as name_raw / linktarget_raw and come back byte for byte.
func TestNonUTF8RoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name, target     string
		nameRaw, linkRaw bool
	}{
		{"plain", "target", false, false},
		{"caf\xe9", "caf\xe9/x", true, true}, // Latin-1
		{"\xff\xfe", "ok", true, false},
		{"日本語", "\x80", false, true},
		{"a\u2028b", "../a\tb", false, false},
		{"\xed\xa0\x80", "\xc0\xaf", true, true}, // a UTF-16 surrogate, an overlong '/'
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &snapshot.Tree{Nodes: []snapshot.Node{{Name: tc.name, Type: snapshot.TypeSymlink, LinkTarget: tc.target}}}
			b, err := tr.Encode()
			if err != nil {
				t.Fatal(err)
			}
			var j struct {
				Nodes []map[string]any `json:"nodes"`
			}
			if err := json.Unmarshal(b, &j); err != nil {
				t.Fatal(err)
			}
			n := j.Nodes[0]
			for field, raw := range map[string]bool{"name": tc.nameRaw, "linktarget": tc.linkRaw} {
				_, hasPlain := n[field]
				_, hasRaw := n[field+"_raw"]
				if hasRaw != raw || hasPlain == raw {
					t.Errorf("%s: %s present %v, %s_raw present %v in %s", field, field, hasPlain, field, hasRaw, b)
				}
			}
			got, err := snapshot.DecodeTree(b)
			if err != nil {
				t.Fatal(err)
			}
			if g := got.Nodes[0]; g.Name != tc.name || g.LinkTarget != tc.target {
				t.Fatalf("got name %q target %q, want %q %q", g.Name, g.LinkTarget, tc.name, tc.target)
			}
		})
	}
}

func TestTreeRoundTrip(t *testing.T) {
	mtime := time.Date(2026, 11, 21, 23, 59, 0, 123456789, time.UTC)
	sub := testID("sub")
	tr := &snapshot.Tree{Nodes: []snapshot.Node{
		{Name: "B", Type: snapshot.TypeFifo},
		{Name: "a", Type: snapshot.TypeFile, Mode: 0o644, UID: 1000, GID: 100, User: "u", Group: "g", ModTime: mtime,
			ChangeTime: mtime, Inode: 7, DeviceID: 8, Size: 3, Content: []id.ID{testID("c")}},
		{Name: "dev", Type: snapshot.TypeDev, Rdev: 2049},
		{Name: "dir", Type: snapshot.TypeDir, Mode: 0o755 | 1<<31, Subtree: &sub},
		{Name: "empty", Type: snapshot.TypeFile},
	}}
	b, err := tr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := snapshot.DecodeTree(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := got.Encode()
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("encoding is not stable (%v):\n%s\n%s", err, b, b2)
	}
	if !got.Nodes[1].ModTime.Equal(mtime) || *got.Nodes[3].Subtree != sub || got.Nodes[1].Content[0] != testID("c") {
		t.Fatalf("fields lost: %+v", got.Nodes)
	}
	if e, err := (&snapshot.Tree{}).Encode(); err != nil || string(e) != `{"nodes":[]}` {
		t.Fatalf("empty tree: %s, %v", e, err)
	}
}

// TestValidate checks the rules of FORMAT.md section 8 on both sides:
// Encode refuses to write a tree that breaks them, DecodeTree to read one.
func TestValidate(t *testing.T) {
	sub := testID("sub")
	fifo := func(name string) snapshot.Node { return snapshot.Node{Name: name, Type: snapshot.TypeFifo} }
	for _, tc := range []struct {
		name  string
		nodes []snapshot.Node
		ok    bool
	}{
		{"no nodes", nil, true},
		{"sorted by bytes", []snapshot.Node{fifo("B"), fifo("a"), fifo("a.txt"), fifo("ab"), fifo("\xc3\xa9")}, true},
		{"dot names inside", []snapshot.Node{fifo("..."), fifo(".a"), fifo("a.")}, true},
		{"empty name", []snapshot.Node{fifo("")}, false},
		{"dot", []snapshot.Node{fifo(".")}, false},
		{"dot dot", []snapshot.Node{fifo("..")}, false},
		{"slash", []snapshot.Node{fifo("a/b")}, false},
		{"leading slash", []snapshot.Node{fifo("/etc")}, false},
		{"only a slash", []snapshot.Node{fifo("/")}, false},
		{"NUL", []snapshot.Node{fifo("a\x00")}, false},
		{"not UTF-8 with a slash", []snapshot.Node{fifo("\xff/..")}, false},
		{"unsorted", []snapshot.Node{fifo("b"), fifo("a")}, false},
		{"unsorted later", []snapshot.Node{fifo("a"), fifo("c"), fifo("b")}, false},
		{"duplicate", []snapshot.Node{fifo("a"), fifo("a")}, false},
		{"dir without subtree", []snapshot.Node{{Name: "d", Type: snapshot.TypeDir}}, false},
		{"file with subtree", []snapshot.Node{{Name: "f", Type: snapshot.TypeFile, Subtree: &sub}}, false},
		{"symlink with content", []snapshot.Node{{Name: "l", Type: snapshot.TypeSymlink, Content: []id.ID{sub}}}, false},
		{"dir with content", []snapshot.Node{{Name: "d", Type: snapshot.TypeDir, Subtree: &sub, Content: []id.ID{sub}}}, false},
		{"unknown type", []snapshot.Node{{Name: "x", Type: "door"}}, false},
		{"no type", []snapshot.Node{{Name: "x"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, encErr := (&snapshot.Tree{Nodes: tc.nodes}).Encode()
			_, decErr := snapshot.DecodeTree(rawJSON(t, tc.nodes...))
			for what, err := range map[string]error{"Encode": encErr, "DecodeTree": decErr} {
				if tc.ok && err != nil {
					t.Errorf("%s: %v", what, err)
				}
				if !tc.ok && !errors.Is(err, snapshot.ErrInvalidTree) {
					t.Errorf("%s: got %v, want snapshot.ErrInvalidTree", what, err)
				}
			}
		})
	}
}

// TestDecodeTreeRejects feeds DecodeTree JSON that no writer produces.
func TestDecodeTreeRejects(t *testing.T) {
	zero := strings.Repeat("00", 32)
	for _, tc := range []struct {
		name, json string
	}{
		{"empty", ``},
		{"not JSON", `nodes`},
		{"array", `[]`},
		{"trailing object", `{"nodes":[]} {"nodes":[]}`},
		{"trailing garbage", `{"nodes":[]} x`},
		{"name and name_raw", `{"nodes":[{"name":"a","name_raw":"Yg==","type":"fifo"}]}`},
		{"name_raw with a slash", `{"nodes":[{"name_raw":"YS9i","type":"fifo"}]}`},
		{"name_raw dot dot", `{"nodes":[{"name_raw":"Li4=","type":"fifo"}]}`},
		{"name_raw empty", `{"nodes":[{"name_raw":"","type":"fifo"}]}`},
		{"name_raw not base64", `{"nodes":[{"name_raw":"%%","type":"fifo"}]}`},
		{"escaped NUL", `{"nodes":[{"name":"a\u0000b","type":"fifo"}]}`},
		{"escaped slash", `{"nodes":[{"name":"a\/b","type":"fifo"}]}`},
		{"bad subtree", `{"nodes":[{"name":"d","type":"dir","subtree":"zz"}]}`},
		{"short content ID", `{"nodes":[{"name":"f","type":"file","content":["` + zero[:62] + `"]}]}`},
		{"bad mtime", `{"nodes":[{"name":"f","type":"file","mtime":"yesterday"}]}`},
		{"negative uid", `{"nodes":[{"name":"f","type":"file","uid":-1}]}`},
		{"nodes not a list", `{"nodes":{"name":"f"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tr, err := snapshot.DecodeTree([]byte(tc.json)); !errors.Is(err, snapshot.ErrInvalidTree) {
				t.Fatalf("got %+v, %v; want snapshot.ErrInvalidTree", tr, err)
			}
		})
	}
}

func TestFind(t *testing.T) {
	tr := &snapshot.Tree{Nodes: []snapshot.Node{
		{Name: "a", Type: snapshot.TypeFifo}, {Name: "b", Type: snapshot.TypeFifo}, {Name: "d\xff", Type: snapshot.TypeFifo},
	}}
	for _, tc := range []struct {
		name  string
		found bool
	}{
		{"a", true}, {"b", true}, {"d\xff", true}, {"c", false}, {"", false}, {"e", false}, {"d", false},
	} {
		n := tr.Find(tc.name)
		if (n != nil) != tc.found || (n != nil && n.Name != tc.name) {
			t.Errorf("Find(%q) = %+v, want found %v", tc.name, n, tc.found)
		}
	}
	if (&snapshot.Tree{}).Find("a") != nil {
		t.Error("found a node in an empty tree")
	}
}
