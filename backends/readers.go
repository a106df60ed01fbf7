package backends

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ExactReader yields n bytes of r and ends with io.ErrUnexpectedEOF when r
// ends early: the Load contract for a range that runs past a short file.
func ExactReader(r io.Reader, n int64) io.Reader { return &exactReader{r: r, left: n} }

type exactReader struct {
	r    io.Reader
	left int64
}

func (r *exactReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.r.Read(p)
	r.left -= int64(n)
	if errors.Is(err, io.EOF) {
		if r.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		if n > 0 {
			err = nil
		}
	}
	return n, err
}

// ContextReader fails reads once ctx is done, so that long copies can be cancelled.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx: ctx, r: r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// ListConfig is List for the config file, for backends whose listing of a
// folder cannot name the single config file: it stats it and calls fn
// when it exists. prefix starts the message of a cancelled context.
func ListConfig(ctx context.Context, prefix string, stat func(context.Context, Handle) (FileInfo, error), fn func(FileInfo) error) error {
	fi, err := stat(ctx, Handle{Type: ConfigFile})
	if errors.Is(err, ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: list %s: %w", prefix, ConfigFile, err)
	}
	return fn(fi)
}

// SourceReader reads the data of a Save for a client library that may hide
// the reader's error or stop reading early: it counts the bytes it yields,
// stops with ctx's error once ctx is done, and keeps the first error other
// than io.EOF, so the backend can report the reader's own error as is.
type SourceReader struct {
	ctx  context.Context
	r    io.Reader
	size int64
	n    int64
	err  error
}

// NewSourceReader returns a SourceReader of r; size is the most it may
// yield, a hint for libraries that send several writes at once.
func NewSourceReader(ctx context.Context, r io.Reader, size int64) *SourceReader {
	return &SourceReader{ctx: ctx, r: r, size: size}
}

// Read implements io.Reader.
func (s *SourceReader) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return 0, err
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && s.err == nil {
		s.err = err
	}
	return n, err
}

// Size returns the most the reader may yield (pkg/sftp reads it to
// pipeline writes).
func (s *SourceReader) Size() int64 { return s.size }

// N returns the number of bytes read so far.
func (s *SourceReader) N() int64 { return s.n }

// Err returns the first error other than io.EOF that a Read returned
// (ctx's error included), or nil.
func (s *SourceReader) Err() error { return s.err }
