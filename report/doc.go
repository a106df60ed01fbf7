// Package report tells the world how a hoard command went, so that a
// backup that fails at 3 a.m. is noticed: a Prometheus textfile (for
// node_exporter's textfile collector), pings to a monitoring URL in the
// conventions of healthchecks.io (start, success, fail with the log's
// tail), and a command run on failure.
//
// It knows nothing of repositories: the CLI feeds it a Run (what ran, when,
// how it ended, and the figures of its summary). Monitoring must never make
// a backup fail: every function here returns an error for the caller to
// warn about, and the HTTP requests have short timeouts.
package report
