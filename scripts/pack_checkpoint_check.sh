#!/usr/bin/env bash
# Packs what scripts/device_checkpoints.sh needs on the GPU machine into DEST (default
# .carry-ckpt): the stripped cake-bench of BUILD_DIR (default build-device, sm_90a), the
# non-system shared libraries it links (as scripts/device_pack.sh does), the Python check and
# the driver, and the commit they were built from.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-device}
DEST=${1:-.carry-ckpt}
ninja -C "$BUILD_DIR" -j "${JOBS:-2}" cake-bench
rm -rf "$DEST"
mkdir -p "$DEST/bin" "$DEST/lib"
strip -o "$DEST/bin/cake-bench" "$BUILD_DIR/cli/cake-bench"
ldd "$BUILD_DIR/cli/cake-bench" | awk '/=> \// {print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|libgcc_s.so*|libstdc++.so*|ld-linux*) ;;
    libcublas*|libcudart*|libcuda.so*) ;;
    *) cp -Lu "$lib" "$DEST/lib/" ;;
  esac
done
if ninja -C "$BUILD_DIR" -t query test_kernels_gpu >/dev/null 2>&1; then
  ninja -C "$BUILD_DIR" -j "${JOBS:-2}" test_kernels_gpu
  strip -o "$DEST/bin/test_kernels_gpu" "$BUILD_DIR/tests/kernels/test_kernels_gpu"
fi
cp scripts/check_vs_transformers.py scripts/device_checkpoints.sh "$DEST/"
{ git rev-parse HEAD; git status --porcelain --untracked-files=no | sed 's/^/dirty: /'; } > "$DEST/commit"
du -sh "$DEST"
