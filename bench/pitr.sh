#!/usr/bin/env bash
# WAL archiving and point-in-time recovery figures (docs/pitr.md): a scratch
# PostgreSQL cluster on a loopback port (never the machine's main server)
# runs pgbench for SECONDS seconds while it archives with `hoard wal push`
# into a repository on a tmpfs. Then, on the segments it produced:
#   - hoard wal push per segment, sequentially (latency, segments/s),
#     against cp to a local folder (with and without fsync) and gzip | gpg;
#   - repository bytes per GiB of WAL;
#   - archive lag at the end of the pgbench run;
#   - the bytes a second base backup adds (unchanged relation files dedup);
#   - restore time of the base backup plus the archived segments (--to-end).
#
#   sudo bash bench/pitr.sh                  # SECONDS=30 SCALE=20
#
# Runs as root (the cluster and hoard run as the postgres user). Needs the
# PostgreSQL 15 server binaries, gpg and Go.
set -euo pipefail
SECONDS_RUN=${SECONDS_RUN:-30}
SCALE=${SCALE:-20}
BIN=${PG_BINDIR:-$(pg_config --bindir)}
HERE=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/hoard-pitr-bench-XXXXXX)
mount -t tmpfs -o size=3g tmpfs "$W"
PORT=$((55400 + RANDOM % 100))
cleanup() {
	runuser -u postgres -- "$BIN/pg_ctl" -D "$W/data" -m immediate -w stop >/dev/null 2>&1 || true
	runuser -u postgres -- "$BIN/pg_ctl" -D "$W/restored" -m immediate -w stop >/dev/null 2>&1 || true
	GNUPGHOME="$W/gnupg" gpgconf --kill gpg-agent 2>/dev/null || true
	sleep 1
	umount "$W" && rmdir "$W"
}
trap cleanup EXIT
log() { printf '%s [pitr-bench] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
ms() { date +%s%3N; }

(cd "$HERE" && go build -o "$W/hoard" ./cmd/hoard)
echo "bench passphrase" >"$W/pw"
mkdir "$W/segs" "$W/cp" "$W/gz"
chown -R postgres: "$W"
chmod 755 "$W"
P() { runuser -u postgres -- env -i PATH="$BIN:/usr/bin:/bin" HOME="$W" HOARD_REPOSITORY="$W/repo" HOARD_PASSWORD_FILE="$W/pw" "$@"; }
P "$W/hoard" init --s2k iterated >/dev/null

log "cluster on port $PORT, archive_command = hoard wal push"
P "$BIN/initdb" -D "$W/data" -A trust -U postgres --no-sync >/dev/null
cat >>"$W/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$W'
wal_level = replica
archive_mode = on
archive_command = 'cp %p $W/segs/%f && HOARD_REPOSITORY=$W/repo HOARD_PASSWORD_FILE=$W/pw $W/hoard wal push --db main %p'
max_wal_size = 1GB
EOF
P "$BIN/pg_ctl" -D "$W/data" -l "$W/log" -w start >/dev/null
PSQL() { P "$BIN/psql" -X -A -t -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"; }
P "$BIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -i -s "$SCALE" -q postgres >/dev/null 2>&1
printf '[databases.main]\nurl = "postgresql://postgres@127.0.0.1:%s/postgres"\nphysical = true\n' "$PORT" >"$W/hoard.toml"
chown postgres "$W/hoard.toml"
t0=$(ms)
P HOARD_CONFIG="$W/hoard.toml" "$W/hoard" db backup main >"$W/bb1.out" 2>&1
log "base backup 1: $(grep -E 'added' "$W/bb1.out") in $(($(ms) - t0)) ms"

log "pgbench for ${SECONDS_RUN}s (2 clients)"
lsn0=$(PSQL -c "SELECT pg_current_wal_lsn()")
P "$BIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -c 2 -T "$SECONDS_RUN" postgres >"$W/pgbench.out" 2>&1
lsn1=$(PSQL -c "SELECT pg_current_wal_lsn()")
gen=$(PSQL -c "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')")
lag=$(PSQL -c "SELECT pg_walfile_name(pg_current_wal_lsn()) || ' current, ' || coalesce(last_archived_wal, '-') || ' archived, ' || archived_count || ' archived, ' || failed_count || ' failed' FROM pg_stat_archiver")
log "pgbench: $(grep -E '^tps' "$W/pgbench.out" | head -1); WAL generated $((gen / 1048576)) MiB ($((gen / 1048576 / SECONDS_RUN)) MiB/s); archiver: $lag"
PSQL -c "SELECT pg_switch_wal()" >/dev/null
sleep 1
until [ "$(PSQL -c "SELECT last_archived_wal >= pg_walfile_name(pg_current_wal_lsn() - 1) FROM pg_stat_archiver")" = t ]; do sleep 0.5; done
t0=$(ms)
P HOARD_CONFIG="$W/hoard.toml" "$W/hoard" db backup main >"$W/bb2.out" 2>&1
log "base backup 2 after pgbench: $(grep -E 'added' "$W/bb2.out") in $(($(ms) - t0)) ms"

segs=($(ls "$W"/segs | grep -E '^[0-9A-F]{24}$' | sed "s|^|$W/segs/|"))
n=${#segs[@]}
walbytes=$((n * 16777216))
repo_bytes=$(du -sb "$W/repo/data" | cut -f1)
log "$n segments archived; repository data $((repo_bytes / 1048576)) MiB for $((walbytes / 1048576)) MiB of WAL and two base backups"

log "sequential push of the $n segments into a fresh repository (tmpfs)"
mkdir -p "$W/fresh" && chown postgres "$W/fresh"
PF() { runuser -u postgres -- env -i PATH="$BIN:/usr/bin:/bin" HOME="$W" HOARD_REPOSITORY="$W/fresh/repo" HOARD_PASSWORD_FILE="$W/pw" "$@"; }
PF "$W/hoard" init --s2k iterated >/dev/null
t0=$(ms)
for s in "${segs[@]}"; do PF "$W/hoard" wal push --db main "$s"; done
t=$(($(ms) - t0))
fresh=$(du -sb "$W/fresh/repo/data" | cut -f1)
log "hoard wal push: $((t / n)) ms per segment, $(echo "scale=1; $n * 1000 / $t" | bc) segments/s; $((fresh * 1024 / walbytes)) MiB stored per GiB of WAL"
t0=$(ms)
for s in "${segs[@]}"; do PF "$W/hoard" wal push --db main "$s"; done
t=$(($(ms) - t0))
log "hoard wal push again (already archived): $((t / n)) ms per segment"
t0=$(ms)
for s in "${segs[@]}"; do cp "$s" "$W/cp/"; done
t=$(($(ms) - t0))
log "cp: $((t * 1000 / n)) us per segment"
t0=$(ms)
for s in "${segs[@]}"; do dd if="$s" of="$W/cp/x" bs=1M conv=fsync status=none; done
t=$(($(ms) - t0))
log "cp + fsync (dd conv=fsync): $((t * 1000 / n)) us per segment"
export GNUPGHOME="$W/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'bench <b@example.com>' future-default default never 2>/dev/null
t0=$(ms)
for s in "${segs[@]}"; do gzip -c "$s" | gpg --batch --trust-model always -e -r b@example.com >"$W/gz/$(basename "$s").gz.gpg"; done
t=$(($(ms) - t0))
gz=$(du -sb "$W/gz" | cut -f1)
log "gzip | gpg -e: $((t / n)) ms per segment; $((gz * 1024 / walbytes)) MiB per GiB of WAL"

log "restore the first base backup and replay all $n segments (--to-end --start)"
t0=$(ms)
P HOARD_CONFIG="$W/hoard.toml" "$W/hoard" db restore main "$(P "$W/hoard" --json snapshots | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')" \
	--to-end --data-dir "$W/restored" --start --port $((PORT == 55499 ? 55400 : PORT + 1)) --pg-bindir "$BIN" >"$W/restore.out" 2>&1 || { cat "$W/restore.out"; exit 1; }
log "restore: $(($(ms) - t0)) ms; $(grep -E 'redo done' "$W/restore.out" | sed 's/.*LOG: *//')"
