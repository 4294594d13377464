#!/usr/bin/env bash
# Round 6 on the GPU machine (issue 12's last H200 points, issue 13's numbers with the final binary).
# Stages, run in the order given:
#   checks   test_loaders, GpuEngine.*/MeetGuard*/Engine*
#   top      llama-3-8b 32K and 64K, 400 Gbps and unlimited, mem and file:/dev/shm, --max-point-time 12
#            (15-40 rounds a group): round 5 left three 400 Gbps points at 1.031-1.037x the oracle,
#            each with the 2 ms start stall that MeetGuard::load_decided (7c0bc21) removed after them
#   mid      32K from mem at 4, 16 and 64 Gbps, compute/cake/oracle: Cake's start, since that fix
#   show32   issue 12's sweep: 32K, mem and file:/dev/shm, 1-400 Gbps (x2) plus unlimited,
#            compute/io/cake/oracle, two rounds (more where cheap: the default --max-point-time)
#   sweep64  issue 13's 64K sweep, mem and file:/dev/shm, 16-400 Gbps (x2) plus unlimited, two rounds
#   sweep64low  the same at 1-8 Gbps, one round (io-only takes 69 s a request at 1 Gbps)
#   calib    calibrate mem, file:/dev/shm (3 calls) and the file throttle at 1-400 Gbps: issue 13's
#            targets with the final binary
# Here: BUILD_DIR=build-device PACK_TARGETS="cake-bench test_loaders test_engine" CARRY_DIR=.carry-r6a \
#       scripts/device_pack.sh
# There (device tool, carry [".carry-r6a"]): OUT=$OUT bash .carry-r6a/scripts/device_round6.sh STAGE...
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/device_lib.sh"
OUT=${OUT:-/tmp/cake-r6-out}
device_setup /tmp/cake-r6
CAL=$SHM/cal

checks() {
  run timeout 150 "$CARRY/bin/test_loaders"
  run timeout 120 "$CARRY/bin/test_engine" --gtest_filter='GpuEngine.*:MeetGuard*:Engine*'
}

# One sweep: NAME TIMEOUT then cake-bench run's flags.
sweep() {
  local name=$1 limit=$2
  shift 2
  run timeout "$limit" "$B" run --quiet --suffix 128 --store "$SHM" --warmup 0 --verify token --out "$RES/$name" "$@"
  pack "$name"
}

top() {
  sweep top32k 200 --context 32k --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --bandwidth 400gbps,unlimited --repeat 3 --max-point-time 12
  sweep top64k 250 --context 64k --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --bandwidth 400gbps,unlimited --repeat 3 --max-point-time 12
}

mid() {
  sweep mid32k 200 --context 32k --mode compute,cake,oracle --source mem --bandwidth 4gbps,16gbps,64gbps --repeat 2
}

show32() {
  sweep show32k 590 --context 32k --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --bandwidth 1gbps..256gbps:x2,400gbps,unlimited --repeat 2
}

sweep64() {
  sweep sweep64k 590 --context 64k --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --bandwidth 16gbps..256gbps:x2,400gbps,unlimited --repeat 2
}

sweep64low() {
  sweep sweep64k-low 590 --context 64k --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --bandwidth 1gbps..8gbps:x2 --repeat 1 --max-point-time 0
}

calib() {
  mkdir -p "$RES/calib"
  run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source mem --repeat 2 --json-out "$RES/calib/mem.json"
  for round in 1 2 3; do
    run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source file --repeat 3 --no-fio \
      --json-out "$RES/calib/file-$round.json"
  done
  run timeout 120 "$B" calibrate --store "$CAL" --size 4GiB --source file --bandwidth 1gbps..256gbps:x2,400gbps \
    --point-seconds 0.5 --no-fio --json-out "$RES/calib/file-throttle.json"
  rm -rf "$CAL"
  pack calib
}

for stage in "$@"; do
  case "$stage" in
    checks|top|mid|show32|sweep64|sweep64low|calib) "$stage" ;;
    *) echo "device_round6: unknown stage $stage"; status=1 ;;
  esac
done
exit $status
