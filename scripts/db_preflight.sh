#!/usr/bin/env bash
# Whether the project's CUDA kernel for db computes it right on this GPU, before a run relies on
# it (scripts/gpu_check.sh runs this first): bench/cudnn_db_bare checks every form of db on
# eleven small shapes, one round of timing each: six NCHW (f32, bf16 and f16; each group size of
# threads per row, 32, 64, 128 and 256; k over one block of stage 2) and five NHWC (k of 1, 5,
# 64 and 96, which share a tile of 256 threads among 256, 51, 4 and 2 threads per channel, and
# 300, two tiles; one chunk of rows and many, the last one short). The kernels are the default
# form of db, so a kernel that is wrong on a GPU would make every cuDNN weights result of the
# run incorrect; with `library`, the caller runs the rest on cuBLAS and cuDNN instead
# (CONVBP_CUDNN_DB=library) and still gets its comparison.
#
# usage: scripts/db_preflight.sh BUILD_DIR OUTPUT_FILE
#   prints one line, `CHOICE: REASON`, CHOICE being the CONVBP_CUDNN_DB to use:
#     kernel    the program printed the kernel's result on every shape, each within its bound
#               (positive evidence only: a fault that stops the program before it prints a
#               shape's line counts against the kernel);
#     library   anything else: a wrong db, a failed call, a crash, no end within 30 s
#               (OUTPUT_FILE holds the program's output);
#     none      the check does not apply: no kernel in this build, or no CUDA device.
#   exit status 0 (2 for bad arguments).
set -uo pipefail

if (($# != 2)); then
  echo "usage: scripts/db_preflight.sh BUILD_DIR OUTPUT_FILE" >&2
  exit 2
fi
bench="$1/bench/cudnn_db_bare"
out=$2
if [[ ! -x $bench ]]; then
  echo "none: $bench not built"
  exit 0
fi
keys=(n2_c3_h9_w9_k5_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1
  n3_c3_h20_w20_k300_r3_s3_st1x1_pad1x2x0x1_dil1x1_g1_bf16_nchw
  n4_c3_h64_w64_k17_r1_s1_st1x1_pad0x0x0x0_dil1x1_g1_f16_nchw
  n4_c3_h28_w28_k33_r1_s1_st1x1_pad0x0x0x0_dil1x1_g1
  n8_c3_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1
  n2_c3_h112_w112_k9_r1_s1_st1x1_pad0x0x0x0_dil1x1_g1_bf16_nchw
  n2_c3_h9_w9_k5_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1_f32_nhwc
  n3_c3_h20_w20_k300_r3_s3_st1x1_pad1x2x0x1_dil1x1_g1_bf16_nhwc
  n8_c3_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1_f16_nhwc
  n4_c3_h28_w28_k96_r1_s1_st1x1_pad0x0x0x0_dil1x1_g1_f32_nhwc
  n2_c3_h112_w112_k1_r1_s1_st1x1_pad0x0x0x0_dil1x1_g1_bf16_nhwc)
status=0
timeout -k 5 30 "$bench" --rounds 1 "${keys[@]}" > "$out" 2>&1 || status=$?
# A kernel line with its time and error, within its bound: "  kernel  0.0312 ms ... error 0.2 of
# its bound  a CUDA kernel (...)".
right=$(grep -cE '^  kernel +[0-9.]+ ms .* of its bound  ' "$out" || true)
if ((status == 77)); then
  echo "none: no CUDA device ($(head -1 "$out"))"
elif grep -q "^  kernel .*not in this build" "$out"; then
  echo "none: this build has no CUDA kernels"
elif grep -qE "^  kernel .*(WRONG|FAILED)" "$out"; then
  echo "library: the CUDA kernel computed a wrong db or failed: $(grep -m1 -E "^  kernel .*(WRONG|FAILED)" "$out" | sed -E 's/^ +//')"
elif ((right == ${#keys[@]})); then
  # The exit status may still be 1: another form was wrong, which the kernel does not depend on.
  echo "kernel: the CUDA kernel computed a right db on ${#keys[@]} shapes"
else
  echo "library: the kernel was shown right on $right of ${#keys[@]} shapes before the check ended (status $status; 124: not done in 30 s; above 128: a signal); its last line: $(tail -1 "$out" | sed -E 's/^ +//')"
fi
exit 0
