#!/usr/bin/env bash
# Issue 18's device run (kind nvidia-h200-x2): tensor-parallel prefill over NCCL.
# Usage there: bash $CARRY_DIR/scripts/device_tp.sh [check|sweep70|all]
#   check:   machine, GPU tests (GpuTp: NCCL bf16 sum, TP=2 vs TP=1 first token + logits' relative
#            error on llama-3-8b, gated prefill), llama-3-8b TP=1 vs TP=2 (scaling check), and the
#            one-process-per-rank bootstrap (two processes, one GPU each, unique id over a file)
#   sweep70: llama-3.1-70b at TP=2, 16K and 32K, compute/io/cake/oracle, mem source
#   cake8:   llama-3-8b TP=2 compute/io/cake again, and with one throttle shared by both ranks
# NVLink multicast stays off: NCCL_NVLS_ENABLE=0 (also set by the binary itself before NCCL loads),
# TORCH_SYMM_MEM_DISABLE_MULTICAST=1, NVSHMEM_DISABLE_NVLS=1, exported for every process started here.
set -uo pipefail
STAGE=${1:-all}
CARRY_DIR=${CARRY_DIR:-.carry-tp}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
OUT=${OUT:-/tmp/cake-tp-out}
mkdir -p "$OUT"
BIN=$PWD/$CARRY_DIR/bin
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
CUDNN_LIB_DIR=/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib
NCCL_LIB_DIR=/opt/torch/.venv/lib/python3.12/site-packages/nvidia/nccl/lib
export LD_LIBRARY_PATH=$PWD/$CARRY_DIR/lib:$CUDNN_LIB_DIR:$NCCL_LIB_DIR:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
# Stores in RAM when /dev/shm has room for them (about 30 GB here), else on the disk.
if [[ -z ${STORE:-} ]]; then
  if (( $(df --output=avail -B1G /dev/shm | tail -1) >= 60 )); then STORE=/dev/shm/cake-tp; else STORE=$PWD/../cake-tp-store; fi
fi
mkdir -p "$STORE"
LOG=$OUT/tp-$STAGE.log
step() { echo; echo "=== $* ($(date +%T))"; }
cb() { echo "+ cake-bench $*"; timeout "${CB_TIMEOUT:-400}" "$BIN/cake-bench" "$@"; echo "exit $?"; }

{
step "machine ($STAGE)"
nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.max.sm --format=csv
nvidia-smi topo -m
cat "$CARRY_DIR/commit"
df -h /dev/shm . | cat
env | grep -E 'NVLS|MULTICAST' | sort

if [[ $STAGE == check || $STAGE == all ]]; then
  step "GPU tests: tensor parallelism"
  timeout 200 "$BIN/test_kernels_gpu" --gtest_filter='GpuTp.*' 2>&1 | tail -40

  step "llama-3-8b TP=1 vs TP=2 (scaling check), mem source"
  for tp in 1 2; do
    cb run --model llama-3-8b --tp $tp --context 16k,32k --mode compute,io,cake --source mem --bandwidth 32gbps,unlimited \
      --repeat ${REP8:-1} --warmup 1 --verify full --store "$STORE" --out "$OUT/l8b-tp$tp" --quiet 2>&1 | grep -v '^\s*$' | tail -30
  done

  step "one process per rank: two processes, one GPU each, NCCL unique id over a file"
  rm -f /tmp/cake-tp-id
  for r in 0 1; do
    CUDA_VISIBLE_DEVICES=$r timeout 150 "$BIN/cake-bench" run --model llama-3-8b --tp 2 --tp-rank $r --tp-id-file /tmp/cake-tp-id \
      --context 16k --mode compute,io --source mem --bandwidth unlimited --repeat 1 --warmup 1 --verify token \
      --store "$STORE/mp" --out "$OUT/l8b-mp-rank$r" --quiet > "$OUT/mp-rank$r.txt" 2>&1 &
  done
  wait
  for r in 0 1; do echo "--- rank $r"; tail -25 "$OUT/mp-rank$r.txt"; done
  python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
def tokens(d):
    try:
        j = json.load(open(os.path.join(out, d, "results.json")))
    except Exception as e:
        return f"unreadable ({e})"
    return sorted({(p["context_tokens"], p["mode"], p["first_token"]) for p in j["points"]})
for d in ["l8b-tp1", "l8b-tp2", "l8b-mp-rank0", "l8b-mp-rank1"]:
    print(d, tokens(d))
PY
fi

if [[ $STAGE == cake8 ]]; then
  step "llama-3-8b TP=2 again (after the claim-agreement fix), and one throttle shared by both ranks"
  cb run --model llama-3-8b --tp 2 --context 16k,32k --mode compute,io,cake --source mem --bandwidth 32gbps,unlimited \
    --repeat ${REP8:-1} --warmup 1 --verify full --store "$STORE" --out "$OUT/l8b-tp2-fixed" --quiet 2>&1 | grep -v '^\s*$' | tail -30
  cb run --model llama-3-8b --tp 2 --tp-throttle shared --context 16k --mode io,cake --source mem --bandwidth 64gbps \
    --repeat 1 --warmup 1 --verify token --store "$STORE" --out "$OUT/l8b-tp2-shared" --quiet 2>&1 | grep -v '^\s*$' | tail -12
fi

if [[ $STAGE == sweep70 || $STAGE == all ]]; then
  for ctx in 16k 32k; do
    if [[ $ctx == 16k ]]; then bw=${BW70_16:-8gbps,16gbps,32gbps,64gbps,128gbps,256gbps,400gbps,unlimited}; else bw=${BW70_32:-8gbps,16gbps,32gbps,64gbps,128gbps,256gbps,400gbps,unlimited}; fi
    step "llama-3.1-70b TP=2, mem source, $ctx, $bw"
    CB_TIMEOUT=$([[ $ctx == 16k ]] && echo ${T70_16:-120} || echo ${T70_32:-170}) cb run --model llama-3.1-70b --tp 2 --context $ctx --mode compute,io,cake,oracle --source mem \
      --bandwidth $bw --repeat ${REP70:-1} --warmup ${WARM70:-0} --verify token \
      --store "$STORE" --out "$OUT/l70b-tp2-$ctx" --quiet 2>&1 | grep -v '^\s*$' | tail -60
    rm -f "$STORE"/*  # the next context's stores need the room
  done
fi
step "done"
} > "$LOG" 2>&1
# Keep what comes back small: the reports (json/csv/md) and one trace per folder.
for d in "$OUT"/*/; do
  [[ -d $d ]] || continue
  name=$(basename "$d")
  tar -C "$OUT" -czf "$OUT/$name.tgz" --exclude='*.svg' "$name" 2>/dev/null
  rm -rf "$d"
done
ls -la "$OUT"
