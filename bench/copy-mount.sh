#!/usr/bin/env bash
# Figures for hoard copy and hoard mount, on the same data in one run:
#   copy: a local-to-local copy of a repository vs the backup that made it;
#   mount: time to the first byte and sequential read of a large file
#   through the FUSE mount vs hoard dump of the same file.
# Needs root (tmpfs, FUSE) and fuse3. SIZE_MB (default 1024) sets the file.
#
#   bash bench/copy-mount.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1024}
work=$(mktemp -d /tmp/hoard-copymount.XXXXXX)
mount -t tmpfs -o size=$((SIZE_MB * 5 + 512))m tmpfs "$work"
trap 'fusermount3 -u -z "$work/mnt" 2>/dev/null || true; umount "$work" 2>/dev/null || true; rmdir "$work"' EXIT
go build -o "$work/hoard" ./cmd/hoard
go run bench/gen.go bench/series.go stream -mb "$SIZE_MB" -seed 3 -day1 "$work/dump.sql" -day2 /dev/null > /dev/null
echo pw > "$work/pw"
export HOARD_PASSWORD_FILE="$work/pw" HOARD_CACHE_DIR="$work/cache"
h() { "$work/hoard" "$@"; }
secs() { local s=$EPOCHREALTIME; "$@" > /dev/null; echo "$EPOCHREALTIME - $s" | bc; }
h -r "$work/src" init --s2k iterated > /dev/null
h -r "$work/dst" init --s2k iterated > /dev/null
t_backup=$(secs h -r "$work/src" backup --stdin --stdin-filename dump.sql < "$work/dump.sql")
t_copy=$(secs env HOARD_TO_REPOSITORY="$work/dst" HOARD_TO_PASSWORD_FILE="$work/pw" "$work/hoard" -r "$work/src" copy)
t_copy2=$(secs env HOARD_TO_REPOSITORY="$work/dst" HOARD_TO_PASSWORD_FILE="$work/pw" "$work/hoard" -r "$work/src" copy)
t_dump=$(secs h -r "$work/src" dump latest dump.sql)
mkdir "$work/mnt"
h -r "$work/src" mount "$work/mnt" 2> /dev/null &
pid=$!
for _ in $(seq 1 200); do grep -q " $work/mnt " /proc/mounts && break; sleep 0.05; done
f="$work/mnt/snapshots/latest/dump.sql"
t_first=$(secs dd if="$f" of=/dev/null bs=4096 count=1 status=none)
fusermount3 -u "$work/mnt"; wait $pid || true
h -r "$work/src" mount "$work/mnt" 2> /dev/null &
pid=$!
for _ in $(seq 1 200); do grep -q " $work/mnt " /proc/mounts && break; sleep 0.05; done
t_read=$(secs cat "$f")
cmp "$f" "$work/dump.sql"
kill -TERM $pid; wait $pid || true
mbps() { echo "scale=0; $SIZE_MB / $1" | bc; }
cat <<TABLE
| row ($SIZE_MB MiB SQL dump, tmpfs, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)) | seconds | MiB/s |
|---|---:|---:|
| backup --stdin into a new repository | $t_backup | $(mbps "$t_backup") |
| copy to a new local repository | $t_copy | $(mbps "$t_copy") |
| copy again (nothing to send) | $t_copy2 | |
| dump latest dump.sql > /dev/null | $t_dump | $(mbps "$t_dump") |
| mount: first 4 KiB of the file (mount warm) | $t_first | |
| mount: cat the whole file | $t_read | $(mbps "$t_read") |
TABLE
