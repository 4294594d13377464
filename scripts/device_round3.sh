#!/usr/bin/env bash
# Round 3 on the GPU machine after the merge of the codec, byte-staging and tensor-parallel
# branches (issues 13 and 17; 12's GPU side): stages run in the order given, each echoed and timed.
#   checks   every loader test (the codecs' GPU decode == CPU decode, bit-exact, included), the
#            GPU engine (every mode bit-exact with compute-only on the merged single-GPU path) and
#            the GPU kernel tests
#   decode   decode throughput of each codec beside the pinned copy rate of the same bytes
#   calib    calibrate: mem and file:/dev/shm unthrottled beside the same-run pinned copy rate and
#            the plain O_DIRECT reader; the file throttle at 1-256 Gbps x2 and 400 Gbps
#   tcp      llama-3-8b 32K io-only over the loopback TCP source, 1, 2 and 4 connections
#   codecs   llama-3-8b 32K, compute and cake with codecs none, int8, int4, cachegen at 4-64 Gbps
#            from mem, with the codec quality table
#   sweep64  llama-3-8b 64K, compute/io/cake/oracle at 16-400 Gbps (x2) + unlimited, mem and file
#   sweep64low  the same at 1-8 Gbps (io-only alone takes 69 s a request at 1 Gbps)
#   sweep32  llama-3-8b 32K, compute/io/cake/oracle at 1-400 Gbps (x2) + unlimited, mem and file
#
# Here: BUILD_DIR=build-device PACK_TARGETS="cake-bench test_loaders test_engine test_kernels_gpu
#       cake_bench_micro" CARRY_DIR=.carry-r4 scripts/device_pack.sh
# There (device tool, carry [".carry-r4"]): bash .carry-r4/scripts/device_round3.sh checks decode ...
# Logs and run folders come back in $OUT (log.txt and one .tgz per stage: at most 8 files).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CARRY=${CARRY:-$(dirname "$HERE")}
OUT=${OUT:-/tmp/cake-r3-out}
mkdir -p "$OUT"
CUDNN_LIB_DIR=${CUDNN_LIB_DIR:-/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib}
export LD_LIBRARY_PATH=$CARRY/lib:$CUDNN_LIB_DIR:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
B=$CARRY/bin/cake-bench
RES=/tmp/cake-r3
SHM=/dev/shm/cake
CAL=$SHM/cal
mkdir -p "$RES" "$SHM"
source "$HERE/device_lib.sh"

echo "commit: $(cat "$CARRY/commit" 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
echo "cores: $(nproc)"; free -g | head -2; df -h /dev/shm | tail -1

checks() {
  run timeout 150 "$CARRY/bin/test_loaders"
  run timeout 90 "$CARRY/bin/test_engine" --gtest_filter='GpuEngine.*'
  run timeout 120 "$CARRY/bin/test_kernels_gpu"
}

decode() {
  run timeout 90 "$CARRY/bin/cake_bench_micro" --benchmark_filter='KvDecodeGpu|PinnedCopyOfAChunk' \
    --benchmark_out="$OUT/decode-bench.json" --benchmark_out_format=json
}

calib() {
  mkdir -p "$RES/calib"
  run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source mem --repeat 2 --json-out "$RES/calib/mem.json"
  run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source file --repeat 3 --json-out "$RES/calib/file.json"
  run timeout 120 "$B" calibrate --store "$CAL" --size 4GiB --source file --bandwidth 1gbps..256gbps:x2,400gbps \
    --point-seconds 0.5 --json-out "$RES/calib/file-throttle.json"
  rm -rf "$CAL"
  pack calib
}

tcp() {
  for n in 1 2 4; do
    run timeout 90 "$B" run --quiet --context 32k --suffix 128 --mode io --source tcp --bandwidth unlimited \
      --tcp-connections "$n" --staging-slots 4 --store "$SHM" --repeat 3 --warmup 1 --verify token \
      --out "$RES/tcp/conn$n"
  done
  pack tcp
}

codecs() {
  run timeout 420 "$B" run --quiet --context 32k --suffix 128 --mode compute,cake --codec none,int8,int4,cachegen \
    --bandwidth 4gbps,8gbps,16gbps,32gbps,64gbps --source mem --store "$SHM" --repeat 2 --warmup 0 \
    --out "$RES/codecs"
  pack codecs
}

sweep64() {
  run timeout 290 "$B" run --quiet --context 64k --suffix 128 --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --store "$SHM" --bandwidth 16gbps..256gbps:x2,400gbps,unlimited --repeat 1 --warmup 0 --verify token \
    --out "$RES/sweep64k-high"
  pack sweep64k-high
}

sweep64low() {
  run timeout 560 "$B" run --quiet --context 64k --suffix 128 --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --store "$SHM" --bandwidth 1gbps..8gbps:x2 --repeat 1 --warmup 0 --verify token --out "$RES/sweep64k-low"
  pack sweep64k-low
}

sweep32() {
  run timeout 560 "$B" run --quiet --context 32k --suffix 128 --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --store "$SHM" --bandwidth 1gbps..256gbps:x2,400gbps,unlimited --repeat 1 --warmup 0 --verify token \
    --out "$RES/sweep32k"
  pack sweep32k
}

for stage in "$@"; do
  case "$stage" in
    checks|decode|calib|tcp|codecs|sweep64|sweep64low|sweep32) "$stage" ;;
    *) echo "device_round3: unknown stage $stage"; status=1 ;;
  esac
done
echo "device_round3: overall status $status"
exit $status
