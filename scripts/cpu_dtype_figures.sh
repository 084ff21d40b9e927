#!/usr/bin/env bash
# Issue 13's CPU figures (docs/dtypes.md): convbp and PyTorch on the same suite, alternating
# sides over ROUNDS rounds, then the tables (scripts/dtype_figures.py keeps each side's minimum).
#   scripts/cpu_dtype_figures.sh OUT_DIR [SUITE] [ROUNDS]
# SUITE defaults to resnet50_bf16, ROUNDS to 2. Environment: CONVBP (default build/convbp),
# THREADS (default 2, given to both sides), TORCH_PYTHON (default /usr/bin/python3, Debian's,
# which has python3-torch), IMPLS (default every CPU implementation but naive, the reference,
# which is 100 times slower and would only add minutes).
# Run it alone on the machine (on a shared one, under its lock) or the figures are noise.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out=${1:?usage: cpu_dtype_figures.sh OUT_DIR [SUITE] [ROUNDS]}
suite=${2:-resnet50_bf16}
rounds=${3:-2}
convbp=${CONVBP:-$root/build/convbp}
threads=${THREADS:-2}
python=${TORCH_PYTHON:-/usr/bin/python3}
impls=${IMPLS:-'im2col_gemm.*,winograd.*,onednn.*'}
mkdir -p "$out"
for round in $(seq 1 "$rounds"); do
  echo "round $round: convbp" >&2
  "$convbp" run "$suite" --threads "$threads" --impl "$impls" -q -o "$out/convbp-$round.json"
  echo "round $round: PyTorch" >&2
  "$python" "$root/scripts/torch_cpu_bench.py" "$suite" --threads "$threads" --convbp "$convbp" \
    -o "$out/torch-$round.json" 2>"$out/torch-$round.log"
done
"$python" "$root/scripts/dtype_figures.py" --convbp "$out"/convbp-*.json \
  --torch "$out"/torch-*.json | tee "$out/figures.md"
