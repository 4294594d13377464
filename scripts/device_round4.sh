#!/usr/bin/env bash
# Round 4 on the GPU machine (issues 13 and 12): stages run in the order given, each echoed and timed.
#   host     what bounds the file source on this host: CPU, caches, THP, the tmpfs mount
#   staging  calibrate file:/dev/shm unthrottled across staging sizes, piece sizes, request sizes and
#            reader counts (same binary, same store), each beside the same-run pinned copy rate and
#            the plain O_DIRECT reader
#   checks   every loader test, the GPU engine (every mode bit-exact with compute-only), GPU kernels
#   sweep32  llama-3-8b 32K, compute/io/cake/oracle at 1-400 Gbps (x2) + unlimited, mem and file,
#            two repetitions (round 3 had one): the meet guard's cost line (issue 12)
#   sweep64  llama-3-8b 64K, the same at 16-400 Gbps + unlimited, two repetitions
#   calib    calibrate unthrottled: mem, and file:/dev/shm with the checksum on the GPU and on the
#            readers, beside the same-run pinned copy rate and the plain reader; the file throttle
#            (GPU checksum) at 1-256 Gbps x2 and 400 Gbps
#   sweep32file  sweep32 for the file source alone (its checksum moved to the GPU after sweep32 ran)
#   sweep64low  llama-3-8b 64K at 1-8 Gbps (x2), one repetition (io-only takes 69 s a request at 1 Gbps)
#   blind    llama-3-8b 32K, compute/cake/oracle at 0.25 and 0.5 Gbps from mem: where one chunk takes
#            longer to arrive than the whole prefill, the load lane's first (blind) claim costs Cake
#   readers  calibrate file:/dev/shm (checksum on the GPU) with 14, 15 and 16 reader threads, twice
#            each, alternating: whether the readers' cap of 14 (set when they also checksummed) still fits
#   cpu2     the README's first command (CPU backend, tiny, 2K, chunk 128) on two of this host's
#            cores (taskset), five times: a second idle machine beside the dev box's runs
#
# Here: BUILD_DIR=build-device PACK_TARGETS="cake-bench test_loaders test_engine test_kernels_gpu
#       test_kernels cake_bench_micro" CARRY_DIR=.carry-r4 scripts/device_pack.sh
# There (device tool, carry [".carry-r4"]): bash .carry-r4/scripts/device_round4.sh STAGE...
# Logs and run folders come back in $OUT (log.txt and one .tgz per stage: at most 8 files).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CARRY=${CARRY:-$(dirname "$HERE")}
OUT=${OUT:-/tmp/cake-r4-out}
mkdir -p "$OUT"
CUDNN_LIB_DIR=${CUDNN_LIB_DIR:-/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib}
export LD_LIBRARY_PATH=$CARRY/lib:$CUDNN_LIB_DIR:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
B=$CARRY/bin/cake-bench
RES=/tmp/cake-r4
SHM=/dev/shm/cake
CAL=$SHM/cal
mkdir -p "$RES" "$SHM"
source "$HERE/device_lib.sh"

echo "commit: $(cat "$CARRY/commit" 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
echo "cores: $(nproc)"; free -g | head -2; df -h /dev/shm | tail -1

host() {
  run lscpu
  run grep -E 'MemTotal|Hugepages|AnonHuge|ShmemHuge' /proc/meminfo
  run cat /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/mm/transparent_hugepage/shmem_enabled
  run grep -E ' /dev/shm | /tmp ' /proc/mounts
}

staging() {
  mkdir -p "$RES/staging"
  local name args
  while read -r name args; do
    [[ -z "$name" ]] && continue
    # shellcheck disable=SC2086
    run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source file --repeat 3 --no-fio $args \
      --json-out "$RES/staging/$name.json"
  done <<'LIST'
default
s32m-p1m      --staging-size 32MiB --piece-size 1MiB
s64m-p2m      --staging-size 64MiB --piece-size 2MiB
s64m-p4m      --staging-size 64MiB --piece-size 4MiB
s256m-p4m     --staging-size 256MiB --piece-size 4MiB
s512m-p8m     --staging-size 512MiB --piece-size 8MiB
r256k         --request-size 256KiB
r4m           --request-size 4MiB
t8            --reader-threads 8
t12           --reader-threads 12
LIST
  rm -rf "$CAL"
  pack staging
}

checks() {
  run timeout 150 "$CARRY/bin/test_loaders"
  run timeout 90 "$CARRY/bin/test_engine" --gtest_filter='GpuEngine.*:MeetGuard*'
  run timeout 120 "$CARRY/bin/test_kernels_gpu"
  [[ -x "$CARRY/bin/test_kernels" ]] && run timeout 60 "$CARRY/bin/test_kernels" --gtest_filter='BackendFactory.*'
}

sweep32() {
  run timeout 590 "$B" run --quiet --context 32k --suffix 128 --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --store "$SHM" --bandwidth 1gbps..256gbps:x2,400gbps,unlimited --repeat 2 --warmup 0 --verify token \
    --out "$RES/sweep32k"
  pack sweep32k
}

calib() {
  mkdir -p "$RES/calib"
  run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source mem --repeat 2 --json-out "$RES/calib/mem.json"
  for checksum in gpu cpu gpu cpu; do
    run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source file --repeat 3 --no-fio --checksum $checksum \
      --json-out "$RES/calib/file-$checksum-$SECONDS.json"
  done
  run timeout 120 "$B" calibrate --store "$CAL" --size 4GiB --source file --bandwidth 1gbps..256gbps:x2,400gbps \
    --point-seconds 0.5 --no-fio --json-out "$RES/calib/file-throttle.json"
  rm -rf "$CAL"
  pack calib
}

readers() {
  mkdir -p "$RES/readers"
  for round in 1 2; do
    for t in 14 15 16; do
      run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source file --repeat 3 --no-fio --checksum gpu \
        --reader-threads $t --json-out "$RES/readers/t$t-$round.json"
    done
  done
  rm -rf "$CAL"
  pack readers
}

sweep64low() {
  run timeout 560 "$B" run --quiet --context 64k --suffix 128 --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --store "$SHM" --bandwidth 1gbps..8gbps:x2 --repeat 1 --warmup 0 --verify token --out "$RES/sweep64k-low"
  pack sweep64k-low
}

blind() {
  run timeout 200 "$B" run --quiet --context 32k --suffix 128 --mode compute,cake,oracle --source mem \
    --store "$SHM" --bandwidth "${BLIND_BANDWIDTHS:-0.25gbps,0.5gbps}" --repeat 1 --warmup 0 --verify token --out "$RES/blind"
  pack blind
}

sweep32file() {
  run timeout 590 "$B" run --quiet --context 32k --suffix 128 --mode compute,io,cake,oracle --source "file:$SHM" \
    --store "$SHM" --bandwidth 1gbps..256gbps:x2,400gbps,unlimited --repeat 2 --warmup 0 --verify token \
    --out "$RES/sweep32k-file"
  pack sweep32k-file
}

sweep64() {
  run timeout 590 "$B" run --quiet --context 64k --suffix 128 --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --store "$SHM" --bandwidth 16gbps..256gbps:x2,400gbps,unlimited --repeat 2 --warmup 0 --verify token \
    --out "$RES/sweep64k-high"
  pack sweep64k-high
}

cpu2() {
  mkdir -p "$RES/cpu2"
  for i in 1 2 3 4 5; do
    run timeout 120 taskset -c 2,3 "$B" run --quiet --backend cpu --out "$RES/cpu2/run$i" --store /tmp/cake-cpu2-store
  done
  pack cpu2
}

for stage in "$@"; do
  case "$stage" in
    host|staging|checks|calib|readers|sweep32|sweep32file|sweep64|sweep64low|blind|cpu2) "$stage" ;;
    *) echo "device_round4: unknown stage $stage"; status=1 ;;
  esac
done
echo "device_round4: overall status $status"
exit $status
