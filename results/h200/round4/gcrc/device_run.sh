#!/usr/bin/env bash
# gcrc device call: GPU tests of the GPU CRC-32C and the byte path, then calibrate (file source,
# /dev/shm, 4 GiB) with the checksum on the GPU and on the readers, 1 MiB and 4 MiB requests.
C=.carry-gcrc
export LD_LIBRARY_PATH=$C/lib:/usr/local/cuda/lib64:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib
L=$OUT/log.txt
{
echo "== commit"; cat $C/commit; date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc
echo "== tests"
echo "+ test_loaders --gtest_filter='Crc32c*:LoadPipeline.*:PieceLedger.*:KvCodecGpu.*'"
timeout 40 $C/bin/test_loaders --gtest_filter='Crc32c*:LoadPipeline.*:PieceLedger.*:KvCodecGpu.*' 2>&1 | grep -E "^\[ +(OK|FAILED|SKIPPED|PASSED) |GPU CRC|Failure|error|Expected|Which|actual" | head -80
} > $L 2>&1
run_cal() {
  local name=$1; shift
  echo "== calibrate $name" >> $L
  echo "+ cake-bench calibrate --store /dev/shm/cake/cal --size 4GiB --source file --repeat 3 --no-fio $*" >> $L
  timeout $T $C/bin/cake-bench calibrate --store /dev/shm/cake/cal --size 4GiB --source file --repeat 3 --no-fio "$@" --json-out $OUT/cal-$name.json >> $L 2>&1
  echo "rc $?" >> $L
}
T=45 run_cal gpu-1m --checksum gpu
T=25 run_cal cpu-1m --checksum cpu
T=25 run_cal gpu-4m --checksum gpu --request-size 4MiB
T=25 run_cal cpu-4m --checksum cpu --request-size 4MiB
echo "== throttle, 4 MiB requests" >> $L
timeout 20 $C/bin/cake-bench calibrate --store /dev/shm/cake/cal --size 4GiB --source file --repeat 1 --no-fio --checksum gpu --request-size 4MiB --bandwidth 2gbps,25gbps,100gbps,200gbps,400gbps --point-seconds 0.5 --json-out $OUT/cal-throttle-4m.json >> $L 2>&1
echo "rc $?" >> $L
date -u >> $L
