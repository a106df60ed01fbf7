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
PROFILE=${PROFILE:-dump} # the repositories' chunk size profile (init --chunk-profile)

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

# cpu_s: CPU seconds the whole machine has spent (user, nice, system, irq,
# softirq), from /proc/stat: what the tool, the server backend and hoard
# used together.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '/^cpu /{printf "%.2f", ($2+$3+$4+$7+$8)/hz}' /proc/stat; }
# timed NAME LOG CMD...: wall time of CMD into T_NAME, machine CPU into C_NAME.
# The server's dirty pages and the previous row's files are written out
# first, so that one row's writes do not slow the next.
timed() {
	local name=$1 log=$2 c0 c1 w
	shift 2
	psql -X -q -d "$PG_ADMIN" -c CHECKPOINT >/dev/null
	sync
	c0=$(cpu_s)
	w=$(wall "$log" "$@")
	c1=$(cpu_s)
	eval "T_$name+=($w)"
	eval "C_$name+=($(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}'))"
}

declare -a T_DUMP T_FIRST T_AGAIN T_ALONE T_DUMP2 T_DAY T_RESTORE T_PGRESTORE
declare -a C_DUMP C_FIRST C_AGAIN C_ALONE C_DUMP2 C_DAY C_RESTORE C_PGRESTORE
pg_dump -Fc -Z0 -d "$URL" -f "$WORK/db.pgdump"
for r in $(seq 1 "$REPS"); do
	timed DUMP "$WORK/pgdump.log" bash -c "pg_dump -Fc -Z0 -d '$URL' >/dev/null"
	repo=$WORK/repo-$r
	"$WORK/hoard" -r "$repo" init --s2k iterated --chunk-profile "$PROFILE" >/dev/null
	timed FIRST "$WORK/first-$r.log" "$WORK/hoard" -r "$repo" db backup "$URL"
	timed AGAIN "$WORK/again-$r.log" "$WORK/hoard" -r "$repo" db backup "$URL"
	# hoard alone on the same bytes, from a file: its own throughput.
	rm -rf "$WORK/alone"
	"$WORK/hoard" -r "$WORK/alone" init --s2k iterated --chunk-profile "$PROFILE" >/dev/null
	timed ALONE "$WORK/alone-$r.log" bash -c "'$WORK/hoard' -r '$WORK/alone' backup --stdin --stdin-filename db.pgdump < '$WORK/db.pgdump'"
	bench_log "run $r: pg_dump ${T_DUMP[-1]} s, hoard first ${T_FIRST[-1]} s, again ${T_AGAIN[-1]} s, alone from a file ${T_ALONE[-1]} s"
	# One day of changes (bench/db-lib.sh), then the daily backup.
	change_db "$DB" "$r"
	timed DUMP2 "$WORK/pgdump2.log" bash -c "pg_dump -Fc -Z0 -d '$URL' >/dev/null"
	timed DAY "$WORK/day-$r.log" "$WORK/hoard" -r "$repo" db backup "$URL"
	bench_log "run $r after a day of changes: pg_dump ${T_DUMP2[-1]} s, hoard ${T_DAY[-1]} s"
done
rm -rf "$WORK/alone"
pg_dump -Fc -Z0 -d "$URL" -f "$WORK/db.pgdump"
last=$WORK/repo-$REPS
for r in $(seq 1 "$REPS"); do
	psql -X -q -d "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $TGT WITH (FORCE)" -c "CREATE DATABASE $TGT" >/dev/null
	timed PGRESTORE "$WORK/pgrestore-$r.log" pg_restore --no-password --exit-on-error -d "$(pg_url "$TGT")" "$WORK/db.pgdump"
	psql -X -q -d "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $TGT WITH (FORCE)" >/dev/null
	timed RESTORE "$WORK/restore-$r.log" "$WORK/hoard" -r "$last" db restore "$DB" --into "$(pg_url "$TGT")"
	psql -X -q -d "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $TGT WITH (FORCE)" >/dev/null
	bench_log "run $r: pg_restore ${T_PGRESTORE[-1]} s, hoard db restore ${T_RESTORE[-1]} s"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
# row LABEL NAME BASE: a table row of T_NAME's median against BASE seconds.
row() {
	local -n t=T_$2 c=C_$2
	local m
	m=$(median "${t[@]}")
	echo "| $1 | $m | ${t[*]} | $(median "${c[@]}") | $(ratio "$m" "$3") |"
}
m_dump=$(median "${T_DUMP[@]}") m_dump2=$(median "${T_DUMP2[@]}") m_pgr=$(median "${T_PGRESTORE[@]}")
{
	echo "# PostgreSQL backup and restore: hoard vs the tools alone"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; $("$WORK/hoard" --version | head -1); $(pg_dump --version)."
	echo "Database $DB: $size MiB of pg_dump -Fc -Z0 at the start. Chunk profile $PROFILE. $REPS runs each; medians (all runs in brackets)."
	echo "Load average before: $load_before; after: $(load)."
	echo
	echo "| what | median s | runs s | machine CPU s | vs the tool alone |"
	echo "|---|---:|---|---:|---:|"
	row "pg_dump -Fc -Z0 > /dev/null" DUMP "$m_dump"
	row "hoard db backup, new repository" FIRST "$m_dump"
	row "hoard db backup again, nothing changed" AGAIN "$m_dump"
	row "hoard backup --stdin < the dump file (no pg_dump running)" ALONE "$m_dump"
	row "pg_dump -Fc -Z0 > /dev/null, after a day of changes (~1 %)" DUMP2 "$m_dump2"
	row "hoard db backup, after a day of changes" DAY "$m_dump2"
	row "pg_restore -d NEW db.pgdump (local file)" PGRESTORE "$m_pgr"
	row "hoard db restore --into NEW" RESTORE "$m_pgr"
	echo
	echo "hoard db backup runs pg_dump itself (and psql once, for the server version); its time includes the dump."
	echo "Machine CPU s is what every process on the machine used during the row (the server backend, pg_dump, hoard,"
	echo "and anything else running), out of $(nproc) x wall available."
	echo "hoard db restore creates the database under a temporary name, runs pg_restore reading the snapshot, and renames it."
} | tee "$OUT"
