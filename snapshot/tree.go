// Package snapshot holds the Snapshot and Tree types, their canonical
// encoding (docs/FORMAT.md sections 8 and 9), storage through a repository,
// walking and the snapshot-level check.
package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/id"
)

// ErrInvalidTree marks a tree that breaks the format's rules.
var ErrInvalidTree = errors.New("snapshot: invalid tree")

// Node types.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
	TypeDev     = "dev"
	TypeCharDev = "chardev"
	TypeFifo    = "fifo"
	TypeSocket  = "socket"
)

// Node is one entry of a directory.
type Node struct {
	Name       string
	Type       string
	Mode       fs.FileMode
	UID, GID   uint32
	User       string
	Group      string
	ModTime    time.Time
	ChangeTime time.Time
	Inode      uint64
	DeviceID   uint64
	Size       uint64
	Content    []id.ID
	Subtree    *id.ID
	LinkTarget string
	Rdev       uint64
	// Links is the file's hard-link count when it is more than 1: the
	// nodes of one snapshot with Links > 1 and equal DeviceID and Inode
	// are one file, and a restore links them (docs/FORMAT.md section 8).
	Links uint64
}

type nodeJSON struct {
	Name          string      `json:"name,omitempty"`
	NameRaw       []byte      `json:"name_raw,omitempty"`
	Type          string      `json:"type"`
	Mode          fs.FileMode `json:"mode"`
	UID           uint32      `json:"uid"`
	GID           uint32      `json:"gid"`
	User          string      `json:"user,omitempty"`
	Group         string      `json:"group,omitempty"`
	ModTime       time.Time   `json:"mtime"`
	ChangeTime    time.Time   `json:"ctime"`
	Inode         uint64      `json:"inode,omitempty"`
	DeviceID      uint64      `json:"device_id,omitempty"`
	Size          uint64      `json:"size,omitempty"`
	Content       []id.ID     `json:"content,omitempty"`
	Subtree       *id.ID      `json:"subtree,omitempty"`
	LinkTarget    string      `json:"linktarget,omitempty"`
	LinkTargetRaw []byte      `json:"linktarget_raw,omitempty"`
	Rdev          uint64      `json:"rdev,omitempty"`
	Links         uint64      `json:"links,omitempty"`
}

// MarshalJSON encodes names and link targets that are not UTF-8 as base64.
func (n Node) MarshalJSON() ([]byte, error) {
	j := nodeJSON{Type: n.Type, Mode: n.Mode, UID: n.UID, GID: n.GID, User: n.User, Group: n.Group,
		ModTime: n.ModTime, ChangeTime: n.ChangeTime, Inode: n.Inode, DeviceID: n.DeviceID, Size: n.Size,
		Content: n.Content, Subtree: n.Subtree, Rdev: n.Rdev, Links: n.Links}
	if utf8.ValidString(n.Name) {
		j.Name = n.Name
	} else {
		j.NameRaw = []byte(n.Name)
	}
	if utf8.ValidString(n.LinkTarget) {
		j.LinkTarget = n.LinkTarget
	} else {
		j.LinkTargetRaw = []byte(n.LinkTarget)
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes a node.
func (n *Node) UnmarshalJSON(b []byte) error {
	var j nodeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*n = Node{Name: j.Name, Type: j.Type, Mode: j.Mode, UID: j.UID, GID: j.GID, User: j.User, Group: j.Group,
		ModTime: j.ModTime, ChangeTime: j.ChangeTime, Inode: j.Inode, DeviceID: j.DeviceID, Size: j.Size,
		Content: j.Content, Subtree: j.Subtree, LinkTarget: j.LinkTarget, Rdev: j.Rdev, Links: j.Links}
	if j.NameRaw != nil {
		if j.Name != "" {
			return errors.New("both name and name_raw")
		}
		n.Name = string(j.NameRaw)
	}
	if j.LinkTargetRaw != nil {
		n.LinkTarget = string(j.LinkTargetRaw)
	}
	return nil
}

// Tree is one directory listing.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

// ValidName reports whether name may appear in a tree.
func ValidName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// Validate checks the rules of FORMAT.md section 8.
func (t *Tree) Validate() error {
	for i, n := range t.Nodes {
		if !ValidName(n.Name) {
			return fmt.Errorf("%w: name %q", ErrInvalidTree, n.Name)
		}
		if i > 0 && t.Nodes[i-1].Name >= n.Name {
			return fmt.Errorf("%w: names not sorted and unique at %q", ErrInvalidTree, n.Name)
		}
		switch n.Type {
		case TypeDir:
			if n.Subtree == nil {
				return fmt.Errorf("%w: directory %q without subtree", ErrInvalidTree, n.Name)
			}
		case TypeFile, TypeSymlink, TypeDev, TypeCharDev, TypeFifo, TypeSocket:
			if n.Subtree != nil {
				return fmt.Errorf("%w: %s %q with a subtree", ErrInvalidTree, n.Type, n.Name)
			}
		default:
			return fmt.Errorf("%w: %q has unknown type %q", ErrInvalidTree, n.Name, n.Type)
		}
		if n.Type != TypeFile && len(n.Content) > 0 {
			return fmt.Errorf("%w: %s %q with content", ErrInvalidTree, n.Type, n.Name)
		}
	}
	return nil
}

// Encode returns the canonical bytes of t after validating it.
func (t *Tree) Encode() ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if t.Nodes == nil {
		t.Nodes = []Node{}
	}
	return json.Marshal(t)
}

// DecodeTree parses and validates a tree.
func DecodeTree(b []byte) (*Tree, error) {
	var t Tree
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidTree, err)
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) != 0 {
		return nil, fmt.Errorf("%w: trailing data", ErrInvalidTree)
	}

	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

// Find returns the node named name, or nil.
func (t *Tree) Find(name string) *Node {
	lo, hi := 0, len(t.Nodes)
	for lo < hi {
		m := (lo + hi) / 2
		if t.Nodes[m].Name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(t.Nodes) && t.Nodes[lo].Name == name {
		return &t.Nodes[lo]
	}
	return nil
}

// SaveTree stores t as a tree blob.
func SaveTree(ctx context.Context, r *repo.Repository, t *Tree) (id.ID, repo.SaveResult, error) {
	b, err := t.Encode()
	if err != nil {
		return id.ID{}, repo.SaveResult{}, err
	}
	res, err := r.SaveBlob(ctx, repo.TreeBlob, b)
	return res.ID, res, err
}

// LoadTree loads and validates a tree blob.
func LoadTree(ctx context.Context, r *repo.Repository, tid id.ID) (*Tree, error) {
	b, err := r.LoadBlob(ctx, repo.TreeBlob, tid, nil)
	if err != nil {
		return nil, err
	}
	t, err := DecodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", tid.Str(), err)
	}
	return t, nil
}
