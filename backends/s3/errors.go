package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/hoard-backup/hoard/backends"
)

// fail adds the operation to err and translates it: a missing object or
// bucket becomes backends.ErrNotExist, an unsatisfiable range
// backends.ErrRange, and errors that retrying cannot fix (bad credentials,
// access denied, bad requests) also match backends.ErrPermanent. Server
// errors (5xx), throttling (429, SlowDown) and network errors stay plain, so
// that backends/retry retries them. A cancelled ctx wins over the error it
// caused. The secret key and session token are scrubbed from the message.
func (b *Backend) fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("s3: %s: %w", op, cerr)
	}
	var sentinel error
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		sentinel = classify(resp)
	}
	msg := err.Error()
	scrubbed := msg
	for _, s := range b.secrets {
		scrubbed = strings.ReplaceAll(scrubbed, s, "***")
	}
	switch {
	case scrubbed != msg && sentinel != nil:
		return fmt.Errorf("s3: %s: %s: %w", op, scrubbed, sentinel)
	case scrubbed != msg:
		return fmt.Errorf("s3: %s: %s", op, scrubbed)
	case sentinel != nil:
		return fmt.Errorf("s3: %s: %w: %w", op, err, sentinel)
	}
	return fmt.Errorf("s3: %s: %w", op, err)
}

// classify returns the sentinel an S3 error response stands for, or nil for
// errors worth retrying.
func classify(resp minio.ErrorResponse) error {
	switch resp.Code {
	case "NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchUpload":
		return backends.ErrNotExist
	case "InvalidRange":
		return backends.ErrRange
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
		"TokenRefreshRequired", "AllAccessDisabled", "AccountProblem", "InvalidBucketName", "NotImplemented":
		return backends.ErrPermanent
	case "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "OperationAborted",
		"RequestTimeTooSkewed", "XMinioServerNotInitialized":
		return nil
	}
	switch s := resp.StatusCode; {
	case s == http.StatusNotFound:
		return backends.ErrNotExist
	case s == http.StatusRequestedRangeNotSatisfiable:
		return backends.ErrRange
	case s == http.StatusTooManyRequests, s == http.StatusConflict, s == http.StatusRequestTimeout, s >= 500:
		return nil
	case s >= 400:
		return backends.ErrPermanent
	case s == 0 && resp.Code != "":
		// Refused by the client before sending (invalid argument, too large).
		return backends.ErrPermanent
	}
	return nil
}

// lengthReader yields exactly left bytes of r, for an upload of a known
// length. If r ends early, yields more than left bytes or fails, it returns
// an error instead of the final bytes, so the request is aborted rather
// than completed, and keeps the error in err.
type lengthReader struct {
	r    io.Reader
	left int64
	err  error
}

func (l *lengthReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if l.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		l.err = err
		return 0, err
	case l.left == 0:
		// All promised bytes are read: r must end here.
		var one [1]byte
		m, perr := io.ReadFull(l.r, one[:])
		if m > 0 {
			l.err = errors.New("reader yields more bytes than its Length")
			return 0, l.err
		}
		if perr != nil && !errors.Is(perr, io.EOF) {
			l.err = perr
			return 0, perr
		}
		return n, nil
	case errors.Is(err, io.EOF):
		l.err = fmt.Errorf("reader ended %d bytes before its Length: %w", l.left, io.ErrUnexpectedEOF)
		return 0, l.err
	}
	return n, nil
}
