#!/usr/bin/env bash
# The README's first command, repeated on an otherwise idle machine: waits until the machine has been
# idle for 5 s (under 3% busy), runs `cake-bench run --quiet` (the CPU default run), and keeps the run
# only if other processes used under 3% of the machine while it ran (from /proc/stat, less the run's
# own user+system time). The dev box has 2 cores: a compiler beside a run moves its medians by 10-50%.
# Usage: scripts/idle_runs.sh BINARY OUT_PREFIX KEEP [STORE_DIR]   (runs go to OUT_PREFIX-N/)
set -uo pipefail
B=$1; PFX=$2; WANT=$3; STORE=${4:-/tmp/cake-idle-store}
got=0; n=0
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }
while (( got < WANT )); do
  read -r b0 i0 < <(busy); sleep 5; read -r b1 i1 < <(busy)
  if (( (b1 - b0) * 100 / ((b1 - b0) + (i1 - i0) + 1) > 3 )); then continue; fi
  n=$((n + 1)); out=$PFX-$n
  read -r b0 i0 < <(busy)
  /usr/bin/time -f "%U %S" -o "$out.time" "$B" run --quiet --out "$out" --store "$STORE" > "$out.log" 2>&1
  read -r b1 i1 < <(busy)
  read -r u s < "$out.time"
  ours=$(python3 -c "print(round(($u + $s) * 100))")  # jiffies at 100 Hz
  other=$(( (b1 - b0) - ours )); total=$(( (b1 - b0) + (i1 - i0) ))
  if (( other * 100 / total < 3 )); then got=$((got + 1)); verdict=kept; else verdict=dropped; fi
  echo "$(date +%T) run $n: busy $((b1 - b0)) ours $ours other $other of $total jiffies: $verdict" | tee -a "$PFX.summary"
done
