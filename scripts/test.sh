#!/usr/bin/env bash
# The test command of README.md: start what the tests talk to (the local
# PostgreSQL and MariaDB, an OpenSSH and a vsftpd server on loopback; all
# idempotent), then run every Go test. Extra arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
for s in scripts/test-services.sh scripts/test-servers.sh; do
	if [ -f "$s" ]; then
		bash "$s"
	fi
done
go test "$@" ./...
