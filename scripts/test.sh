#!/usr/bin/env bash
# The test command of README.md: start what the tests talk to (the local
# PostgreSQL and MariaDB, an OpenSSH and a vsftpd server on loopback; all
# idempotent), then run every Go test. Extra arguments go to `go test`.
# The explicit timeout is above what the tests take on 2 cores (go test's
# default, 10 minutes per package, is too close for cmd/hoard); the slowest
# sweeps are left to .ci/run (HOARD_TEST_SWEEPS).
set -euo pipefail
cd "$(dirname "$0")/.."
for s in scripts/test-services.sh scripts/test-servers.sh; do
	if [ -f "$s" ]; then
		bash "$s"
	fi
done
go test -timeout 30m "$@" ./...
