#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (GPU tests skip without a GPU,
# saying why). Then rebuilds the I/O code under AddressSanitizer/LeakSanitizer and runs the
# loader and network tests again, so fd or buffer leaks fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
(cd build && ctest --output-on-failure -j "${JOBS:-$(nproc)}")
# Performance regression check on ratios against results/baselines/cpu-tiny, and proof that an
# injected compute slowdown is caught.
scripts/ci_regression.sh
if [[ "${CAKE_SKIP_ASAN:-0}" != 1 ]]; then
  echo "test: AddressSanitizer/LeakSanitizer pass over loaders and network (CPU-only build in build-asan)"
  BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh -DCAKE_SANITIZE=ON -DCAKE_ENABLE_CUDA=OFF -DCAKE_BUILD_BENCH=OFF
  (cd build-asan && ctest --output-on-failure -j "${JOBS:-$(nproc)}" -R "^(Store|FileSource|MemSource|Throttle|LoadPipeline|Tcp|Protocol|Server|EndToEnd|ShardedLoad.RankZero|PieceLedger|KvCodecPipeline|Crc32cEmulated)")
fi
