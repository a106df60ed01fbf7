#!/usr/bin/env bash
# Make sure the database servers the tests use are up and accept
# connections: PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and
# MariaDB on 127.0.0.1:3306 (root, empty password). Idempotent: a server
# that already answers is left alone. On a machine without the servers
# (Debian), it installs them first (needs root).
#
#   bash scripts/test-services.sh
set -euo pipefail

log() { printf '[test-services] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
install() {
	if [ "$apt_updated" = 0 ]; then
		as_root apt-get update -qq
		apt_updated=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# wait_for NAME CMD...: retry CMD for up to 60 s.
wait_for() {
	local name=$1
	shift
	for _ in $(seq 1 120); do
		if "$@" >/dev/null 2>&1; then
			log "$name is up"
			return 0
		fi
		sleep 0.5
	done
	log "$name did not come up"
	return 1
}

pg_up() { psql -X -w -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atc 'SELECT 1' | grep -qx 1; }
my_up() { mariadb --connect-timeout=2 -h 127.0.0.1 -P 3306 -u root -N -B -e 'SELECT 1' | grep -qx 1; }

# ---- tools ----
command -v sqlite3 >/dev/null || { log "installing sqlite3"; install sqlite3; }
command -v fusermount3 >/dev/null || { log "installing fuse3 (hoard mount's tests)"; install fuse3; }
fresh_pg=0
if ! command -v pg_ctlcluster >/dev/null || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
	log "installing postgresql"
	install postgresql postgresql-client
	fresh_pg=1
fi
fresh_my=0
if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
	log "installing mariadb-server"
	install mariadb-server mariadb-client
	fresh_my=1
fi

# ---- PostgreSQL ----
if ! pg_up; then
	version=$(ls /etc/postgresql | sort -V | tail -n1)
	if [ "$fresh_pg" = 1 ]; then
		# The tests connect as postgres over TCP without a password.
		hba=/etc/postgresql/$version/main/pg_hba.conf
		as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
	fi
	log "starting PostgreSQL $version"
	as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
	wait_for PostgreSQL pg_up
else
	log "PostgreSQL is up"
fi

# ---- MariaDB ----
if ! my_up; then
	log "starting MariaDB"
	as_root mkdir -p /run/mysqld
	as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
	as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
	if [ "$fresh_my" = 1 ]; then
		wait_for "MariaDB (socket)" as_root mariadb -e 'SELECT 1'
		# root from 127.0.0.1 with an empty password, as on the test machines.
		as_root mariadb -e "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
	fi
	wait_for MariaDB my_up
else
	log "MariaDB is up"
fi
