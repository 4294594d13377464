#!/usr/bin/env bash
# The load lane on the GPU machine, in one call (issue 13): correctness of the direct (mem) and
# staged (file) uploads on a real GPU, calibrate for mem and file on /dev/shm against the pinned
# copy rate and a plain reader measured in the same call, io-only TTFT of llama-3-8b at 32K from
# mem and from /dev/shm unthrottled, the TCP source over loopback, and optionally a sweep.
#
# Build here, then pack: BUILD_DIR=build-device PACK_TARGETS="cake-bench test_loaders test_engine"
# scripts/device_pack.sh (binaries land in .carry/bin, .carry/lib). Run there from the repository
# root:   CARRY=.carry scripts/device_load.sh [checks|sweep|all]
# CARRY defaults to this script's folder when it holds bin/ (a copy of the script beside the pack).
# Every command is echoed before it runs; run folders come back as tarballs in $OUT.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [[ -z "${CARRY:-}" ]]; then
  if [[ -d "$HERE/bin" ]]; then CARRY=$HERE; else CARRY=$PWD/.carry; fi
fi
OUT=${OUT:-/tmp/cake-load-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$CARRY/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
B=$CARRY/bin/cake-bench
RES=/tmp/cake-load-results
SHM=/dev/shm/cake
mkdir -p "$RES" "$SHM"
if [[ -f "$HERE/device_lib.sh" ]]; then source "$HERE/device_lib.sh"; else source "$PWD/scripts/device_lib.sh"; fi

echo "commit: $(cat "$CARRY/commit" 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
echo "cores: $(nproc)"; free -g | head -2; df -h /dev/shm | tail -1; uname -r
command -v fio >/dev/null && echo "fio: $(command -v fio)" || echo "fio: not installed (the plain pread reader is the baseline)"

checks() {
  run timeout 120 "$CARRY/bin/test_loaders"
  run timeout 60 "$CARRY/bin/test_engine" --gtest_filter='GpuEngine.*'
  # Throttle accuracy and the ceilings: 1..256 Gbps x2 and 400 Gbps, a 4 GiB store on tmpfs.
  run timeout 150 "$B" calibrate --store "$SHM/cal" --size 4GiB --source mem \
    --bandwidth 1gbps..256gbps:x2,400gbps --point-seconds 0.5
  # The same high rates with 2 MiB pieces (fewer, larger copies).
  run timeout 60 "$B" calibrate --store "$SHM/cal" --size 4GiB --source mem --request-size 2MiB \
    --bandwidth 128gbps,256gbps,400gbps --point-seconds 0.5
  run timeout 150 "$B" calibrate --store "$SHM/cal" --size 4GiB --source file \
    --bandwidth 1gbps..256gbps:x2,400gbps --point-seconds 0.5 --reader-threads 8
  rm -rf "$SHM/cal"
  # llama-3-8b, 32K prefix, suffix 128, io-only, unthrottled: from mem and from /dev/shm.
  run timeout 150 "$B" run --quiet --context 32k --suffix 128 --mode io --source mem,file:$SHM \
    --bandwidth unlimited --store "$SHM" --repeat 5 --warmup 1 --out "$RES/io32k-unlimited"
  pack io32k-unlimited
  # TCP over loopback (a server started in-process on 127.0.0.1), unthrottled.
  run timeout 90 "$B" run --quiet --context 32k --suffix 128 --mode io --source tcp --bandwidth unlimited \
    --store "$SHM" --repeat 3 --warmup 1 --verify token --out "$RES/io32k-tcp"
  pack io32k-tcp
}

sweep() {
  run timeout 400 "$B" run --quiet --context 32k --suffix 128 --mode compute,io,cake,oracle --source mem,file:$SHM \
    --bandwidth "${SWEEP_BANDWIDTHS:-1gbps..256gbps:x2,400gbps,unlimited}" --store "$SHM" \
    --repeat "${SWEEP_REPEAT:-1}" --warmup "${SWEEP_WARMUP:-1}" \
    --verify token --out "$RES/sweep32k"
  pack sweep32k
}

case "${1:-checks}" in
  checks) checks ;;
  sweep) sweep ;;   # SWEEP_BANDWIDTHS, SWEEP_REPEAT, SWEEP_WARMUP override the defaults
  all) checks; sweep ;;
  *) echo "usage: $0 [checks|sweep|all]"; exit 2 ;;
esac
echo "device_load: overall status $status"
exit $status
