#!/usr/bin/env bash
# Round 9 on the GPU machine: issue 13's targets again, all with one commit. Stages, run in the
# order given:
#   checks     test_loaders; test_engine's GPU, meet-guard and engine tests
#   calib      calibrate into the GPU: mem (2 calls) and file:/dev/shm (2 calls) unthrottled beside the
#              pinned copy rate; the throttle at 1-400 Gbps (x2) for mem and for the file source
#   host       calibrate file:/dev/shm into a host KV cache: auto (now pread into a host cache) and
#              map, alternating, 2 calls each
#   sweep64    64K, mem and file:/dev/shm, 16-400 Gbps (x2) plus unlimited, compute/io/cake/oracle,
#              two rounds
#   show32     32K, the same modes and sources at 1-400 Gbps (x2) plus unlimited, two rounds
#   sweep64low 64K at 1-8 Gbps, one round (io-only takes 69 s a request at 1 Gbps)
# Here: BUILD_DIR=build-device PACK_TARGETS="cake-bench test_loaders test_engine" CARRY_DIR=.carry-r9 \
#       scripts/device_pack.sh
# There (device tool, carry [".carry-r9z"]):
#   tar xzf .carry-r9z/carry.tgz && OUT=$OUT bash .carry-r9/scripts/device_round9.sh STAGE...
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/device_lib.sh"
OUT=${OUT:-/tmp/cake-r9-out}
device_setup /tmp/cake-r9
CAL=$SHM/cal

checks() {
  run timeout 150 "$CARRY/bin/test_loaders"
  run timeout 120 "$CARRY/bin/test_engine" --gtest_filter='GpuEngine.*:MeetGuard*:Engine*'
}

calib() {
  mkdir -p "$RES/calib"
  for round in 1 2; do
    run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source mem --repeat 3 --json-out "$RES/calib/mem-$round.json"
    run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source file --repeat 3 --no-fio \
      --json-out "$RES/calib/file-$round.json"
  done
  for source in mem file; do
    run timeout 120 "$B" calibrate --store "$CAL" --size 4GiB --source "$source" --bandwidth 1gbps..256gbps:x2,400gbps \
      --point-seconds 0.5 --no-fio --json-out "$RES/calib/$source-throttle.json"
  done
  pack calib
}

host() {
  mkdir -p "$RES/host"
  for round in 1 2; do
    for reads in auto map; do
      run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source file --target host --file-reads "$reads" \
        --repeat 3 --no-fio --json-out "$RES/host/host-$reads-$round.json"
    done
  done
  pack host
}

# One sweep: NAME TIMEOUT then cake-bench run's flags. Traces and timelines stay there (size).
sweep() {
  local name=$1 limit=$2
  shift 2
  run timeout "$limit" "$B" run --quiet --suffix 128 --store "$SHM" --warmup 0 --verify token --out "$RES/$name" "$@"
  rm -f "$RES/$name"/trace-*.json "$RES/$name"/timeline-*.svg
  pack "$name"
}

sweep64() {
  sweep sweep64k 300 --context 64k --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --bandwidth 16gbps..256gbps:x2,400gbps,unlimited --repeat 2
}

show32() {
  sweep show32k 560 --context 32k --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --bandwidth 1gbps..256gbps:x2,400gbps,unlimited --repeat 2
}

sweep64low() {
  sweep sweep64k-low 560 --context 64k --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --bandwidth 1gbps..8gbps:x2 --repeat 1 --max-point-time 0
}

for stage in "$@"; do
  case "$stage" in
    checks|calib|host|sweep64|show32|sweep64low) "$stage" ;;
    *) echo "device_round9: unknown stage $stage"; status=1 ;;
  esac
done
rm -rf "$CAL"
exit $status
