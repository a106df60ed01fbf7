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
