#!/usr/bin/env bash
# Round 5 on the GPU machine (issues 12 and 13). Stages, run in the order given:
#   probe    bench/probe_host_paths.cu on a 4 GiB file in /dev/shm with 1, 4, 8 and 14 threads:
#            pread into pinned staging (today's readers), a non-temporal copy out of a mapping of the
#            file, and page-locking the file's own pages (cudaHostRegister) to DMA them with no CPU
#            copy; against the pinned copy rate of the same call
#   checks   test_loaders, GpuEngine.*/MeetGuard*, test_kernels_gpu, BackendFactory.*
#   blind    llama-3-8b 32K from mem, compute/cake/oracle at $BLIND_BANDWIDTHS (default 0.25, 0.5, 1,
#            2 Gbps): the first claim now weighs the link's nominal rate (round 4 measured 3.48x and
#            1.74x compute-only at 0.25 and 0.5 Gbps before that fix)
#   calib    calibrate mem, then file:/dev/shm with --file-reads uring and map alternating (3 calls
#            each, the default staging of 32 MiB in 2 MiB pieces and 10 readers), then the file
#            throttle at 1-400 Gbps (auto: map on /dev/shm)
#   high     llama-3-8b 32K (64-400 Gbps + unlimited) and 64K (256, 400, unlimited), mem and file, with
#            the default --max-point-time: more rounds for the short, noisy points
#   top      32K and 64K, 400 Gbps and unlimited, mem and file, --max-point-time 12: many rounds
#   sweep64file  llama-3-8b 64K file:/dev/shm 16-400 Gbps + unlimited, compute/io/cake/oracle
#   sweep32file  llama-3-8b 32K file:/dev/shm 1-400 Gbps + unlimited, compute/io/cake/oracle
# Here: BUILD_DIR=build-device PACK_TARGETS="cake-bench test_loaders test_engine test_kernels_gpu
#       test_kernels probe_host_paths" CARRY_DIR=.carry-r5a scripts/device_pack.sh
# There (device tool, carry [".carry-r5a"]): bash .carry-r5a/scripts/device_round5.sh STAGE...
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CARRY=${CARRY:-$(dirname "$HERE")}
OUT=${OUT:-/tmp/cake-r5-out}
mkdir -p "$OUT"
CUDNN_LIB_DIR=${CUDNN_LIB_DIR:-/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib}
export LD_LIBRARY_PATH=$CARRY/lib:$CUDNN_LIB_DIR:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
B=$CARRY/bin/cake-bench
RES=/tmp/cake-r5
SHM=/dev/shm/cake
CAL=$SHM/cal
mkdir -p "$RES" "$SHM"
source "$HERE/device_lib.sh"

echo "commit: $(cat "$CARRY/commit" 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
echo "cores: $(nproc)"; free -g | head -2; df -h /dev/shm | tail -1; uname -r

probe() {
  run timeout 240 "$CARRY/bin/probe_host_paths" /dev/shm/probe 4 "${PROBE_THREADS:-1,4,8,14}"
  rm -f /dev/shm/probe
}

checks() {
  run timeout 150 "$CARRY/bin/test_loaders"
  run timeout 90 "$CARRY/bin/test_engine" --gtest_filter='GpuEngine.*:MeetGuard*'
  run timeout 120 "$CARRY/bin/test_kernels_gpu"
  run timeout 60 "$CARRY/bin/test_kernels" --gtest_filter='BackendFactory.*'
}

blind() {
  run timeout 300 "$B" run --quiet --context 32k --suffix 128 --mode compute,cake,oracle --source mem \
    --store "$SHM" --bandwidth "${BLIND_BANDWIDTHS:-0.25gbps,0.5gbps,1gbps,2gbps}" --repeat 1 --warmup 0 \
    --verify token --out "$RES/blind"
  pack blind
}

calib() {
  # mem once; then the file source from /dev/shm, io_uring reads against copies out of a mapping,
  # alternating, three calls each (each the median of 3 loads), GPU checksums (the default there)
  mkdir -p "$RES/calib"
  run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source mem --repeat 2 --json-out "$RES/calib/mem.json"
  for round in 1 2 3; do
    for reads in uring map; do
      run timeout 90 "$B" calibrate --store "$CAL" --size 4GiB --source file --repeat 3 --no-fio --file-reads $reads \
        --json-out "$RES/calib/file-$reads-$round.json"
    done
  done
  run timeout 120 "$B" calibrate --store "$CAL" --size 4GiB --source file --bandwidth 1gbps..256gbps:x2,400gbps \
    --point-seconds 0.5 --no-fio --json-out "$RES/calib/file-throttle.json"
  rm -rf "$CAL"
  pack calib
}

sweep32file() {
  run timeout 590 "$B" run --quiet --context 32k --suffix 128 --mode compute,io,cake,oracle --source "file:$SHM" \
    --store "$SHM" --bandwidth 1gbps..256gbps:x2,400gbps,unlimited --repeat 2 --warmup 0 --verify token \
    --out "$RES/sweep32k-file"
  pack sweep32k-file
}

sweep64file() {
  run timeout 590 "$B" run --quiet --context 64k --suffix 128 --mode compute,io,cake,oracle --source "file:$SHM" \
    --store "$SHM" --bandwidth 16gbps..256gbps:x2,400gbps,unlimited --repeat 2 --warmup 0 --verify token \
    --out "$RES/sweep64k-file"
  pack sweep64k-file
}

high() {
  # The short points again with the default --max-point-time (3 s): rounds are added while a median
  # is noisier than 1% (relative standard error), so they are no longer 2-sample medians
  run timeout 400 "$B" run --quiet --context 32k --suffix 128 --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --store "$SHM" --bandwidth 64gbps,128gbps,256gbps,400gbps,unlimited --repeat 2 --warmup 0 --verify token \
    --out "$RES/sweep32k-high"
  pack sweep32k-high
  run timeout 300 "$B" run --quiet --context 64k --suffix 128 --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --store "$SHM" --bandwidth 256gbps,400gbps,unlimited --repeat 2 --warmup 0 --verify token \
    --out "$RES/sweep64k-high"
  pack sweep64k-high
}

top() {
  # 400 Gbps and unlimited (where a round takes 0.1-0.2 s and the host's memory sets the pace, noisy
  # from round to round) with a 12 s budget per group: 15-40 rounds, medians that hold still
  run timeout 200 "$B" run --quiet --context 32k --suffix 128 --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --store "$SHM" --bandwidth 400gbps,unlimited --repeat 3 --max-point-time 12 --warmup 0 --verify token \
    --out "$RES/top32k"
  pack top32k
  run timeout 250 "$B" run --quiet --context 64k --suffix 128 --mode compute,io,cake,oracle --source "mem,file:$SHM" \
    --store "$SHM" --bandwidth 400gbps,unlimited --repeat 3 --max-point-time 12 --warmup 0 --verify token \
    --out "$RES/top64k"
  pack top64k
}

mid() {
  # 32K from mem at 4, 16 and 64 Gbps: Cake's start (both lanes stood still 2 ms at the start before MeetGuard::load_decided)
  run timeout 200 "$B" run --quiet --context 32k --suffix 128 --mode compute,cake,oracle --source mem \
    --store "$SHM" --bandwidth 4gbps,16gbps,64gbps --repeat 2 --warmup 0 --verify token --out "$RES/mid32k"
  pack mid32k
}

for stage in "$@"; do
  case "$stage" in
    probe|checks|blind|calib|sweep32file|sweep64file|high|top|mid) "$stage" ;;
    *) echo "device_round5: unknown stage $stage"; status=1 ;;
  esac
done
exit $status
