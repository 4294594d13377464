#!/usr/bin/env bash
# Builds the GPU binaries here and packs them for the GPU machine (the device tool), which has
# CUDA 13.0 and a driver but none of our build dependencies (no liburing, no apt):
#   $CARRY_DIR/bin/      stripped binaries
#   $CARRY_DIR/lib/      the non-system shared libraries they need
#   $CARRY_DIR/scripts/  this checkout's scripts (the device runs /work/main's checkout, whose
#                        scripts may be older than the binaries)
# Pass `carry: ["<CARRY_DIR relative to the repo root>"]` to the device run and start
# $CARRY_DIR/scripts/device_kernels.sh (or device_attn.sh) there.
# cuBLAS is not carried (hundreds of MB): the machine's own libcublas*.so.13 are used. Nor is
# cuDNN: the binaries load libcudnn.so.9 from PyTorch's wheel there (nvidia/cudnn/lib, put on
# LD_LIBRARY_PATH by the device scripts), whose version they print. The scripts check first that
# every binary loads.
#
# Environment: CARRY_DIR (default .carry; may be absolute, e.g. /work/main/.carry-attn from a
# helper's worktree), BUILD_DIR (default build-device, configured for sm_90a only, which keeps the
# binaries small and builds once), PACK_TARGETS (default: the GPU tests and the benchmarks;
# targets that do not exist in this checkout yet are skipped with a note), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-device}
CARRY_DIR=${CARRY_DIR:-.carry}
PACK_TARGETS=${PACK_TARGETS:-"test_kernels_gpu cake_bench_micro"}
JOBS=${JOBS:-2}
export PATH=/usr/local/cuda/bin:$PATH

if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CUDA_ARCHITECTURES=90a >/dev/null
fi

rm -rf "$CARRY_DIR"
mkdir -p "$CARRY_DIR/bin" "$CARRY_DIR/lib" "$CARRY_DIR/scripts"
for target in $PACK_TARGETS; do
  if ! ninja -C "$BUILD_DIR" -t query "$target" >/dev/null 2>&1; then
    echo "device_pack: no target $target in this checkout; skipped"
    continue
  fi
  ninja -C "$BUILD_DIR" -j "$JOBS" "$target"
  binary=$(find "$BUILD_DIR" -type f -name "$target" -perm -u+x | head -n 1)
  strip -o "$CARRY_DIR/bin/$target" "$binary"
  # Shared libraries that are neither glibc/libstdc++ (newer on the device) nor CUDA's own.
  ldd "$binary" | awk '/=> \// {print $3}' | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|libgcc_s.so*|libstdc++.so*|ld-linux*) ;;
      libcublas*|libcudart*|libcuda.so*|libcudnn*) ;;
      *) cp -Lu "$lib" "$CARRY_DIR/lib/" ;;
    esac
  done
done
cp scripts/*.sh scripts/*.py "$CARRY_DIR/scripts/"
git rev-parse HEAD > "$CARRY_DIR/commit"
git status --porcelain --untracked-files=no | sed 's/^/dirty: /' >> "$CARRY_DIR/commit"
du -sh "$CARRY_DIR"
ls -la "$CARRY_DIR/bin" "$CARRY_DIR/lib"
# The device tool sends the tracked files and the carry together, at most 64 MiB; results/ alone
# was 54 MB in round 7. A gzipped copy (a third of the size) travels when the plain one does not:
# carry ["${CARRY_DIR}z"] and start the command there with `tar xzf ${CARRY_DIR}z/carry.tgz && ...`.
tracked_bytes=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
carry_bytes=$(du -sb "$CARRY_DIR" | cut -f1)
if ((tracked_bytes + carry_bytes > 60 * 1024 * 1024)); then
  mkdir -p "${CARRY_DIR}z"
  tar czf "${CARRY_DIR}z/carry.tgz" "$CARRY_DIR"
  echo "device_pack: tracked files $((tracked_bytes >> 20)) MiB + carry $((carry_bytes >> 20)) MiB is near the device tool's 64 MiB;"
  echo "  carry [\"${CARRY_DIR}z\"] ($(du -h "${CARRY_DIR}z/carry.tgz" | cut -f1)) and start with: tar xzf ${CARRY_DIR}z/carry.tgz && ..."
fi
