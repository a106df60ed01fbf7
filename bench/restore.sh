#!/usr/bin/env bash
# Restore, dump, check --read-data and backups of hoard against restic,
# interleaved (hoard, restic, hoard, restic, ...) and repeated, on a tmpfs;
# medians per row. See bench/README.md.
#
#   bash bench/restore.sh                                    # 1 GiB stream, 15,000 files, 3 runs per row
#   STREAM_MB=200 MEDIA_FILES=3000 REPS=3 bash bench/restore.sh   # quick
#
# Environment: STREAM_MB (1024), MEDIA_FILES (15000), REPS (3), BACKUP_REPS
# (REPS; the stream backups, the slowest rows), SEED (1),
# RESTIC (restic-0.19 if installed, else restic), OUT (bench/restore-results.md),
# KEEP=1 (leave the tmpfs mounted with its data), TMPFS_SIZE (8g).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
STREAM_MB=${STREAM_MB:-1024}
MEDIA_FILES=${MEDIA_FILES:-15000}
REPS=${REPS:-3}
BACKUP_REPS=${BACKUP_REPS:-$REPS}
SEED=${SEED:-1}
KEEP=${KEEP:-0}
OUT=${OUT:-$here/restore-results.md}
TMPFS_SIZE=${TMPFS_SIZE:-8g}
if [ -z "${RESTIC:-}" ]; then
	RESTIC=restic
	[ -x /usr/local/bin/restic-0.19 ] && RESTIC=/usr/local/bin/restic-0.19
fi

log() { printf '%s [bench] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	printf '\n[bench] FAILED: %s\n' "$*" >&2
	exit 1
}
command -v "$RESTIC" >/dev/null || die "$RESTIC not found (set RESTIC)"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
[ "$(id -u)" = 0 ] || die "needs root to mount a tmpfs"

# Repositories, data and restore targets live on a tmpfs: a disk with online
# discard makes creating many files after deleting a tree many times slower
# for any program, which would swamp what is measured.
WORK=$(mktemp -d /tmp/hoard-restore-bench.XXXXXX)
mount -t tmpfs -o "size=$TMPFS_SIZE" tmpfs "$WORK"
cleanup() {
	if [ "$KEEP" = 1 ]; then
		log "kept $WORK (umount it when done)"
	else
		cd /
		umount "$WORK" && rmdir "$WORK"
	fi
}
trap cleanup EXIT
mkdir -p "$WORK/log" "$WORK/out"
log "work dir $WORK (tmpfs)"

(cd "$root" && go build -o "$WORK/hoard" ./cmd/hoard)
hoard_version=$("$WORK/hoard" --version 2>&1 | head -1)
restic_version=$("$RESTIC" version 2>&1 | head -1)
log "$hoard_version; $restic_version"

(cd "$root" && go run bench/gen.go bench/series.go stream -mb "$STREAM_MB" -seed "$SEED" \
	-day1 "$WORK/day1.sql" -day2 "$WORK/day2.sql") 2>&1 | tee "$WORK/log/gen-stream.txt" >&2
(cd "$root" && go run bench/gen.go bench/series.go media -files "$MEDIA_FILES" -seed "$((SEED + 1))" \
	-out "$WORK/media") 2>&1 | tee "$WORK/log/gen-media.txt" >&2

printf 'hoard benchmark passphrase\n' >"$WORK/hoard-pass"
export HOARD_PASSWORD_FILE=$WORK/hoard-pass
export RESTIC_PASSWORD='restic benchmark passphrase'
export RESTIC_CACHE_DIR=$WORK/restic-cache
unset HOARD_REPOSITORY HOARD_PASSWORD_COMMAND RESTIC_REPOSITORY RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND 2>/dev/null || true
HREPO=$WORK/repo-hoard
RREPO=$WORK/repo-restic

declare -A SAMPLES
ROWS=()
addrow() { [[ " ${ROWS[*]-} " == *" $1 "* ]] || ROWS+=("$1"); }

# run ROW TOOL STDIN STDOUT CMD...: one timed run; keeps "wall cpu rssMiB".
run() {
	local row=$1 tool=$2 in=$3 out=$4
	shift 4
	local tf=$WORK/log/time rc=0
	(cd "$WORK" && /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" <"$in" >"$out" 2>"$WORK/log/last.err") || rc=$?
	[ "$rc" = 0 ] || {
		tail -n 20 "$WORK/log/last.err" >&2
		die "$row: $tool exited $rc: $*"
	}
	local s
	s=$(awk '{printf "%s %.2f %.0f", $1, $2+$3, $4/1024}' "$tf")
	SAMPLES[$row,$tool]="${SAMPLES[$row,$tool]-}$s;"
	addrow "$row"
	log "$row: $tool: wall/cpu/rss $s (load $(cut -d' ' -f1 /proc/loadavg))"
}
H() { run "$1" hoard "$2" "$3" "$WORK/hoard" -r "$HREPO" "${@:4}"; }
R() { run "$1" restic "$2" "$3" "$RESTIC" -r "$RREPO" "${@:4}"; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# Backups: each run into new repositories (a second backup of the same data
# into one repository would find it all stored).
for rep in $(seq "$BACKUP_REPS"); do
	rm -rf "$HREPO" "$RREPO"
	"$WORK/hoard" -r "$HREPO" init --s2k iterated >"$WORK/log/init.txt" 2>&1 || die "hoard init"
	"$RESTIC" -r "$RREPO" init --repository-version 2 >"$WORK/log/init.txt" 2>&1 || die "restic init"
	H "first backup (stream day 1)" "$WORK/day1.sql" /dev/null backup --stdin --stdin-filename dump.sql
	R "first backup (stream day 1)" "$WORK/day1.sql" /dev/null backup --stdin --stdin-filename dump.sql
	H "daily backup (stream day 2)" "$WORK/day2.sql" /dev/null backup --stdin --stdin-filename dump.sql
	R "daily backup (stream day 2)" "$WORK/day2.sql" /dev/null backup --stdin --stdin-filename dump.sql
done

for rep in $(seq "$REPS"); do
	H "stream dump to a file (day 2)" /dev/null "$WORK/out/dump.hoard" dump latest dump.sql
	R "stream dump to a file (day 2)" /dev/null "$WORK/out/dump.restic" dump latest dump.sql
	cmp "$WORK/day2.sql" "$WORK/out/dump.hoard" || die "hoard dump differs"
	cmp "$WORK/day2.sql" "$WORK/out/dump.restic" || die "restic dump differs"
	rm -f "$WORK"/out/dump.*
done

# The media tree is backed up as "media" from $WORK, restored as TARGET/media.
run "media backup" hoard /dev/null /dev/null "$WORK/hoard" -r "$HREPO" backup media
run "media backup" restic /dev/null /dev/null "$RESTIC" -r "$RREPO" backup media
for rep in $(seq "$REPS"); do
	H "media restore ($MEDIA_FILES files)" /dev/null /dev/null restore latest --target "$WORK/out/h"
	R "media restore ($MEDIA_FILES files)" /dev/null /dev/null restore latest --target "$WORK/out/r"
	for t in h r; do
		diff -r "$WORK/media" "$WORK/out/$t/media" >&2 || die "media restore ($t) differs"
		n=$(find "$WORK/out/$t/media" -type f | wc -l)
		[ "$n" = "$MEDIA_FILES" ] || die "media restore ($t): $n files"
	done
	rm -rf "$WORK/out/h" "$WORK/out/r"
done

for rep in $(seq "$REPS"); do
	H "check --read-data" /dev/null /dev/null check --read-data
	R "check --read-data" /dev/null /dev/null check --read-data
done

# ---- table ----

# stat SAMPLES FIELD: median of field (1 wall, 2 cpu) or max (3 rss).
stat() {
	tr ';' '\n' <<<"$1" | awk -v f="$2" 'NF { v[n++] = $f }
		END { if (f == 3) { m = 0; for (i = 0; i < n; i++) if (v[i] + 0 > m) m = v[i] + 0; print m; exit }
		      asort(v); if (n % 2) print v[(n + 1) / 2]; else printf "%.2f\n", (v[n / 2] + v[n / 2 + 1]) / 2 }'
}
{
	echo "# hoard vs restic: restores, check, backups (interleaved, medians)"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, tmpfs; $hoard_version ($(cd "$root" && git describe --always --dirty 2>/dev/null || echo '?')); $restic_version."
	echo "Data (seed $SEED): stream day 1 $(du -m --apparent-size "$WORK/day1.sql" | cut -f1) MiB, day 2 $(du -m --apparent-size "$WORK/day2.sql" | cut -f1) MiB; media $MEDIA_FILES files, $(du -sm --apparent-size "$WORK/media" | cut -f1) MiB."
	echo "$REPS runs per row, hoard and restic alternating; wall and CPU are medians, RSS the largest run."
	echo
	echo "| row | hoard wall s | restic wall s | restic/hoard (speed-up) | hoard CPU s | restic CPU s | hoard peak RSS MiB | restic peak RSS MiB |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	for r in "${ROWS[@]}"; do
		hs=${SAMPLES[$r,hoard]} rs=${SAMPLES[$r,restic]}
		hw=$(stat "$hs" 1) rw=$(stat "$rs" 1)
		echo "| $r | $hw | $rw | $(awk -v a="$rw" -v b="$hw" 'BEGIN{printf "%.2f", a/b}') | $(stat "$hs" 2) | $(stat "$rs" 2) | $(stat "$hs" 3) | $(stat "$rs" 3) |"
	done
	echo
	echo "Load average (1/5/15 min) before: $load_start; after: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "Raw runs (wall cpu rss;...):"
	for r in "${ROWS[@]}"; do echo "- $r: hoard ${SAMPLES[$r,hoard]} restic ${SAMPLES[$r,restic]}"; done
} >"$OUT"
echo
cat "$OUT"
