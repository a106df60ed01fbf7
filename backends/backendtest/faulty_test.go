package backendtest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/backendtest"
	"github.com/hoard-backup/hoard/backends/mem"
)

// A Faulty without hooks is a transparent backend.
func TestFaultyPassesSuite(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		return &backendtest.Faulty{Backend: mem.New()}
	})
}

func TestFaultyHooks(t *testing.T) {
	ctx := context.Background()
	h := backends.Handle{Type: backends.PackFile, Name: "abcd"}
	data := bytes.Repeat([]byte("0123456789"), 100)
	errFlaky := errors.New("flaky")

	inner := mem.New()
	f := &backendtest.Faulty{
		Backend:    inner,
		FailSave:   backendtest.FailTimes(1, errFlaky),
		FailLoad:   backendtest.FailTimes(1, errFlaky),
		FailStat:   backendtest.FailTimes(1, errFlaky),
		FailRemove: backendtest.FailTimes(1, errFlaky),
		FailList:   func(backends.FileType) error { return errFlaky },
	}
	if err := f.Save(ctx, h, backends.NewByteReader(data)); !errors.Is(err, errFlaky) {
		t.Fatalf("first Save = %v, want injected error", err)
	}
	if _, err := inner.Stat(ctx, h); !errors.Is(err, backends.ErrNotExist) {
		t.Fatalf("failed Save reached the backend: Stat = %v", err)
	}
	if err := f.Save(ctx, h, backends.NewByteReader(data)); err != nil {
		t.Fatalf("second Save: %v", err)
	}
	if _, err := backends.LoadAll(ctx, f, h); !errors.Is(err, errFlaky) {
		t.Errorf("first Load = %v, want injected error", err)
	}
	if got, err := backends.LoadAll(ctx, f, h); err != nil || !bytes.Equal(got, data) {
		t.Errorf("second Load = %d bytes, %v", len(got), err)
	}
	if _, err := f.Stat(ctx, h); !errors.Is(err, errFlaky) {
		t.Errorf("first Stat = %v, want injected error", err)
	}
	if err := f.List(ctx, backends.PackFile, func(backends.FileInfo) error { return nil }); !errors.Is(err, errFlaky) {
		t.Errorf("List = %v, want injected error", err)
	}
	if err := f.Remove(ctx, h); !errors.Is(err, errFlaky) {
		t.Errorf("first Remove = %v, want injected error", err)
	}
	if err := f.Remove(ctx, h); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if f.Unwrap() != backends.Backend(inner) {
		t.Error("Unwrap does not return the wrapped backend")
	}
}

func TestFaultyCut(t *testing.T) {
	ctx := context.Background()
	h := backends.Handle{Type: backends.IndexFile, Name: "abcd"}
	data := bytes.Repeat([]byte("x"), 1000)
	inner := mem.New()
	f := &backendtest.Faulty{
		Backend: inner,
		CutSave: func(backends.Handle) int64 { return 100 },
		CutLoad: func(backends.Handle) int64 { return 10 },
	}
	if err := f.Save(ctx, h, backends.NewByteReader(data)); !errors.Is(err, backendtest.ErrInjected) {
		t.Fatalf("cut Save = %v, want ErrInjected", err)
	}
	if _, err := inner.Stat(ctx, h); !errors.Is(err, backends.ErrNotExist) {
		t.Fatalf("cut Save left a file: Stat = %v", err)
	}
	f.CutSave = nil
	if err := f.Save(ctx, h, backends.NewByteReader(data)); err != nil {
		t.Fatal(err)
	}
	var got []byte
	err := f.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		var err error
		got, err = io.ReadAll(rd)
		return err
	})
	if !errors.Is(err, backendtest.ErrInjected) || len(got) != 10 {
		t.Errorf("cut Load gave %d bytes, %v; want 10 bytes, ErrInjected", len(got), err)
	}
}
