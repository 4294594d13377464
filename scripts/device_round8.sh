#!/usr/bin/env bash
# Round 8 on the GPU machine: `--file-reads pread` (plain pread() on the reader threads) against the
# default mapping of a tmpfs store, alternating in the same call. Stages, run in the order given:
#   checks   test_loaders (the pread tests among them)
#   gpu      calibrate file:/dev/shm into the GPU, map and pread alternating, 3 calls each; mem once
#   host     calibrate file:/dev/shm into a host KV cache, map and pread alternating, 3 calls each
#   top      llama-3-8b 32K from file:/dev/shm with --file-reads pread, 400 Gbps and unlimited,
#            compute/io/cake/oracle (round 7's top32k/ is the same with the mapping)
#   oracle   the same points, pread and the mapping, with the oracle calibrated on the faster of two
#            Cake runs (0bd515e): its split at 400 Gbps came from one cold run before
# Here: BUILD_DIR=build-device PACK_TARGETS="cake-bench test_loaders" CARRY_DIR=.carry-r8 scripts/device_pack.sh
# There (device tool, carry [".carry-r8z"]):
#   tar xzf .carry-r8z/carry.tgz && OUT=$OUT bash .carry-r8/scripts/device_round8.sh STAGE...
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/device_lib.sh"
OUT=${OUT:-/tmp/cake-r8-out}
device_setup /tmp/cake-r8
CAL=$SHM/cal

checks() {
  run timeout 150 "$CARRY/bin/test_loaders"
}

gpu() {
  mkdir -p "$RES/gpu"
  run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source mem --repeat 2 --json-out "$RES/gpu/mem.json"
  for round in 1 2 3; do
    for reads in map pread; do
      run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source file --file-reads "$reads" --repeat 3 --no-fio \
        --json-out "$RES/gpu/file-$reads-$round.json"
    done
  done
  pack gpu
}

host() {
  mkdir -p "$RES/host"
  for round in 1 2 3; do
    for reads in map pread; do
      run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source file --target host --file-reads "$reads" --repeat 3 \
        --no-fio --json-out "$RES/host/host-$reads-$round.json"
    done
  done
  pack host
}

# llama-3-8b 32K from file:/dev/shm at 400 Gbps and unlimited with --file-reads $2, into $RES/$1.
points32k() {
  run timeout 200 "$B" run --quiet --suffix 128 --store "$SHM" --warmup 0 --verify token --out "$RES/$1" \
    --context 32k --mode compute,io,cake,oracle --source "file:$SHM" --file-reads "$2" --bandwidth 400gbps,unlimited \
    --repeat 3 --max-point-time 12
  rm -f "$RES/$1"/trace-*.json "$RES/$1"/timeline-*.svg
  pack "$1"
}

top() { points32k top32k-pread pread; }

oracle() {
  for reads in pread map; do points32k "oracle-$reads" "$reads"; done
}

for stage in "$@"; do
  case "$stage" in
    checks|gpu|host|top|oracle) "$stage" ;;
    *) echo "device_round8: unknown stage $stage"; status=1 ;;
  esac
done
rm -rf "$CAL"
exit $status
