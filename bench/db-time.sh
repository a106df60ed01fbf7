#!/usr/bin/env bash
# Wall times of backing up and restoring a PostgreSQL database of about
# SIZE_MB MiB of dump, against the tools alone: `hoard db backup` vs
# `pg_dump -Fc -Z0 > /dev/null`, and `hoard db restore` vs `pg_restore`
# from a local file. Each is run REPS times; medians are printed. See
# bench/README.md.
#
#   bash bench/db-time.sh                   # 1 GiB, 3 runs each (~15 min)
#   SIZE_MB=64 REPS=1 bash bench/db-time.sh # quick
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/db-lib.sh
. "$here/db-lib.sh"
SIZE_MB=${SIZE_MB:-1024}
REPS=${REPS:-3}
KEEP=${KEEP:-0}
OUT=${OUT:-$here/db-time-results.md}
DB=${DB:-hoard_bench_time}

for t in go psql pg_dump pg_restore awk; do command -v "$t" >/dev/null || bench_die "$t not found"; done
bash "$root/scripts/test-services.sh"
WORK=$(mktemp -d /tmp/hoard-db-time.XXXXXX)
TGT=${DB}_restored
cleanup() {
	psql -X -q -d "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $TGT WITH (FORCE)" >/dev/null 2>&1 || true
	if [ "$KEEP" = 1 ]; then bench_log "kept $WORK and database $DB"; else
		rm -rf "$WORK"
		psql -X -q -d "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT
(cd "$root" && go build -o "$WORK/hoard" ./cmd/hoard)
printf 'bench\n' >"$WORK/pass"
export HOARD_PASSWORD_FILE=$WORK/pass
unset HOARD_REPOSITORY HOARD_CONFIG DATABASE_URL 2>/dev/null || true

if [ "$(psql -X -At -d "$PG_ADMIN" -c "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" = 1 ] && [ "${REUSE:-0}" = 1 ]; then
	bench_log "reusing database $DB"
else
	make_db "$DB" "$SIZE_MB"
fi
URL=$(pg_url "$DB")
size=$(dump_mb "$DB")
load() { cat /proc/loadavg | cut -d' ' -f1-3; }
load_before=$(load)

declare -a T_DUMP T_FIRST T_AGAIN T_RESTORE T_PGRESTORE
for r in $(seq 1 "$REPS"); do
	T_DUMP+=("$(wall "$WORK/pgdump.log" bash -c "pg_dump -Fc -Z0 -d '$URL' >/dev/null")")
	repo=$WORK/repo-$r
	"$WORK/hoard" -r "$repo" init --s2k iterated >/dev/null
	T_FIRST+=("$(wall "$WORK/first-$r.log" "$WORK/hoard" -r "$repo" db backup "$URL")")
	T_AGAIN+=("$(wall "$WORK/again-$r.log" "$WORK/hoard" -r "$repo" db backup "$URL")")
	bench_log "run $r: pg_dump ${T_DUMP[-1]} s, hoard first ${T_FIRST[-1]} s, again ${T_AGAIN[-1]} s"
done
pg_dump -Fc -Z0 -d "$URL" -f "$WORK/db.pgdump"
for r in $(seq 1 "$REPS"); do
	psql -X -q -d "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $TGT WITH (FORCE)" -c "CREATE DATABASE $TGT" >/dev/null
	T_PGRESTORE+=("$(wall "$WORK/pgrestore-$r.log" pg_restore --no-password --exit-on-error -d "$(pg_url "$TGT")" "$WORK/db.pgdump")")
	psql -X -q -d "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $TGT WITH (FORCE)" >/dev/null
	T_RESTORE+=("$(wall "$WORK/restore-$r.log" "$WORK/hoard" -r "$WORK/repo-1" db restore "$DB" --into "$(pg_url "$TGT")")")
	psql -X -q -d "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $TGT WITH (FORCE)" >/dev/null
	bench_log "run $r: pg_restore ${T_PGRESTORE[-1]} s, hoard db restore ${T_RESTORE[-1]} s"
done

m_dump=$(median "${T_DUMP[@]}") m_first=$(median "${T_FIRST[@]}") m_again=$(median "${T_AGAIN[@]}")
m_pgr=$(median "${T_PGRESTORE[@]}") m_res=$(median "${T_RESTORE[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
{
	echo "# PostgreSQL backup and restore: hoard vs the tools alone"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; $("$WORK/hoard" --version | head -1); $(pg_dump --version)."
	echo "Database $DB: $size MiB of pg_dump -Fc -Z0. $REPS runs each; medians (all runs in brackets)."
	echo "Load average before: $load_before; after: $(load)."
	echo
	echo "| what | median s | runs s | vs the tool alone |"
	echo "|---|---:|---|---:|"
	echo "| pg_dump -Fc -Z0 > /dev/null | $m_dump | ${T_DUMP[*]} | 1.00 |"
	echo "| hoard db backup, new repository | $m_first | ${T_FIRST[*]} | $(ratio "$m_first" "$m_dump") |"
	echo "| hoard db backup again, nothing changed | $m_again | ${T_AGAIN[*]} | $(ratio "$m_again" "$m_dump") |"
	echo "| pg_restore -d NEW db.pgdump (local file) | $m_pgr | ${T_PGRESTORE[*]} | 1.00 |"
	echo "| hoard db restore --into NEW | $m_res | ${T_RESTORE[*]} | $(ratio "$m_res" "$m_pgr") |"
	echo
	echo "hoard db backup runs pg_dump itself (and psql once, for the server version); its time includes the dump."
	echo "hoard db restore creates the database under a temporary name, runs pg_restore reading the snapshot, and renames it."
} | tee "$OUT"
