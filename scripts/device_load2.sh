#!/usr/bin/env bash
# The load lane's byte staging on the GPU machine, in one call (issue 13, round 2): the loader
# tests on a real GPU, then `calibrate` for mem and for file on /dev/shm unthrottled, each beside
# the pinned copy rate and (file) the plain multi-threaded O_DIRECT pread reader measured in the
# same call; the file source with byte staging (defaults, then variants of reader threads, piece
# size and bytes in flight) against whole-chunk slots (the older path); the throttle's accuracy
# for the file source at 1..256 Gbps x2 and 400 Gbps; io-only TTFT of llama-3-8b at 32K from mem
# and /dev/shm unthrottled. About 90 s of commands.
#
# Build here, then pack: BUILD_DIR=build-device PACK_TARGETS="cake-bench test_loaders test_engine"
# CARRY_DIR=/work/main/.carry-load2 scripts/device_pack.sh, and run there from the repository root:
#   CARRY=$PWD/.carry-load2 bash .carry-load2/scripts/device_load2.sh [checks|calibrate|io|all]
# Every command is echoed before it runs; logs and run folders come back in $OUT.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CARRY=${CARRY:-$(dirname "$HERE")}
OUT=${OUT:-/tmp/cake-load2-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$CARRY/lib:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib:${LD_LIBRARY_PATH:-}
B=$CARRY/bin/cake-bench
RES=/tmp/cake-load2-results
SHM=/dev/shm/cake
CAL=$SHM/cal
mkdir -p "$RES" "$SHM"
source "$HERE/device_lib.sh"

echo "commit: $(cat "$CARRY/commit" 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
echo "cores: $(nproc)"; free -g | head -2; df -h /dev/shm | tail -1; uname -r
lscpu | grep -E "Model name|Socket|NUMA node\(s\)|L3" || true
command -v fio >/dev/null && echo "fio: $(command -v fio)" || echo "fio: not installed (the plain pread reader is the baseline)"

checks() {
  run timeout 120 "$CARRY/bin/test_loaders"
  run timeout 60 "$CARRY/bin/test_engine" --gtest_filter='GpuEngine.*'
}

calibrate() {
  # mem: the copy engine's own ceiling, same-run pinned copy rate (the store is written here once).
  mkdir -p "$RES/calibrate"
  run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source mem --repeat 3 --json-out "$RES/calibrate/mem.json"
  # file, byte staging with its defaults: unthrottled three times, the ceilings beside it.
  run timeout 60 "$B" calibrate --store "$CAL" --size 4GiB --source file --repeat 3 --json-out "$RES/calibrate/file.json"
  # The older path (whole-chunk slots, 4 in flight, 8 readers as last round), same call.
  run timeout 60 "$B" calibrate --store "$CAL" --size 4GiB --source file --repeat 2 --no-fio --staging chunks \
    --chunks-in-flight 4 --reader-threads 8
  # Variants: reader threads, piece size, bytes in flight.
  for v in "--reader-threads 8" "--reader-threads 14" "--piece-size 1MiB" "--piece-size 16MiB" \
           "--request-size 256KiB" "--staging-size 256MiB" "--staging-size 512MiB --piece-size 8MiB --reader-threads 14"; do
    # shellcheck disable=SC2086
    run timeout 60 "$B" calibrate --store "$CAL" --size 4GiB --source file --repeat 2 --no-fio $v
  done
  # The throttle for the file source: 1..256 Gbps x2 and 400 Gbps, about 0.5 s a point.
  run timeout 120 "$B" calibrate --store "$CAL" --size 4GiB --source file \
    --bandwidth 1gbps..256gbps:x2,400gbps --point-seconds 0.5 --json-out "$RES/calibrate/file-throttle.json"
  python3 - "$RES/calibrate/file-throttle.json" <<'PY' || true
import json, sys
d = json.load(open(sys.argv[1]))
print("file throttle: target_gbps loader_gbps ratio loader_bound")
for p in d["points"]:
    print(p["target_gbps"], round(p["loader_gbps"], 3), p["ratio_to_target"] and round(p["ratio_to_target"], 4), p["loader_bound"])
PY
  rm -rf "$CAL"
  pack calibrate
}

io() {
  # llama-3-8b, 32K prefix, suffix 128, io-only, unthrottled: from mem and from /dev/shm.
  run timeout 150 "$B" run --quiet --context 32k --suffix 128 --mode io --source mem,file:$SHM \
    --bandwidth unlimited --store "$SHM" --repeat 3 --warmup 1 --out "$RES/io32k-unlimited"
  pack io32k-unlimited
}

case "${1:-all}" in
  checks) checks ;;
  calibrate) calibrate ;;
  io) io ;;
  all) checks; calibrate; io ;;
  *) echo "usage: $0 [checks|calibrate|io|all]"; exit 2 ;;
esac
echo "device_load2: overall status $status"
exit $status
