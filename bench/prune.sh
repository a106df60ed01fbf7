#!/usr/bin/env bash
# Prune benchmark: hoard against restic on the same history (not a go test).
#
#   bash bench/prune.sh                      # 20,000 files, 10 snapshots: ~101,000 data blobs
#   FILES=2000 GENS=4 bash bench/prune.sh    # quick
#
# A fixed set of FILES small files (1-3 KB of random bytes: one blob each,
# incompressible) is backed up GENS times; between backups CHANGE (45 %) of
# the files, chosen at random, get new content. So old packs end up partly
# used. Then half the snapshots are forgotten (keep-last GENS/2) and each
# tool prunes with its default --max-unused 5%. Measured with /usr/bin/time:
# wall time and peak RSS of the prune; bytes rewritten = the sizes of the
# pack files present after the prune that were not there before (new packs
# written by repacking); plus repository size before and after.
# Environment: FILES (20000), GENS (10), CHANGE (45), SEED (1), BENCH_DIR, KEEP=1.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
FILES=${FILES:-20000}
GENS=${GENS:-10}
CHANGE=${CHANGE:-45}
SEED=${SEED:-1}
KEEP=${KEEP:-0}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/hoard-prune-bench.XXXXXX)}
[ "$KEEP" = 1 ] || trap 'rm -rf "$BENCH_DIR"' EXIT
log() { printf '%s [prune-bench] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cd "$BENCH_DIR"
go build -C "$root" -o "$BENCH_DIR/hoard" ./cmd/hoard
echo "bench password" >pw
export HOARD_REPOSITORY=$BENCH_DIR/hrepo HOARD_PASSWORD_FILE=$BENCH_DIR/pw
export RESTIC_REPOSITORY=$BENCH_DIR/rrepo RESTIC_PASSWORD_FILE=$BENCH_DIR/pw
./hoard init --s2k iterated >/dev/null
restic init -q >/dev/null

# gen writes the files of generation $1 (all of them for 0, else CHANGE %).
gen() {
	python3 - "$BENCH_DIR/src" "$FILES" "$1" "$CHANGE" "$SEED" <<'PY'
import os, random, sys
d, n, g, change, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(seed * 1000003 + g)
idx = range(n) if g == 0 else rng.sample(range(n), n * change // 100)
for i in idx:
    p = os.path.join(d, "%03d" % (i % 200), "f%06d" % i)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(rng.randbytes(1024 + rng.randrange(2048)))
PY
}
for g in $(seq 0 $((GENS - 1))); do
	gen "$g"
	./hoard backup src >/dev/null
	restic backup -q src >/dev/null
	log "generation $g backed up"
done
blobs=$(./hoard --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["blobs"])')
log "hoard: $blobs blobs in the snapshots"
keep=$((GENS / 2))
./hoard forget --keep-last "$keep" >/dev/null
restic forget -q --keep-last "$keep" >/dev/null

packs() { find "$1/data" -type f -printf '%f %s\n' | sort; }
size() { du -sb "$1" | cut -f1; }
# measure TOOL REPO CMD...: prints "wall_s rss_kb rewritten_bytes before after"
measure() {
	local repo=$1
	shift
	packs "$repo" >before.txt
	local b
	b=$(size "$repo")
	/usr/bin/time -f '%e %M' -o time.txt "$@" >prune-out.txt 2>&1 || { cat prune-out.txt >&2; exit 1; }
	packs "$repo" >after.txt
	local rewritten
	rewritten=$(join -v2 before.txt after.txt | awk '{s+=$2} END {print s+0}')
	echo "$(cat time.txt) $rewritten $b $(size "$repo")"
}
sync
read -r hw hr hx hb ha < <(measure hrepo ./hoard prune)
cp prune-out.txt hoard-prune.txt
sync
read -r rw rr rx rb ra < <(measure rrepo restic prune)
cp prune-out.txt restic-prune.txt

./hoard check --read-data >/dev/null
restic check -q >/dev/null

mb() { awk -v b="$1" 'BEGIN {printf "%.1f MB", b/1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "-"; else printf "%.2f", a/b}'; }
cat <<EOT
## prune after forgetting half the snapshots ($FILES files, $GENS snapshots, $CHANGE % changed per snapshot, $blobs hoard blobs)

restic $(restic version | awk '{print $2}'), $(nproc) CPUs; hoard $(git -C "$root" rev-parse --short HEAD)+worktree

| | hoard | restic | hoard/restic |
|---|---|---|---|
| wall time | ${hw} s | ${rw} s | $(ratio "$hw" "$rw") |
| peak RSS | $((hr / 1024)) MiB | $((rr / 1024)) MiB | $(ratio "$hr" "$rr") |
| bytes rewritten (new packs) | $(mb "$hx") | $(mb "$rx") | $(ratio "$hx" "$rx") |
| repository before | $(mb "$hb") | $(mb "$rb") | $(ratio "$hb" "$rb") |
| repository after | $(mb "$ha") | $(mb "$ra") | $(ratio "$ha" "$ra") |

hoard prune said:
\`\`\`
$(cat hoard-prune.txt)
\`\`\`
restic prune said:
\`\`\`
$(tail -n 15 restic-prune.txt)
\`\`\`
EOT
