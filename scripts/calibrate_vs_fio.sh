#!/usr/bin/env bash
# Holds the load lane (cake-bench calibrate: io_uring file source, O_DIRECT, read + checksum)
# against fio on the same store file, and checks the throttle at each bandwidth.
#   scripts/calibrate_vs_fio.sh [STORE_DIR] [OUT_JSON]
# Environment: SIZE (1GiB), QD (16), BS (1MiB), REPEAT (5), BANDWIDTHS (1gbps,4gbps,16gbps,64gbps),
# CAKE_BENCH (build/cli/cake-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
STORE_DIR=${1:-/tmp/cake-calibrate}
OUT=${2:-results/loaders/calibrate-$(hostname)-$(date +%Y%m%d-%H%M%S).json}
SIZE=${SIZE:-1GiB}
QD=${QD:-16}
BS=${BS:-1MiB}
REPEAT=${REPEAT:-5}
BANDWIDTHS=${BANDWIDTHS:-1gbps,4gbps,16gbps,64gbps}
CAKE_BENCH=${CAKE_BENCH:-build/cli/cake-bench}

[[ -x "$CAKE_BENCH" ]] || { echo "calibrate_vs_fio: $CAKE_BENCH not built (scripts/build.sh)" >&2; exit 2; }
mkdir -p "$(dirname "$OUT")"
echo "calibrate_vs_fio: load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$CAKE_BENCH" calibrate --store "$STORE_DIR" --size "$SIZE" --queue-depth "$QD" --request-size "$BS" \
  --repeat "$REPEAT" --bandwidth "$BANDWIDTHS" --json > "$OUT"
echo "calibrate_vs_fio: load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# The same reference through the job file, once, as an independent check of the command line
# calibrate builds (fio takes k/m suffixes as powers of 1024, like MiB).
if command -v fio >/dev/null 2>&1; then
  store=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["store"])' "$OUT")
  bs_fio=$(echo "$BS" | sed -e 's/MiB$/m/' -e 's/KiB$/k/' -e 's/GiB$/g/')
  FILE="$store" BS="$bs_fio" QD="$QD" fio scripts/fio/loader.fio --readonly --output-format=json > "$OUT.fio-jobfile.json"
  python3 - "$OUT" "$OUT.fio-jobfile.json" <<'PY'
import json, sys
cal = json.load(open(sys.argv[1]))
raw = open(sys.argv[2]).read()
job = json.loads(raw[raw.index("{"):])["jobs"][0]["read"]
jobfile_gbps = job["io_bytes"] / (job["runtime"] / 1e3) * 8 / 1e9
print(f"store {cal['store']}  qd {cal['queue_depth']}  request {cal['request_bytes']} B  runs {cal['repeat']}")
for p in cal["points"]:
    tgt = "unthrottled" if p["target_gbps"] is None else f"{p['target_gbps']:g} Gbps"
    fio = "-" if p["fio_gbps"] is None else f"{p['fio_gbps']:.3f}"
    ratio = p["ratio_to_fio"] if p["target_gbps"] is None else p["ratio_to_target"]
    ratio = "-" if ratio is None else f"{ratio:.3f}"
    won = f" ({p['fio_engine']}, {p['fio_jobs']} job(s))" if p.get("fio_engine") else ""
    print(f"{tgt:>12}  loader {p['loader_gbps']:.3f} Gbps  fio {fio}{won}  ratio {ratio}  runs {[round(x, 3) for x in p['loader_gbps_runs']]}")
    for c in p.get("fio_configs", []):
        if c["engine"] == "io_uring" and c["jobs"] == 1 and c["gbps"] is not None:
            print(f"{'':>12}  fio io_uring qd {c['iodepth']}, 1 job (the job file's configuration): {c['gbps']:.3f} Gbps")
print(f"fio via scripts/fio/loader.fio: {jobfile_gbps:.3f} Gbps")
PY
fi
echo "calibrate_vs_fio: wrote $OUT" >&2
