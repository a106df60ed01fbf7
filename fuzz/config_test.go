package fuzz

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/mem"
	"github.com/hoard-backup/hoard/repo"
	"github.com/hoard-backup/hoard/repo/crypto"
	"github.com/hoard-backup/hoard/repo/id"
)

// newMemRepo creates a repository in memory with the fast S2K.
func newMemRepo(tb testing.TB) (*repo.Repository, *mem.Backend) {
	tb.Helper()
	be := mem.New()
	r, err := repo.Init(context.Background(), be, repo.InitOptions{Options: repo.Options{Passphrase: []byte("x")}, S2K: crypto.S2KIterated})
	if err != nil {
		tb.Fatal(err)
	}
	return r, be
}

// FuzzConfig feeds repo.DecodeOuterConfig arbitrary bytes. An accepted config
// is a hoard repository config of a format version this hoard reads, with a valid ID, and
// marshalling it and decoding again gives the same value.
func FuzzConfig(f *testing.F) {
	_, be := newMemRepo(f)
	raw, err := backends.LoadAll(context.Background(), be, backends.Handle{Type: backends.ConfigFile})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		f.Fatal(err)
	}
	for _, change := range []func(){
		func() { m["version"] = repo.FormatVersion + 1 },
		func() { m["version"] = 1; m["hoard"] = "restic" },
		func() { m["hoard"] = "repository"; m["id"] = "00" },
	} {
		change()
		b, err := json.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		oc, err := repo.DecodeOuterConfig(data)
		if err != nil {
			if !errors.Is(err, repo.ErrInvalidData) && !errors.Is(err, repo.ErrVersion) {
				t.Fatalf("error is neither repo.ErrInvalidData nor repo.ErrVersion: %v", err)
			}
			return
		}
		if oc.Hoard != "repository" || oc.Version < repo.MinFormatVersion || oc.Version > repo.FormatVersion {
			t.Fatalf("accepted hoard %q version %d", oc.Hoard, oc.Version)
		}
		if _, err := id.Parse(oc.ID); err != nil {
			t.Fatalf("accepted repository ID %q", oc.ID)
		}
		if f, err := crypto.ParseFingerprint(oc.Fingerprint); oc.Fingerprint != "" && (err != nil || f != oc.Fingerprint) {
			t.Fatalf("accepted data key fingerprint %q", oc.Fingerprint)
		}
		b, err := json.Marshal(oc)
		if err != nil {
			t.Fatal(err)
		}
		oc2, err := repo.DecodeOuterConfig(b)
		if err != nil {
			t.Fatalf("marshalled config rejected: %v\n%s", err, b)
		}
		if *oc != *oc2 {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", *oc, *oc2)
		}
	})
}
