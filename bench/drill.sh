#!/usr/bin/env bash
# What a restore drill costs next to the backup it proves: wall time and
# peak RSS of `hoard db backup` and `hoard db verify` on a web-app-like
# PostgreSQL database of about SIZE_MB MiB of dump (bench/db-lib.sh), with
# the tools alone and restic doing the same by hand as references. The
# repositories live on /dev/shm. Each row runs REPS times; medians are
# printed. See bench/README.md.
#
#   bash bench/drill.sh                     # 1 GiB, 3 runs each (~15 min)
#   SIZE_MB=256 REPS=1 bash bench/drill.sh  # quick
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/db-lib.sh
. "$here/db-lib.sh"
SIZE_MB=${SIZE_MB:-1024}
REPS=${REPS:-3}
KEEP=${KEEP:-0}
OUT=${OUT:-$here/drill-results.md}
DB=${DB:-hoard_bench_drill}
RESTIC=${RESTIC:-/usr/local/bin/restic-0.19}
SHM=${SHM:-/dev/shm}

for t in go psql pg_dump pg_restore awk jq "$RESTIC" /usr/bin/time; do command -v "$t" >/dev/null || bench_die "$t not found"; done
bash "$root/scripts/test-services.sh"
WORK=$(mktemp -d "$SHM/hoard-drill.XXXXXX")
SCRATCH=${DB}_restic_drill
TGT=${DB}_restored
dropdbs() {
	psql -X -q -d "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $SCRATCH WITH (FORCE)" -c "DROP DATABASE IF EXISTS $TGT WITH (FORCE)" >/dev/null 2>&1 || true
}
cleanup() {
	dropdbs
	if [ "$KEEP" = 1 ]; then bench_log "kept $WORK and database $DB"; else
		rm -rf "$WORK"
		psql -X -q -d "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT
(cd "$root" && go build -o "$WORK/hoard" ./cmd/hoard)
printf 'bench\n' >"$WORK/pass"
export HOARD_PASSWORD_FILE=$WORK/pass RESTIC_PASSWORD_FILE=$WORK/pass
unset HOARD_REPOSITORY HOARD_CONFIG DATABASE_URL RESTIC_REPOSITORY 2>/dev/null || true

if [ "$(psql -X -At -d "$PG_ADMIN" -c "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" = 1 ] && [ "${REUSE:-0}" = 1 ]; then
	bench_log "reusing database $DB"
else
	make_db "$DB" "$SIZE_MB"
fi
URL=$(pg_url "$DB")
size=$(dump_mb "$DB")
db_mb=$(psql -X -At -d "$PG_ADMIN" -c "SELECT pg_database_size('$DB') / 1048576")
tables=$(psql -X -At -d "$URL" -c "SELECT string_agg(quote_ident(tablename), ' ') FROM pg_tables WHERE schemaname = 'public'")
load() { cut -d' ' -f1-3 /proc/loadavg; }
load_before=$(load)

# timed NAME LOG CMD...: wall seconds of CMD into T_NAME, the peak RSS (MiB)
# of the largest process it waited for into M_NAME (/usr/bin/time: hoard, or
# a tool it ran such as pg_dump; the server backend is not counted), the load
# average at its start into L_NAME. The server's dirty pages and the last
# row's files are written out first, so that one row's writes do not slow
# the next.
timed() {
	local name=$1 log=$2
	shift 2
	psql -X -q -d "$PG_ADMIN" -c CHECKPOINT >/dev/null
	sync
	eval "L_$name+=(\"$(cut -d' ' -f1 /proc/loadavg)\")"
	/usr/bin/time -f '%e %M' -o "$log.time" "$@" >"$log" 2>&1 || { tail -n 20 "$log" >&2; bench_die "$*"; }
	read -r w kb <"$log.time"
	eval "T_$name+=($w)"
	eval "M_$name+=($(awk -v k="$kb" 'BEGIN{printf "%.0f", k/1024}'))"
}

# The hand-made drill with restic: a scratch database, restic dump piped
# into pg_restore, every table counted, the scratch database dropped.
cat >"$WORK/by-hand-drill.sh" <<EOF
set -euo pipefail
psql -X -q -v ON_ERROR_STOP=1 -d '$PG_ADMIN' -c 'DROP DATABASE IF EXISTS $SCRATCH WITH (FORCE)' -c 'CREATE DATABASE $SCRATCH'
'$RESTIC' -r "\$1" dump latest /db.pgdump | pg_restore --no-password --exit-on-error -d '$(pg_url "$SCRATCH")'
for t in $tables; do psql -X -At -v ON_ERROR_STOP=1 -d '$(pg_url "$SCRATCH")' -c "SELECT '\$t', count(*) FROM \$t"; done
psql -X -q -v ON_ERROR_STOP=1 -d '$PG_ADMIN' -c 'DROP DATABASE $SCRATCH WITH (FORCE)'
EOF

declare -a T_DUMP T_BACKUP T_VERIFY T_PGRESTORE T_RBACKUP T_RDRILL M_DUMP M_BACKUP M_VERIFY M_PGRESTORE M_RBACKUP M_RDRILL
declare -a L_DUMP L_BACKUP L_VERIFY L_PGRESTORE L_RBACKUP L_RDRILL V_RESTORE V_CHECK
pg_dump -Fc -Z0 -d "$URL" -f "$WORK/db.pgdump"
for r in $(seq 1 "$REPS"); do
	timed DUMP "$WORK/pgdump.log" bash -c "pg_dump -Fc -Z0 -d '$URL' >/dev/null"
	repo=$WORK/repo-$r
	rm -rf "$WORK"/repo-* "$WORK"/restic-*
	"$WORK/hoard" -r "$repo" init --s2k iterated >/dev/null
	timed BACKUP "$WORK/backup-$r.log" "$WORK/hoard" -r "$repo" db backup "$URL"
	timed VERIFY "$WORK/verify-$r.log" "$WORK/hoard" --json -r "$repo" db verify "$URL"
	# The drill's own split: restore into the scratch database, then checks and counts.
	V_RESTORE+=("$(jq -r '.restore_ns / 1e9 * 100 | round / 100' "$WORK/verify-$r.log")")
	V_CHECK+=("$(jq -r '.check_ns / 1e9 * 100 | round / 100' "$WORK/verify-$r.log")")
	[ "$(jq -r .passed "$WORK/verify-$r.log")" = true ] || bench_die "db verify did not pass: $(cat "$WORK/verify-$r.log")"
	dropdbs
	psql -X -q -d "$PG_ADMIN" -c "CREATE DATABASE $TGT" >/dev/null
	timed PGRESTORE "$WORK/pgrestore-$r.log" pg_restore --no-password --exit-on-error -d "$(pg_url "$TGT")" "$WORK/db.pgdump"
	dropdbs
	rrepo=$WORK/restic-$r
	"$RESTIC" -r "$rrepo" init >/dev/null
	timed RBACKUP "$WORK/rbackup-$r.log" "$RESTIC" -r "$rrepo" backup --no-scan --stdin-filename db.pgdump --stdin-from-command -- pg_dump -Fc -Z0 -d "$URL"
	timed RDRILL "$WORK/rdrill-$r.log" bash "$WORK/by-hand-drill.sh" "$rrepo"
	bench_log "run $r: pg_dump ${T_DUMP[-1]} s; hoard backup ${T_BACKUP[-1]} s ${M_BACKUP[-1]} MiB, verify ${T_VERIFY[-1]} s ${M_VERIFY[-1]} MiB (restore ${V_RESTORE[-1]} s, checks ${V_CHECK[-1]} s); restic backup ${T_RBACKUP[-1]} s, drill by hand ${T_RDRILL[-1]} s"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
# row LABEL NAME: a table row of NAME's medians and runs.
row() {
	local -n t=T_$2 m=M_$2 l=L_$2
	echo "| $1 | $(median "${t[@]}") | ${t[*]} | $(median "${m[@]}") | ${l[*]} |"
}
mb=$(median "${T_BACKUP[@]}") mv=$(median "${T_VERIFY[@]}") mrb=$(median "${T_RBACKUP[@]}") mrd=$(median "${T_RDRILL[@]}")
{
	echo "# Restore drill vs backup: hoard db verify and hoard db backup"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; $("$WORK/hoard" --version | head -1); $("$RESTIC" version | head -1); $(pg_dump --version)."
	echo "Database $DB: $size MiB of pg_dump -Fc -Z0, $db_mb MiB on the server (tables and indexes). Repositories on $SHM. $REPS runs each; medians (all runs in brackets)."
	echo "Load average before: $load_before; after: $(load)."
	echo
	echo "| what | median s | runs s | peak RSS MiB | load at start |"
	echo "|---|---:|---|---:|---|"
	row "pg_dump -Fc -Z0 > /dev/null" DUMP
	row "hoard db backup, new repository" BACKUP
	row "hoard db verify (restore drill)" VERIFY
	row "pg_restore -d NEW db.pgdump (local file)" PGRESTORE
	row "restic backup --stdin-from-command -- pg_dump -Fc -Z0" RBACKUP
	row "restic dump latest \| pg_restore -d NEW, count(*) of each table, drop" RDRILL
	echo
	echo "| ratio | median |"
	echo "|---|---:|"
	echo "| hoard drill / hoard backup | $(ratio "$mv" "$mb") |"
	echo "| restic by-hand drill / restic backup | $(ratio "$mrd" "$mrb") |"
	echo "| hoard backup / restic backup | $(ratio "$mb" "$mrb") |"
	echo "| hoard drill / restic by-hand drill | $(ratio "$mv" "$mrd") |"
	echo
	echo "hoard db verify's own split (--json restore_ns, check_ns), median: restore into the scratch database $(median "${V_RESTORE[@]}") s"
	echo "(runs ${V_RESTORE[*]}), engine checks and row counts $(median "${V_CHECK[@]}") s (runs ${V_CHECK[*]})."
	echo "The drill does more than the restic row: it runs pg_amcheck --heapallindexed where installed and compares each"
	echo "table's count with the live database's. Peak RSS is the largest process /usr/bin/time waited for (hoard, or"
	echo "pg_dump/pg_restore/restic); the PostgreSQL server's own backends are not counted."
} | tee "$OUT"
