package restorer_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRestoreUnderDefaultACL: in a target with a default POSIX ACL, new
// files take their mode from the ACL, not from the umask, so a file
// created with its final mode can come out narrower (0640 for a 0644 file
// under an ACL that gives others nothing). The restore must still give
// every file the snapshot's mode.
func TestRestoreUnderDefaultACL(t *testing.T) {
	e := newHostileEnv(t)
	target := filepath.Join(e.base, "target")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	// The xattr form of "default:user::rwx, default:group::r-x,
	// default:other::---" (version 2, then tag, permissions, id).
	acl := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range []struct{ tag, perm uint16 }{{0x01, 7}, {0x04, 5}, {0x20, 0}} {
		acl = binary.LittleEndian.AppendUint16(acl, e.tag)
		acl = binary.LittleEndian.AppendUint16(acl, e.perm)
		acl = binary.LittleEndian.AppendUint32(acl, 0xffffffff)
	}
	if err := unix.Setxattr(target, "system.posix_acl_default", acl, 0); err != nil {
		t.Fatalf("setting a default ACL on %s (the test folder's file system must support POSIX ACLs): %v", target, err)
	}
	f := e.fileNode("readable", []byte("for everyone\n"), 1<<20)
	f["mode"] = 0o644
	g := e.fileNode("inside", []byte("in a folder\n"), 1<<20)
	g["mode"] = 0o604
	sn := e.snapshot(e.tree(f, dirNode("sub", e.tree(g))))
	if err := e.restore(sn, target, false); err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]os.FileMode{"readable": 0o644, "sub/inside": 0o604} {
		fi, err := os.Stat(filepath.Join(target, rel))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", rel, got, want)
		}
	}
}
