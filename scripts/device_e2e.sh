#!/usr/bin/env bash
# End-to-end measurements on the GPU machine (device tool), after scripts/device_pack.sh here
# with PACK_TARGETS="cake-bench test_engine test_loaders". Run there from the repository root:
#   scripts/device_e2e.sh stage1   # info, GPU engine tests, calibrate, default run, chunk sizes, 32K sweep
#   scripts/device_e2e.sh stage2a  # GPU engine tests again, the 32K /dev/shm sweeps, 64K at 8-64 Gbps
#   scripts/device_e2e.sh stage2b  # 32K and 64K at 1-4 Gbps, disk (unthrottled) at 32K and 64K
# Every command is echoed before it runs, so the log is the record of what produced each result.
# Results come back as one tarball per run folder in $OUT (the device tool returns at most 8 files).
# CARRY_DIR (default .carry, relative to the repo root): what device_pack.sh packed; cuDNN is
# loaded from PyTorch's wheel (CUDNN_LIB_DIR).
set -uo pipefail
CARRY_DIR=${CARRY_DIR:-.carry}
here=$(cd "$(dirname "$0")" && pwd)
if [[ $(basename "$(dirname "$here")") == $(basename "$CARRY_DIR") ]]; then cd "$here/../.."; else cd "$here/.."; fi
OUT=${OUT:-/tmp/cake-e2e-out}
mkdir -p "$OUT"
CUDNN_LIB_DIR=${CUDNN_LIB_DIR:-/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib}
export LD_LIBRARY_PATH=$PWD/$CARRY_DIR/lib:$CUDNN_LIB_DIR:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
B=$PWD/$CARRY_DIR/bin/cake-bench
RES=/tmp/cake-e2e-results
SHM=/dev/shm/cake
DISK=/var/tmp/cake-disk
mkdir -p "$RES" "$SHM" "$DISK"
source "$(cd "$(dirname "$0")" && pwd)/device_lib.sh"

echo "commit: $(cat "$CARRY_DIR/commit" 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu --format=csv
free -g | head -2; df -h /dev/shm /var/tmp | tail -2

case "${1:-stage1}" in
stage1)
  run "$B" info --store "$SHM"
  "$B" info --store "$DISK" --json > "$OUT/info.json"
  run timeout 300 "$CARRY_DIR"/bin/test_engine
  run timeout 300 "$CARRY_DIR"/bin/test_loaders
  run timeout 120 "$B" calibrate --store "$SHM/cal" --size 1GiB --bandwidth 1gbps,4gbps,16gbps,64gbps
  run timeout 120 "$B" calibrate --store "$DISK/cal" --size 2GiB
  rm -rf "$SHM/cal" "$DISK/cal"
  # The README's default run, as a newcomer types it (store in ./cake-store on the disk).
  run timeout 300 "$B" run --quiet --out "$RES/default"
  pack default
  # Which chunk size: compute-only at 32K for several chunk sizes.
  run timeout 200 "$B" run --quiet --context 32k --mode compute --chunk 256,512,1024,2048 --repeat 3 --warmup 1 \
    --verify off --out "$RES/chunk-sizes"
  pack chunk-sizes
  # Issue 6: llama-3-8b, 32K prefix, suffix 128, /dev/shm store through the throttle.
  run timeout 400 "$B" run --quiet --context 32k --suffix 128 --mode compute,io,cake,oracle \
    --bandwidth 8gbps,16gbps,32gbps,64gbps --source "file:$SHM" --repeat 3 --warmup 1 --out "$RES/ctx32k-shm-high"
  pack ctx32k-shm-high
  run timeout 400 "$B" run --quiet --context 32k --suffix 128 --mode compute,io,cake,oracle \
    --bandwidth 1gbps,2gbps,4gbps --source "file:$SHM" --repeat 1 --warmup 0 --verify token --out "$RES/ctx32k-shm-low"
  pack ctx32k-shm-low
  run timeout 300 "$B" run --quiet --context 32k --suffix 128 --mode compute,io,cake,oracle \
    --bandwidth unlimited --source "file:$DISK" --repeat 3 --warmup 1 --out "$RES/ctx32k-disk"
  pack ctx32k-disk
  ;;
stage2a)
  run timeout 120 "$CARRY_DIR"/bin/test_engine --gtest_filter='GpuEngine.*:Engine.*'
  run timeout 200 "$B" run --quiet --context 32k --suffix 128 --mode compute,io,cake,oracle \
    --bandwidth 1gbps,2gbps,4gbps --source "file:$SHM" --repeat 1 --warmup 0 --verify token --out "$RES/ctx32k-shm-low"
  pack ctx32k-shm-low
  run timeout 200 "$B" run --quiet --context 32k --suffix 128 --mode compute,io,cake,oracle \
    --bandwidth 8gbps,16gbps,32gbps,64gbps --source "file:$SHM" --repeat 3 --warmup 1 --out "$RES/ctx32k-shm-high"
  pack ctx32k-shm-high
  run timeout 260 "$B" run --quiet --context 64k --suffix 128 --mode compute,io,cake,oracle \
    --bandwidth 8gbps,16gbps,32gbps,64gbps --source "file:$SHM" --repeat 2 --warmup 1 --verify token --out "$RES/ctx64k-shm-high"
  pack ctx64k-shm-high
  ;;
stage2b)
  run timeout 100 "$CARRY_DIR"/bin/test_engine --gtest_filter='GpuEngine.*:Engine.*'
  run timeout 150 "$B" run --quiet --context 32k --suffix 128 --mode compute,io,cake,oracle \
    --bandwidth 1gbps,2gbps,4gbps --source "file:$SHM" --repeat 1 --warmup 0 --verify token --out "$RES/ctx32k-shm-low"
  pack ctx32k-shm-low
  run timeout 250 "$B" run --quiet --context 64k --suffix 128 --mode compute,io,cake,oracle \
    --bandwidth 1gbps,2gbps,4gbps --source "file:$SHM" --repeat 1 --warmup 0 --verify token --out "$RES/ctx64k-shm-low"
  pack ctx64k-shm-low
  run timeout 100 "$B" run --quiet --context 32k --suffix 128 --mode compute,io,cake,oracle \
    --bandwidth unlimited --source "file:$DISK" --repeat 2 --warmup 1 --out "$RES/ctx32k-disk"
  pack ctx32k-disk
  run timeout 100 "$B" run --quiet --context 64k --suffix 128 --mode compute,io,cake,oracle \
    --bandwidth unlimited --source "file:$DISK" --repeat 1 --warmup 1 --verify token --out "$RES/ctx64k-disk"
  pack ctx64k-disk
  ;;
esac
echo "device_e2e: overall status $status"
exit $status
