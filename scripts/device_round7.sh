#!/usr/bin/env bash
# Round 7 on the GPU machine: the final code of round 7 checked there, and the streaming-store copy
# into a host KV cache measured at the H200 host's reader count. Stages, run in the order given:
#   checks   test_loaders, GpuEngine.*/MeetGuard*/Engine*
#   calib    calibrate mem and file:/dev/shm into the GPU (the staging path keeps cached stores:
#            round 6 read mem 0.945x and file 0.815-0.821x the pinned copy rate), 3 file calls
#   host     calibrate file:/dev/shm into a host KV cache (the path that now streams), 3 calls;
#            the plain pread reader beside it (the machine has no fio)
#   top      llama-3-8b 32K, 400 Gbps and unlimited, mem and file:/dev/shm, compute/io/cake/oracle
# Here: BUILD_DIR=build-device PACK_TARGETS="cake-bench test_loaders test_engine" CARRY_DIR=.carry-r7a \
#       scripts/device_pack.sh
# There (device tool, carry [".carry-r7a"]): OUT=$OUT bash .carry-r7a/scripts/device_round7.sh STAGE...
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/device_lib.sh"
OUT=${OUT:-/tmp/cake-r7-out}
device_setup /tmp/cake-r7
CAL=$SHM/cal

checks() {
  run timeout 150 "$CARRY/bin/test_loaders"
  run timeout 120 "$CARRY/bin/test_engine" --gtest_filter='GpuEngine.*:MeetGuard*:Engine*'
}

calib() {
  mkdir -p "$RES/calib"
  run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source mem --repeat 2 --json-out "$RES/calib/mem.json"
  for round in 1 2 3; do
    run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source file --repeat 3 --no-fio \
      --json-out "$RES/calib/file-$round.json"
  done
  pack calib
}

host() {
  mkdir -p "$RES/host"
  for round in 1 2 3; do
    run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source file --target host --repeat 3 --no-fio \
      --json-out "$RES/host/file-host-$round.json"
  done
  pack host
}

top() {
  run timeout 200 "$B" run --quiet --suffix 128 --store "$SHM" --warmup 0 --verify token --out "$RES/top32k" \
    --context 32k --mode compute,io,cake,oracle --source "mem,file:$SHM" --bandwidth 400gbps,unlimited --repeat 3 \
    --max-point-time 12
  pack top32k
}

for stage in "$@"; do
  case "$stage" in
    checks|calib|host|top) "$stage" ;;
    *) echo "device_round7: unknown stage $stage"; status=1 ;;
  esac
done
rm -rf "$CAL"
exit $status
