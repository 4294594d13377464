#!/usr/bin/env bash
# Issue 17 on the GPU machine in one call: the KV codecs' GPU tests (GPU decode == CPU decode,
# bit-exact, and the load lane decoding into a device cache), the decode throughput next to the
# pinned copy rate of the same bytes, then llama-3-8b at 32K, cake and compute with codecs none,
# int8, int4 and cachegen at 4-64 Gbps from the mem source, with the codec quality table.
# Two repetitions, no warm-up (the untimed reference and quality runs before them warm the GPU):
# the device time of this session is short.
#
# Here: BUILD_DIR=build-device PACK_TARGETS="cake-bench test_loaders cake_bench_micro"
#       CARRY_DIR=/work/main/.carry-codec scripts/device_pack.sh
#       cp scripts/device_codecs.sh scripts/device_lib.sh /work/main/.carry-codec/scripts/
# There (device tool, carry [".carry-codec"]): bash .carry-codec/scripts/device_codecs.sh
set -uo pipefail
CARRY=${CARRY:-$PWD/.carry-codec}
OUT=${OUT:-/tmp/cake-codec-out}
mkdir -p "$OUT"
CUDNN_LIB_DIR=${CUDNN_LIB_DIR:-/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib}
export LD_LIBRARY_PATH=$CARRY/lib:$CUDNN_LIB_DIR:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
B=$CARRY/bin/cake-bench
RES=/tmp/cake-codec
SHM=/dev/shm/cake
mkdir -p "$RES" "$SHM"
source "$CARRY/scripts/device_lib.sh"

echo "commit: $(cat "$CARRY/commit" 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
echo "cores: $(nproc)"; df -h /dev/shm | tail -1

run timeout 60 "$CARRY/bin/test_loaders" --gtest_filter='KvCodec*'
run timeout 60 "$CARRY/bin/cake_bench_micro" --benchmark_filter='KvDecodeGpu|PinnedCopyOfAChunk' \
  --benchmark_out="$OUT/decode-bench.json" --benchmark_out_format=json
run timeout 420 "$B" run --quiet --context 32k --suffix 128 --mode compute,cake --codec none,int8,int4,cachegen \
  --bandwidth 4gbps,8gbps,16gbps,32gbps,64gbps --source mem --store "$SHM" --repeat 2 --warmup 0 \
  --out "$RES/ctx32k-codecs"
pack ctx32k-codecs
cp "$RES/ctx32k-codecs/results.md" "$OUT/ctx32k-codecs.md" 2>/dev/null
exit $status
