// Package s3 stores a repository in a bucket of Amazon S3 or of any
// S3-compatible server (MinIO, Ceph RGW, versitygw, Wasabi, ...), through
// minio-go.
//
// # Locations
//
//	s3://bucket/prefix                   AWS (endpoint s3.amazonaws.com)
//	s3://s3.amazonaws.com/bucket/prefix  the same, endpoint spelled out
//	s3://host[:port]/bucket/prefix       an S3-compatible server, over HTTPS
//	s3+http://127.0.0.1:9000/bucket/p    plain HTTP, for a server on the same machine
//
// See ParseConfig for how an endpoint is told from a bucket. TLS is on unless
// the scheme is s3+http (there is no environment switch, so a location
// always says how it is reached).
//
// # Credentials and options
//
// Credentials come from Config (the config file) or, where it leaves them
// empty, from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
// The region comes from AWS_REGION or AWS_DEFAULT_REGION; the bucket lookup
// style from HOARD_S3_BUCKET_LOOKUP (auto, path or dns); the storage class of
// packs from HOARD_S3_STORAGE_CLASS. Instance roles and ~/.aws files are not
// read. The secret key and session token never appear in Location,
// Config.Redacted, errors or logs.
//
// # Layout
//
// Under PREFIX/ in the bucket, as in backends/local:
//
//	config, keys/NAME, data/XY/NAME (XY = first two characters of NAME),
//	index/NAME, snapshots/NAME, locks/NAME
//
// so a local repository copied to a bucket with any S3 tool opens as it is.
//
// # Semantics
//
// Save is one PutObject of the reader's known length, atomic by S3
// semantics; minio-go splits large objects into a multipart upload and
// aborts it on failure (an upload abandoned by a crash stays invisible and
// is removed by the bucket's lifecycle rule for incomplete uploads, if any).
// A reader that fails or yields a different number of bytes than its Length
// aborts the request, so no object appears. Load is a ranged GetObject.
// Remove stats first, since S3 deletes missing objects without an error.
// A connection on which nothing moves for Config.Timeout (default 60s) fails
// its request, so a stalled network never hangs a backup.
// Create makes the bucket (private: no ACL is ever sent) unless it exists
// and is ours. The client does not retry: that is backends/retry's job, which
// the errors tell what to do: a missing object or bucket matches
// backends.ErrNotExist, an unsatisfiable range backends.ErrRange, and denied
// access, bad keys or signatures and other 4xx answers backends.ErrPermanent;
// throttling (429, SlowDown), server errors (5xx) and network errors match
// neither.
package s3
