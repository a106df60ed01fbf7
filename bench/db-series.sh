#!/usr/bin/env bash
# A daily series: a PostgreSQL database of about SIZE_MB MiB of dump,
# changed by about 1 % a day (mostly appended rows, some updates) over DAYS
# days, backed up every day by hoard (hoard db backup URL) into a repository
# of the large chunk profile (init --chunk-profile large, restic's sizes)
# and one of the dump profile, hoard init's default (init
# --chunk-profile dump), and by restic (pg_dump -Fc -Z0 | restic backup
# --stdin). Prints the bytes each adds to its repository per day, and
# (CHUNKSTAT=1) the new bytes before compression for several chunk size
# profiles. See bench/README.md.
#
#   bash bench/db-series.sh                     # 1 GiB, 7 days (~20 min)
#   SIZE_MB=64 DAYS=3 bash bench/db-series.sh   # quick
#
# Needs the local PostgreSQL (scripts/test-services.sh), Go and restic.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/db-lib.sh
. "$here/db-lib.sh"
SIZE_MB=${SIZE_MB:-1024}
DAYS=${DAYS:-7}
CHUNKSTAT=${CHUNKSTAT:-0}
KEEP=${KEEP:-0}
OUT=${OUT:-$here/db-series-results.md}
DB=${DB:-hoard_bench_series}

for t in go psql pg_dump restic du awk; do command -v "$t" >/dev/null || bench_die "$t not found"; done
bash "$root/scripts/test-services.sh"

WORK=$(mktemp -d /tmp/hoard-db-series.XXXXXX)
cleanup() {
	if [ "$KEEP" = 1 ]; then bench_log "kept $WORK and database $DB"; else
		rm -rf "$WORK"
		psql -X -q -d "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT
(cd "$root" && go build -o "$WORK/hoard" ./cmd/hoard)
[ "$CHUNKSTAT" = 1 ] && (cd "$root" && go build -o "$WORK/chunkstat" bench/chunkstat.go)
mkdir -p "$WORK/cs-state"

printf 'bench\n' >"$WORK/pass"
export HOARD_PASSWORD_FILE=$WORK/pass RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$WORK/restic-cache
unset HOARD_REPOSITORY HOARD_CONFIG DATABASE_URL 2>/dev/null || true
HREPO=$WORK/repo-hoard DREPO=$WORK/repo-hoard-dump RREPO=$WORK/repo-restic
"$WORK/hoard" -r "$HREPO" init --s2k iterated --chunk-profile large >/dev/null
"$WORK/hoard" -r "$DREPO" init --s2k iterated --chunk-profile dump >/dev/null
restic -r "$RREPO" init --repository-version 2 >/dev/null 2>&1

make_db "$DB" "$SIZE_MB"
URL=$(pg_url "$DB")

rows=()
for day in $(seq 0 "$DAYS"); do
	[ "$day" -gt 0 ] && { bench_log "day $day: changing the database"; change_db "$DB" "$day"; }
	size=$(dump_mb "$DB")
	hb=$(du -sb "$HREPO" | cut -f1)
	ht=$(wall "$WORK/hoard-$day.log" "$WORK/hoard" -r "$HREPO" db backup "$URL")
	ha=$(du -sb "$HREPO" | cut -f1)
	db=$(du -sb "$DREPO" | cut -f1)
	dt=$(wall "$WORK/hoard-dump-$day.log" "$WORK/hoard" -r "$DREPO" db backup "$URL")
	da=$(du -sb "$DREPO" | cut -f1)
	rb=$(du -sb "$RREPO" | cut -f1)
	rt=$(wall "$WORK/restic-$day.log" bash -c "set -o pipefail; pg_dump -Fc -Z0 -d '$URL' | restic -r '$RREPO' backup --stdin --stdin-filename db.pgdump")
	ra=$(du -sb "$RREPO" | cut -f1)
	cs=""
	if [ "$CHUNKSTAT" = 1 ]; then
		pg_dump -Fc -Z0 -d "$URL" | "$WORK/chunkstat" -state "$WORK/cs-state" >"$WORK/chunkstat-$day.txt"
		cs=$(awk '/^profile/ {printf "%s%.1f", sep, $(NF-2)/1048576; sep=" / "}' "$WORK/chunkstat-$day.txt")
	fi
	row=$(awk -v d="$day" -v s="$size" -v hb="$hb" -v ha="$ha" -v db="$db" -v da="$da" -v rb="$rb" -v ra="$ra" -v ht="$ht" -v dt="$dt" -v rt="$rt" -v cs="$cs" \
		'BEGIN{printf "| %d | %s | %.1f | %.1f | %.1f | %.2f | %s | %s | %s | %s |", d, s, (ha-hb)/1048576, (da-db)/1048576, (ra-rb)/1048576, (da-db)/((ra-rb)>0?(ra-rb):1), ht, dt, rt, cs}')
	bench_log "$row"
	rows+=("$row")
done

{
	echo "# Daily database series: hoard vs restic"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; $("$WORK/hoard" --version | head -1); $(restic version | head -1); $(pg_dump --version)."
	echo "Database: ~${SIZE_MB} MiB of pg_dump -Fc -Z0 on day 0; each day +0.8 % event rows appended, 0.2 % updated (among the newest"
	echo "twentieth) and 100 anywhere, 0.5 % of users updated and 0.1 % added, 100 orders deleted, then VACUUM ANALYZE."
	echo
	echo "| day | dump MiB | hoard added MiB (--chunk-profile large, ~1 MiB) | hoard added MiB (--chunk-profile dump, ~128 KiB) | restic added MiB | hoard dump profile / restic | hoard s | hoard dump profile s | restic s | new MiB before compression, chunk averages 1M / 512K / 256K / 128K / 64K (CHUNKSTAT=1) |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "Final repository size: hoard $(du -sb "$HREPO" | awk '{printf "%.1f", $1/1048576}') MiB (dump profile $(du -sb "$DREPO" | awk '{printf "%.1f", $1/1048576}') MiB), restic $(du -sb "$RREPO" | awk '{printf "%.1f", $1/1048576}') MiB."
	echo "Added = growth of the repository directory (du -sb). All compress (hoard zstd; restic v2 auto). Times include pg_dump (each tool runs its own)."
} | tee "$OUT"
