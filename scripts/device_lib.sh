# Shared by the scripts run on the GPU machine (device_e2e.sh, device_load.sh, device_round2.sh):
# source it after setting RES (run folders) and OUT (what comes back).
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
