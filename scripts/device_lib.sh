# Shared by the scripts run on the GPU machine (device_e2e.sh, device_load.sh, device_round2.sh):
# source it after setting RES (run folders) and OUT (what comes back), or call device_setup below.
#   run CMD...   echo the command, time it, keep going on failure (status=1 remembers it)
#   pack NAME    $RES/NAME as $OUT/NAME.tgz (the device tool returns at most 8 files)
status=0
run() {
  echo; echo "=== $(date +%T) \$ $*"
  local t0=$SECONDS
  "$@"
  local rc=$?
  echo "=== exit $rc after $((SECONDS - t0)) s"
  [[ $rc -eq 0 ]] || status=1
}
pack() { tar -C "$RES" -czf "$OUT/$1.tgz" "$1" && echo "packed $1 ($(du -sh "$RES/$1" | cut -f1))"; }

# The common start of a device script kept under $CARRY/scripts (call after sourcing this file, with
# HERE set to that folder): CARRY (its parent, unless set), OUT (default /tmp/cake-out), the library
# path (carried libraries, PyTorch's cuDNN, CUDA), B (the carried cake-bench), RES ($1: run folders)
# and SHM (/dev/shm/cake), the folders made; then the commit and the machine, for the log.
device_setup() {
  CARRY=${CARRY:-$(dirname "$HERE")}
  OUT=${OUT:-/tmp/cake-out}
  mkdir -p "$OUT"
  CUDNN_LIB_DIR=${CUDNN_LIB_DIR:-/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib}
  export LD_LIBRARY_PATH=$CARRY/lib:$CUDNN_LIB_DIR:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
  B=$CARRY/bin/cake-bench
  RES=$1
  SHM=/dev/shm/cake
  mkdir -p "$RES" "$SHM"
  echo "commit: $(cat "$CARRY/commit" 2>/dev/null)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  echo "cores: $(nproc)"; free -g | head -2; df -h /dev/shm | tail -1; uname -r
}
