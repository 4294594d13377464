#!/usr/bin/env bash
# The 64K sweep of issue 13 on the GPU machine: llama-3-8b, 64K prefix, suffix 128, compute, io,
# cake and oracle, one repetition, no warm-up, token-verified. In two stages that fit about 4 min
# of device time each (a 64K prefix is 8.6 GB of KV: io-only alone takes 69 s at 1 Gbps):
#   high  16..256 Gbps x2, 400 Gbps and unlimited, from mem and file:/dev/shm   (~3 min)
#   low   1..8 Gbps x2, from mem only (the throttle alone sets the load rate there; the file
#         source held its target within 1% at those rates in calibrate)       (~3.5 min)
# Build and pack as for device_load2.sh (PACK_TARGETS="cake-bench"), then there:
#   CARRY=$PWD/.carry-DIR bash .carry-DIR/scripts/device_sweep64k.sh [high|low|both]
# SWEEP64K_BANDWIDTHS, SWEEP64K_SOURCES, SWEEP64K_MODES, SWEEP64K_REPEAT override a stage's choice.
# Results: $OUT/sweep64k-<stage>.tgz (results.md, .json, .csv, figures) and the echoed commands.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CARRY=${CARRY:-$(dirname "$HERE")}
OUT=${OUT:-/tmp/cake-sweep64k-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$CARRY/lib:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib:${LD_LIBRARY_PATH:-}
B=$CARRY/bin/cake-bench
RES=/tmp/cake-sweep64k-results
SHM=/dev/shm/cake
mkdir -p "$RES" "$SHM"
source "$HERE/device_lib.sh"

echo "commit: $(cat "$CARRY/commit" 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
echo "cores: $(nproc)"; df -h /dev/shm | tail -1

stage() {
  local name=$1 bandwidths=$2 sources=$3
  run timeout 290 "$B" run --quiet --context 64k --suffix 128 \
    --mode "${SWEEP64K_MODES:-compute,io,cake,oracle}" \
    --source "${SWEEP64K_SOURCES:-$sources}" --store "$SHM" \
    --bandwidth "${SWEEP64K_BANDWIDTHS:-$bandwidths}" \
    --repeat "${SWEEP64K_REPEAT:-1}" --warmup 0 --verify token --out "$RES/sweep64k-$name"
  pack "sweep64k-$name"
  cat "$RES/sweep64k-$name/results.md" 2>/dev/null | head -60
}

case "${1:-high}" in
  high) stage high "16gbps..256gbps:x2,400gbps,unlimited" "mem,file:$SHM" ;;
  low) stage low "1gbps..8gbps:x2" "mem" ;;
  both) stage high "16gbps..256gbps:x2,400gbps,unlimited" "mem,file:$SHM"; stage low "1gbps..8gbps:x2" "mem" ;;
  *) echo "usage: $0 [high|low|both]"; exit 2 ;;
esac
echo "device_sweep64k: overall status $status"
exit $status
