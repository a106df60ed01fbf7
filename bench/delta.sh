#!/usr/bin/env bash
# Delta blobs on a daily web-application dump series: seven days of a
# plain-SQL dump (bench/series.go: appends, recent edits, deletes, and a
# last_login-style column updated on a few thousand random rows of every
# table each day), each backed up with --stdin by this hoard, by the hoard
# of BASE_REF (today's, without deltas) and by restic, each into its own
# repository on a tmpfs. Prints a markdown table: bytes each adds to its
# repository per day, the whole-file `zstd --patch-from` delta as the
# floor, backup times and peak memory, the restore of day 7 against the
# old hoard's restore of its day 7 (a full dump), and a media tree's blobs
# per GB. See bench/README.md.
#
#   bash bench/delta.sh                    # 300 MiB a day (~15 min, 4 GB tmpfs)
#   SIZE_MB=32 bash bench/delta.sh         # quick
#
# Needs root (mount), Go, zstd, GNU time and restic (RESTIC, default
# /usr/local/bin/restic-0.19, else restic on PATH).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
SIZE_MB=${SIZE_MB:-300}
DAYS=${DAYS:-7}
BASE_REF=${BASE_REF:-5860966}
MEDIA_FILES=${MEDIA_FILES:-1000}
LARGE_FILES=${LARGE_FILES:-24}
OUT=${OUT:-$here/delta-results.md}
RESTIC=${RESTIC:-/usr/local/bin/restic-0.19}
[ -x "$RESTIC" ] || RESTIC=$(command -v restic)

log() { printf '%s [delta-bench] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	printf '\n[delta-bench] FAILED: %s\n' "$*" >&2
	exit 1
}
for t in go zstd "$RESTIC" /usr/bin/time du git; do command -v "$t" >/dev/null || die "$t not found"; done

WORK=$(mktemp -d /tmp/hoard-delta-bench.XXXXXX)
mount -t tmpfs -o size=4g tmpfs "$WORK"
cleanup() {
	cd /
	umount "$WORK" || true
	rmdir "$WORK" || true
}
trap cleanup EXIT
mkdir -p "$WORK/log" "$WORK/bin" "$WORK/base-src"
log "building hoard and the hoard of $BASE_REF"
(cd "$root" && go build -o "$WORK/bin/hoard" ./cmd/hoard && go build -o "$WORK/bin/gen" bench/gen.go bench/series.go)
git -C "$root" archive "$BASE_REF" | tar -x -C "$WORK/base-src"
(cd "$WORK/base-src" && go build -o "$WORK/bin/hoard-base" ./cmd/hoard)
rm -rf "$WORK/base-src"

export HOARD_PASSWORD_FILE=$WORK/pw RESTIC_PASSWORD='restic benchmark passphrase' RESTIC_CACHE_DIR=$WORK/restic-cache HOARD_CACHE_DIR=$WORK/hoard-cache
echo 'hoard benchmark passphrase' >"$HOARD_PASSWORD_FILE"
H=$WORK/repo-hoard HB=$WORK/repo-base R=$WORK/repo-restic
"$WORK/bin/hoard" -r "$H" init --s2k iterated >"$WORK/log/init" 2>&1
"$WORK/bin/hoard-base" -r "$HB" init --s2k iterated >>"$WORK/log/init" 2>&1
"$RESTIC" -r "$R" init --repository-version 2 >>"$WORK/log/init" 2>&1
restic_version=$("$RESTIC" version | head -1)

# timed NAME CMD...: runs CMD (stdin as given) under GNU time; writes
# "seconds maxrss_kib cpu_seconds" to $WORK/log/NAME.time.
timed() {
	local name=$1
	shift
	/usr/bin/time -f '%e %M %U %S' -o "$WORK/log/$name.time" "$@" >"$WORK/log/$name.out" 2>"$WORK/log/$name.err" ||
		{ cat "$WORK/log/$name.err" >&2; die "$name"; }
}
size() { du -sb "$1" | cut -f1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
rows=()
for d in $(seq 1 "$DAYS"); do
	log "day $d: generating"
	"$WORK/bin/gen" series -mb "$SIZE_MB" -day "$d" -out "$WORK/day$d.sql" 2>>"$WORK/log/gen"
	floor=-
	if [ "$d" -gt 1 ]; then
		floor=$(zstd -q -1 --long=29 --patch-from="$WORK/day$((d - 1)).sql" -c "$WORK/day$d.sql" | wc -c)
		rm -f "$WORK/day$((d - 1)).sql"
	fi
	full=$(zstd -q -1 -c "$WORK/day$d.sql" | wc -c)
	line="| $d | $(mib "$(size "$WORK/day$d.sql")")"
	for tool in hoard base restic; do
		case $tool in
		hoard) repo=$H cmd=("$WORK/bin/hoard" -r "$H" backup --stdin --stdin-filename dump.sql) ;;
		base) repo=$HB cmd=("$WORK/bin/hoard-base" -r "$HB" backup --stdin --stdin-filename dump.sql) ;;
		restic) repo=$R cmd=("$RESTIC" -r "$R" backup --stdin --stdin-filename dump.sql --host bench) ;;
		esac
		before=$(size "$repo")
		log "day $d: $tool"
		timed "day$d-$tool" "${cmd[@]}" <"$WORK/day$d.sql"
		added=$(($(size "$repo") - before))
		read -r secs rss usr sys <"$WORK/log/day$d-$tool.time"
		cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
		eval "added_$tool=$added secs_$tool=$secs rss_$tool=$rss cpu_$tool=$cpu"
	done
	ratio=$(awk -v a="$added_hoard" -v b="$added_restic" 'BEGIN { printf "%.3f", a / b }')
	[ "$floor" = - ] || floor=$(mib "$floor")
	line+=" | $(mib "$added_hoard") | $(mib "$added_base") | $(mib "$added_restic") | $floor | $(mib "$full") | $ratio"
	line+=" | $secs_hoard ($cpu_hoard) | $secs_base ($cpu_base) | $secs_restic ($cpu_restic) | $((rss_hoard / 1024)) | $((rss_base / 1024)) | $((rss_restic / 1024)) |"
	rows+=("$line")
done
last=$WORK/day$DAYS.sql

log "restores of day $DAYS"
mkdir -p "$WORK/out"
timed restore-hoard "$WORK/bin/hoard" -r "$H" restore latest --target "$WORK/out/hoard"
cmp "$last" "$WORK/out/hoard/dump.sql" || die "hoard restore differs"
rm -rf "$WORK/out/hoard"
timed restore-base "$WORK/bin/hoard-base" -r "$HB" restore latest --target "$WORK/out/base"
cmp "$last" "$WORK/out/base/dump.sql" || die "base hoard restore differs"
rm -rf "$WORK/out/base"
timed restore-restic "$RESTIC" -r "$R" restore latest --target "$WORK/out/restic"
rm -rf "$WORK/out/restic"
timed check-hoard "$WORK/bin/hoard" -r "$H" check --read-data
rm -f "$last"

log "media tree: blobs per GB"
"$WORK/bin/gen" media -files "$MEDIA_FILES" -seed 2 -out "$WORK/media" 2>>"$WORK/log/gen"
for i in $(seq 1 "$LARGE_FILES"); do head -c $(((4 + i % 13) << 20)) /dev/urandom >"$WORK/media/video$i.mp4"; done
media_bytes=$(size "$WORK/media")
blobs() { grep -o '"data_blobs_new": *[0-9]*' "$1" | grep -o '[0-9]*$'; }
"$WORK/bin/hoard" -r "$WORK/m1" init --s2k iterated >/dev/null 2>&1
# A media tree of the config file: new, so cut with its default, large.
printf '[media.uploads]\npaths = ["%s"]\n' "$WORK/media" >"$WORK/hoard.toml"
"$WORK/bin/hoard" -r "$WORK/m1" --config "$WORK/hoard.toml" --json run >"$WORK/log/media-hoard.json" 2>/dev/null
"$WORK/bin/hoard-base" -r "$WORK/m2" init --s2k iterated >/dev/null 2>&1
"$WORK/bin/hoard-base" -r "$WORK/m2" --json backup "$WORK/media" >"$WORK/log/media-base.json" 2>/dev/null
"$WORK/bin/hoard-base" -r "$WORK/m3" init --s2k iterated --chunk-profile large >/dev/null 2>&1
"$WORK/bin/hoard-base" -r "$WORK/m3" --json backup "$WORK/media" >"$WORK/log/media-base-large.json" 2>/dev/null
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
tm() { awk '{ printf "%s s (%.2f), %d MiB", $1, $3 + $4, $2 / 1024 }' "$WORK/log/$1.time"; }
perg() { awk -v n="$1" -v b="$media_bytes" 'BEGIN { printf "%.0f", n / (b / 1073741824) }'; }

{
	echo "# Delta blobs on a daily dump series: hoard vs the hoard of $BASE_REF vs restic"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, shared with other sessions (times are noisy; load average $load_start at the start, $load_end at the end); $restic_version;"
	echo "series: bench/series.go, ${SIZE_MB} MiB on day 1, $DAYS days; repositories and data on a tmpfs."
	echo "hoard: this tree (format version 2, delta blobs); base: hoard at $BASE_REF (no deltas); both \`init --s2k iterated\` (dump profile, ~128 KiB chunks)."
	echo "Added = growth of the repository folder (du -sb). Floor = \`zstd -1 --long=29 --patch-from=yesterday today\`; zstd -1 = the whole day compressed."
	echo
	echo "| day | dump MiB | hoard added MiB | base added MiB | restic added MiB | floor (patch-from) MiB | zstd -1 MiB | hoard / restic | hoard s (CPU s) | base s (CPU s) | restic s (CPU s) | hoard RSS MiB | base RSS MiB | restic RSS MiB |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "Restore of day $DAYS (a chain at its maximum depth for hoard; a full dump for base), wall s (CPU s), peak MiB:" \
		"hoard $(tm restore-hoard); base $(tm restore-base); restic $(tm restore-restic). hoard check --read-data: $(tm check-hoard)."
	echo
	echo "Final repositories: hoard $(mib "$(size "$H")") MiB, base $(mib "$(size "$HB")") MiB, restic $(mib "$(size "$R")") MiB."
	echo
	echo "Media tree ($MEDIA_FILES files of gen.go media plus $LARGE_FILES random files of 4-16 MiB, $(mib "$media_bytes") MiB), data blobs per GiB:" \
		"hoard (\`run\`, a new media tree: large profile) $(perg "$(blobs "$WORK/log/media-hoard.json")"), base (dump profile) $(perg "$(blobs "$WORK/log/media-base.json")")," \
		"base with \`init --chunk-profile large\` $(perg "$(blobs "$WORK/log/media-base-large.json")")."
} | tee "$OUT"
