#!/usr/bin/env bash
# Benchmark hoard against restic on the same data; see bench/README.md.
#
#   bash bench/run.sh                                  # full: 1 GiB stream, 20,000 files
#   STREAM_MB=64 MEDIA_FILES=2000 bash bench/run.sh    # quick
#
# Environment: STREAM_MB (1024), MEDIA_FILES (20000), SEED (1), BENCH_DIR (a new
# temp dir under /tmp), KEEP=1 (keep BENCH_DIR), OUT (bench/results.md).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
STREAM_MB=${STREAM_MB:-1024}
MEDIA_FILES=${MEDIA_FILES:-20000}
SEED=${SEED:-1}
KEEP=${KEEP:-0}
OUT=${OUT:-$here/results.md}

log() { printf '%s [bench] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	printf '\n[bench] FAILED: %s\n' "$*" >&2
	exit 1
}

# ---- tools ----

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
	if [ "$apt_updated" = 0 ]; then
		as_root apt-get update -qq
		apt_updated=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v restic >/dev/null || { log "installing restic"; apt_install restic; }
[ -x /usr/bin/time ] || { log "installing time"; apt_install time; }
for t in go du cmp diff awk; do command -v "$t" >/dev/null || die "$t not found"; done

# ---- work dir ----

if [ -n "${BENCH_DIR:-}" ]; then
	WORK=$BENCH_DIR
	mkdir -p "$WORK"
	[ -z "$(ls -A "$WORK")" ] || die "BENCH_DIR $WORK is not empty"
else
	WORK=$(mktemp -d /tmp/hoard-bench.XXXXXX)
fi
WORK=$(cd "$WORK" && pwd)
cleanup() {
	if [ "$KEEP" = 1 ]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
mkdir -p "$WORK/log" "$WORK/out"
log "work dir $WORK"

log "building hoard"
(cd "$root" && go build -o "$WORK/hoard" ./cmd/hoard)
hoard_version=$("$WORK/hoard" --version 2>&1 | head -1)
restic_version=$(restic version 2>&1 | head -1)
log "$hoard_version; $restic_version"
echo "$restic_version"

# ---- data ----

log "generating a ${STREAM_MB} MiB stream (day 1 and day 2)"
(cd "$root" && go run bench/gen.go bench/series.go stream -mb "$STREAM_MB" -seed "$SEED" \
	-day1 "$WORK/day1.sql" -day2 "$WORK/day2.sql") 2>&1 | tee "$WORK/log/gen-stream.txt" >&2
log "generating a media tree of $MEDIA_FILES files"
(cd "$root" && go run bench/gen.go bench/series.go media -files "$MEDIA_FILES" -seed "$((SEED + 1))" \
	-out "$WORK/media") 2>&1 | tee "$WORK/log/gen-media.txt" >&2
day1_bytes=$(stat -c %s "$WORK/day1.sql")
day2_bytes=$(stat -c %s "$WORK/day2.sql")
media_bytes=$(du -sb --apparent-size "$WORK/media" | cut -f1)

# ---- repositories ----

printf 'hoard benchmark passphrase\n' >"$WORK/hoard-pass"
export HOARD_PASSWORD_FILE=$WORK/hoard-pass
export RESTIC_PASSWORD='restic benchmark passphrase'
export RESTIC_CACHE_DIR=$WORK/restic-cache
unset HOARD_REPOSITORY HOARD_PASSWORD_COMMAND RESTIC_REPOSITORY RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND 2>/dev/null || true
HREPO=$WORK/repo-hoard
RREPO=$WORK/repo-restic
log "init repositories"
"$WORK/hoard" -r "$HREPO" init --s2k iterated >"$WORK/log/init-hoard.txt" 2>&1 ||
	{ cat "$WORK/log/init-hoard.txt" >&2; die "hoard init"; }
restic -r "$RREPO" init --repository-version 2 >"$WORK/log/init-restic.txt" 2>&1 ||
	{ cat "$WORK/log/init-restic.txt" >&2; die "restic init"; }

# ---- measuring ----

declare -A WALL CPU RSS ADDED
ROWS=()

# measure ROW TOOL STDIN STDOUT CMD... runs CMD (a function or program) in
# $WORK with the given standard input and output, under /usr/bin/time.
measure() {
	local row=$1 tool=$2 in=$3 out=$4
	shift 4
	local repo=$HREPO
	[ "$tool" = restic ] && repo=$RREPO
	local errf=$WORK/log/$row-$tool.err tf=$WORK/log/$row-$tool.time
	local before after rc=0
	before=$(du -sb "$repo" | cut -f1)
	log "$row: $tool: $*"
	(cd "$WORK" && /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" <"$in" >"$out" 2>"$errf") || rc=$?
	if [ "$rc" != 0 ]; then
		{
			echo "--- stderr of $tool ($errf):"
			tail -n 40 "$errf"
			[ "$out" = /dev/null ] || [[ "$out" == "$WORK/out/"* ]] || { echo "--- stdout:"; tail -n 20 "$out"; }
			echo "--- time: $(cat "$tf")"
		} >&2
		die "$row: $tool exited $rc: $*"
	fi
	after=$(du -sb "$repo" | cut -f1)
	local wall user sys rss
	read -r wall user sys rss <"$tf"
	WALL[$row,$tool]=$wall
	CPU[$row,$tool]=$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')
	RSS[$row,$tool]=$(awk -v k="$rss" 'BEGIN{printf "%.0f", k/1024}')
	ADDED[$row,$tool]=$(awk -v a="$after" -v b="$before" 'BEGIN{printf "%.1f", (a-b)/1048576}')
	log "$row: $tool: wall ${wall}s cpu ${CPU[$row,$tool]}s rss ${RSS[$row,$tool]}MB added ${ADDED[$row,$tool]}MB"
}

# both ROW STDIN STDOUT-PREFIX ARGS...: the same command line for both tools.
# STDOUT-PREFIX "-" means a log file; otherwise output goes to PREFIX.TOOL.
both() {
	local row=$1 in=$2 outp=$3
	shift 3
	ROWS+=("$row")
	local out
	for tool in hoard restic; do
		if [ "$outp" = - ]; then out=$WORK/log/$row-$tool.out; else out=$outp.$tool; fi
		if [ "$tool" = hoard ]; then measure "$row" hoard "$in" "$out" "$WORK/hoard" -r "$HREPO" "$@"; else
			measure "$row" restic "$in" "$out" restic -r "$RREPO" "$@"; fi
	done
}

same_file() { # same_file WANT GOT WHAT
	cmp "$1" "$2" >&2 || die "$3: $2 differs from $1"
	log "$3: byte-identical"
}

# ---- rows ----

load_start=$(cut -d' ' -f1-3 /proc/loadavg)

both "stream day 1 backup" "$WORK/day1.sql" - backup --stdin --stdin-filename dump.sql
both "stream day 2 backup" "$WORK/day2.sql" - backup --stdin --stdin-filename dump.sql
both "stream dump (day 2)" /dev/null "$WORK/out/dump.sql" dump latest dump.sql
for tool in hoard restic; do same_file "$WORK/day2.sql" "$WORK/out/dump.sql.$tool" "$tool dump"; done
rm -f "$WORK"/out/dump.sql.*
ROWS+=("stream restore (day 2)")
measure "stream restore (day 2)" hoard /dev/null "$WORK/log/restore-stream-hoard.out" \
	"$WORK/hoard" -r "$HREPO" restore latest --target "$WORK/out/stream-hoard"
measure "stream restore (day 2)" restic /dev/null "$WORK/log/restore-stream-restic.out" \
	restic -r "$RREPO" restore latest --target "$WORK/out/stream-restic"
for tool in hoard restic; do same_file "$WORK/day2.sql" "$WORK/out/stream-$tool/dump.sql" "$tool restore of the stream"; done
rm -rf "$WORK"/out/stream-*

# The media tree is backed up as the relative path "media" from $WORK, so that
# both tools restore it as TARGET/media.
both "media first backup" /dev/null - backup media
both "media unchanged re-run" /dev/null - backup media
ROWS+=("media restore")
measure "media restore" hoard /dev/null "$WORK/log/restore-media-hoard.out" \
	"$WORK/hoard" -r "$HREPO" restore latest --target "$WORK/out/media-hoard"
measure "media restore" restic /dev/null "$WORK/log/restore-media-restic.out" \
	restic -r "$RREPO" restore latest --target "$WORK/out/media-restic"
for tool in hoard restic; do
	got=$WORK/out/media-$tool/media
	[ -d "$got" ] || { find "$WORK/out/media-$tool" -maxdepth 3 >&2; die "$tool restore: no $got"; }
	diff -r "$WORK/media" "$got" >&2 || die "$tool restore of the media tree differs from the original"
	n=$(find "$got" -type f | wc -l)
	[ "$n" = "$MEDIA_FILES" ] || die "$tool restore: $n files, want $MEDIA_FILES"
	log "$tool restore of the media tree: identical ($n files)"
done
rm -rf "$WORK"/out/media-*

# ---- table ----

mb() { awk -v b="$1" 'BEGIN{printf "%.1f", b/1048576}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (b > 0) printf "%.2f", a/b; else print "-"}'; }
hoard_total=$(du -sb "$HREPO" | cut -f1)
restic_total=$(du -sb "$RREPO" | cut -f1)
{
	echo "# hoard vs restic"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM."
	echo "$hoard_version ($(cd "$root" && git describe --always --dirty 2>/dev/null || echo '?')); $restic_version."
	echo "Data (seed $SEED; MB = MiB): stream day 1 $(mb "$day1_bytes") MB, day 2 $(mb "$day2_bytes") MB"
	echo "($(grep -o '[0-9]* updated.*' "$WORK/log/gen-stream.txt" | sed 's/ (/; /; s/)$//')); media $MEDIA_FILES files, $(mb "$media_bytes") MB."
	echo
	echo "| row | hoard wall s | restic wall s | hoard/restic | hoard CPU s | restic CPU s | hoard RSS MB | restic RSS MB | hoard added MB | restic added MB |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for r in "${ROWS[@]}"; do
		echo "| $r | ${WALL[$r,hoard]} | ${WALL[$r,restic]} | $(ratio "${WALL[$r,hoard]}" "${WALL[$r,restic]}") | ${CPU[$r,hoard]} | ${CPU[$r,restic]} | ${RSS[$r,hoard]} | ${RSS[$r,restic]} | ${ADDED[$r,hoard]} | ${ADDED[$r,restic]} |"
	done
	echo
	echo "Repository size at the end: hoard $(mb "$hoard_total") MB, restic $(mb "$restic_total") MB (hoard/restic $(ratio "$hoard_total" "$restic_total"))."
	echo "Load average (1/5/15 min) before the rows: $load_start; after: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "Rows ran one after another, hoard first; the data was in the page cache for both tools (no cache drop)."
	echo "Wall and CPU times on a shared machine are noisy; compare ratios across runs, not single figures."
} >"$OUT"
echo
cat "$OUT"
log "table written to $OUT"
