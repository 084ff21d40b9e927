#!/usr/bin/env bash
# The GPU check, on a machine with a CUDA device, cuDNN 9 and PyTorch (no network needed):
# configures and builds convbp with cuDNN (no oneDNN), runs the cuDNN tests, times PyTorch's
# choice on the GPU suite's shapes, runs the GPU suite, and compares the two.
#
# usage: scripts/gpu_check.sh [OUTDIR]        (default: results/gpu-<date>; ignored by git)
#   env: BUILD_DIR (default build-gpu), JOBS (default 16), BUDGET_SECONDS (default 290: the
#        whole check; the suite gets what the earlier steps leave and is stopped cleanly when
#        it runs out)
#
# OUTDIR receives: gpu.txt (nvidia-smi), configure.log, build.log, tests.log, torch.json and
# torch.log, gpu_report.json and suite.log, comparison.md, summary.txt.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${1:-results/gpu-$(date +%Y%m%d-%H%M%S)}
BUILD=${BUILD_DIR:-build-gpu}
BUDGET=${BUDGET_SECONDS:-290}
mkdir -p "$OUT"
: > "$OUT/summary.txt"  # a rerun into the same OUTDIR starts a fresh summary
start=$SECONDS
step() { echo "== [$((SECONDS - start)) s] $*" | tee -a "$OUT/summary.txt"; }
fail() {
  echo "FAILED: $1 (last lines of $2):" | tee -a "$OUT/summary.txt"
  tail -40 "$2"
  exit 1
}

# NVIDIA_TF32_OVERRIDE=0 would turn every TF32 path into strict fp32 (and 1 may force TF32):
# the comparison needs cuDNN's and PyTorch's own choices.
if [[ -n ${NVIDIA_TF32_OVERRIDE+x} ]]; then
  echo "NVIDIA_TF32_OVERRIDE was '$NVIDIA_TF32_OVERRIDE': unset for this check" | tee -a "$OUT/summary.txt"
  unset NVIDIA_TF32_OVERRIDE
fi

step "GPU"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader ||
  echo "nvidia-smi failed"; } > "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"

# cuDNN: the system's (apt puts it in /usr/include/x86_64-linux-gnu), else the nvidia-cudnn
# wheel that PyTorch brings (its lib/ must also be on the loader's path: cuDNN loads its
# sublibraries at run time).
cudnn_args=()
system_cudnn=0
for h in /usr/include/cudnn.h /usr/include/x86_64-linux-gnu/cudnn.h /usr/local/cuda/include/cudnn.h; do
  [[ -f $h ]] && system_cudnn=1
done
if ((system_cudnn == 0)); then
  root=$(python3 -c 'import nvidia.cudnn; print(list(nvidia.cudnn.__path__)[0])' 2>/dev/null || true)
  if [[ -n $root && -f $root/include/cudnn.h ]]; then
    echo "no system cuDNN: using PyTorch's wheel in $root" | tee -a "$OUT/summary.txt"
    cudnn_args=(-DCONVBP_CUDNN_ROOT="$root")
    export LD_LIBRARY_PATH="$root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
fi

step "configure ($BUILD)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCONVBP_WITH_CUDA=ON \
  -DCONVBP_WITH_ONEDNN=OFF "${cudnn_args[@]}" > "$OUT/configure.log" 2>&1 ||
  fail configure "$OUT/configure.log"
grep -E "convbp:" "$OUT/configure.log" || true

step "build"
cmake --build "$BUILD" -j"${JOBS:-16}" --target convbp convbp_tests > "$OUT/build.log" 2>&1 ||
  fail build "$OUT/build.log"
grep -E "warning" "$OUT/build.log" | head -20 || true

# A failing test is reported, and the measurements still run.
step "tests: cuDNN entries, and the generic sweep that includes them"
tests_status=0
timeout 90 "$BUILD/tests/convbp_tests" --gtest_filter='Cudnn*:Sweep/EveryImplementation.*' \
  > "$OUT/tests.log" 2>&1 || tests_status=$?
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests? ran" "$OUT/tests.log" | tail -20 || true
echo "tests exit status: $tests_status" | tee -a "$OUT/summary.txt"

step "PyTorch's choice (cudnn.benchmark, TF32 off and on)"
torch_status=0
timeout 90 python3 scripts/torch_conv_bench.py configs/gpu_resnet50.json -o "$OUT/torch.json" \
  > "$OUT/torch.log" 2>&1 || torch_status=$?
tail -5 "$OUT/torch.log"
echo "torch exit status: $torch_status" | tee -a "$OUT/summary.txt"

left=$((BUDGET - (SECONDS - start) - 10))
((left < 60)) && left=60
step "GPU suite (stops cleanly after ${left} s; the report keeps every finished case)"
suite_status=0
timeout -k 30 --signal=INT "$left" "$BUILD/convbp" run configs/gpu_resnet50.json -q \
  -o "$OUT/gpu_report.json" > "$OUT/suite.log" 2>&1 || suite_status=$?
head -40 "$OUT/suite.log"
echo "suite exit status: $suite_status (124: stopped by the budget, report incomplete)" |
  tee -a "$OUT/summary.txt"

step "comparison"
if [[ -f "$OUT/gpu_report.json" ]]; then
  python3 scripts/gpu_compare.py "$OUT/gpu_report.json" "$OUT/torch.json" -o "$OUT/comparison.md"
else
  echo "no report: see $OUT/suite.log" | tee -a "$OUT/summary.txt"
fi
step "done: $OUT"
[[ $tests_status -eq 0 && $suite_status -eq 0 && $torch_status -eq 0 ]]
