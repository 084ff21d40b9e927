#!/usr/bin/env bash
# The GPU check, on a machine with a CUDA device, cuDNN 9 and PyTorch (no network needed):
# configures and builds convbp with cuDNN (no oneDNN), runs the cuDNN tests, times PyTorch's
# choice on the GPU suite's shapes, runs the GPU suite, compares the two, and, with the time
# left, runs the generic sweep of 38 small shapes over every entry.
#
# usage: scripts/gpu_check.sh [OUTDIR]        (default: results/gpu-<date>; ignored by git)
#   env: BUILD_DIR (default build-gpu), JOBS (default 16), BUDGET_SECONDS (default 290: the
#        whole check; the suite gets what the earlier steps leave and is stopped cleanly when
#        it runs out; the sweep runs only if at least 30 s are left), GPU_CONFIG (default
#        configs/gpu_resnet50.json)
#
# OUTDIR receives nine files (what a device machine hands back): summary.txt (GPU, versions,
# each step's time and exit status), build.log (configure and build), tests.log (cuDNN tests,
# then the sweep), torch.json and torch.log, gpu_report.json and suite.log, comparison.md, and
# network.txt (the suite's network total: convbp's picks, cuDNN's legacy algorithms as
# cudnnFind picks them, PyTorch; `convbp show REPORT --torch torch.json`).
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${1:-results/gpu-$(date +%Y%m%d-%H%M%S)}
BUILD=${BUILD_DIR:-build-gpu}
BUDGET=${BUDGET_SECONDS:-290}
CONFIG=${GPU_CONFIG:-configs/gpu_resnet50.json}
mkdir -p "$OUT"
: > "$OUT/summary.txt"  # a rerun into the same OUTDIR starts afresh
start=$SECONDS
note() { echo "$*" | tee -a "$OUT/summary.txt"; }
step() { note "== [$((SECONDS - start)) s] $*"; }
fail() {
  note "FAILED: $1 (last lines of $2):"
  tail -40 "$2" | tee -a "$OUT/summary.txt"
  exit 1
}
left() { echo $((BUDGET - (SECONDS - start))); }

# NVIDIA_TF32_OVERRIDE=0 would turn every TF32 path into strict fp32 (and 1 may force TF32):
# the comparison needs cuDNN's and PyTorch's own choices.
if [[ -n ${NVIDIA_TF32_OVERRIDE+x} ]]; then
  note "NVIDIA_TF32_OVERRIDE was '$NVIDIA_TF32_OVERRIDE': unset for this check"
  unset NVIDIA_TF32_OVERRIDE
fi

step "GPU"
note "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 ||
  echo "nvidia-smi failed")"

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
    note "no system cuDNN: using PyTorch's wheel in $root"
    cudnn_args=(-DCONVBP_CUDNN_ROOT="$root")
    export LD_LIBRARY_PATH="$root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
fi

step "configure and build ($BUILD)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCONVBP_WITH_CUDA=ON \
  -DCONVBP_WITH_ONEDNN=OFF "${cudnn_args[@]}" > "$OUT/build.log" 2>&1 ||
  fail configure "$OUT/build.log"
grep -E "convbp:" "$OUT/build.log" | tee -a "$OUT/summary.txt" || true
cmake --build "$BUILD" -j"${JOBS:-16}" --target convbp convbp_tests >> "$OUT/build.log" 2>&1 ||
  fail build "$OUT/build.log"
grep -E "warning" "$OUT/build.log" | head -20 || true

# A failing test is reported, and the measurements still run.
step "tests: the cuDNN entries on the device"
tests_status=0
timeout 60 "$BUILD/tests/convbp_tests" --gtest_filter='Cudnn*' > "$OUT/tests.log" 2>&1 ||
  tests_status=$?
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests? ran|configurations$" "$OUT/tests.log" |
  tee -a "$OUT/summary.txt" || true
note "cuDNN tests exit status: $tests_status (124: stopped after 60 s)"

step "PyTorch's choice (cudnn.benchmark, TF32 off and on)"
torch_status=0
timeout 90 python3 scripts/torch_conv_bench.py "$CONFIG" -o "$OUT/torch.json" \
  --convbp "$BUILD/convbp" > "$OUT/torch.log" 2>&1 || torch_status=$?
tail -5 "$OUT/torch.log"
note "torch exit status: $torch_status (124: stopped after 90 s; torch.json keeps every layer done)"

# The sweep afterwards gets 30 s if there are more than 30 s left.
suite_seconds=$(($(left) - 10))
((suite_seconds < 60)) && suite_seconds=60
step "GPU suite (stops cleanly after ${suite_seconds} s; the report keeps every finished case)"
suite_status=0
timeout -k 30 --signal=INT "$suite_seconds" "$BUILD/convbp" run "$CONFIG" -q \
  -o "$OUT/gpu_report.json" > "$OUT/suite.log" 2>&1 || suite_status=$?
head -40 "$OUT/suite.log"
note "suite exit status: $suite_status (124: stopped by the budget, report incomplete)"

step "comparison"
if [[ -f "$OUT/gpu_report.json" ]]; then
  python3 scripts/gpu_compare.py "$OUT/gpu_report.json" "$OUT/torch.json" -o "$OUT/comparison.md"
  grep -E "^Geometric" "$OUT/comparison.md" >> "$OUT/summary.txt" || true
  # The network total with PyTorch beside it; without it when torch.json holds no timings.
  { "$BUILD/convbp" show "$OUT/gpu_report.json" --torch "$OUT/torch.json" 2>/dev/null ||
    "$BUILD/convbp" show "$OUT/gpu_report.json"; } | sed -n '/^network total/,$p' \
    > "$OUT/network.txt" || true
  head -8 "$OUT/network.txt" | tee -a "$OUT/summary.txt"
else
  note "no report: see $OUT/suite.log"
fi

sweep_status=skipped
if (($(left) >= 30)); then
  step "sweep: every entry on 38 small shapes (at most $(left) s)"
  sweep_status=0
  echo "==== sweep ====" >> "$OUT/tests.log"
  timeout "$(left)" "$BUILD/tests/convbp_tests" --gtest_filter='Sweep/EveryImplementation.*' \
    >> "$OUT/tests.log" 2>&1 || sweep_status=$?
  sed -n '/^==== sweep/,$p' "$OUT/tests.log" | grep -E "^\[  (PASSED|FAILED) " |
    tee -a "$OUT/summary.txt" || true
fi
note "sweep exit status: $sweep_status"
step "done: $OUT"
[[ $tests_status -eq 0 && $suite_status -eq 0 && $torch_status -eq 0 ]]
