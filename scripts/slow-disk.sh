#!/bin/sh
# A slow disk for the benchmarks (bench/README.md, "A slow-disk test bed"):
# an ext4 filesystem in a loop device, mounted with data=journal so every
# byte written goes to the journal first and every fsync flushes it twice.
# The loop device reads and writes its image file with direct I/O, so the
# page cache of the image does not hide the real disk beneath.
#
#   sudo scripts/slow-disk.sh up [size]   # default 24G (sparse); prints the mount point
#   MEDIAGIT_BENCH_WORK=$(pwd)/bench-work/slow node bench/engine.ts
#   sudo scripts/slow-disk.sh down
#
# Measured on a machine of this kind (2026-12-04): direct writes 355 MB/s
# (1.3-1.4 GB/s on the disk beneath), buffered write + sync 366 MB/s, a
# 2 MiB write + fsync 6.5 ms (1.7-1.9 ms beneath).
set -eu
cd "$(dirname "$0")/.."
work=$(pwd)/bench-work
image=$work/slow-disk.img
mountpoint=$work/slow

case "${1:-}" in
up)
  size=${2:-24G}
  if mountpoint -q "$mountpoint"; then
    echo "$mountpoint"
    exit 0
  fi
  mkdir -p "$work" "$mountpoint"
  rm -f "$image"
  truncate -s "$size" "$image"
  mkfs.ext4 -q -F -J size=64 "$image"
  device=$(losetup --find --show --direct-io=on "$image")
  mount -o data=journal "$device" "$mountpoint"
  echo "$mountpoint"
  ;;
down)
  if mountpoint -q "$mountpoint"; then
    device=$(findmnt -n -o SOURCE "$mountpoint")
    umount "$mountpoint"
    losetup -d "$device"
  fi
  rm -f "$image"
  rmdir "$mountpoint" 2>/dev/null || true
  ;;
*)
  echo "usage: $0 up [size] | down" >&2
  exit 2
  ;;
esac
