#!/usr/bin/env python3
"""Compares convbp's best cuDNN entries with PyTorch's own choice, per shape and pass.

Reads a convbp report (convbp.report/1, from `convbp run configs/gpu_resnet50.json`) and the
JSON of scripts/torch_conv_bench.py, and writes a Markdown table per dtype and layout (f32 NCHW
first, under the heading-less table it always had; then f32 NHWC, bf16 NCHW, ...):

  f32, fp32:   the fastest correct `.fp32` entry (no tensor cores) vs PyTorch with allow_tf32 off
  f32, tf32:   the fastest correct entry of any kind (TF32 allowed, as PyTorch with allow_tf32 on
               may also pick a non-tensor-core algorithm) vs PyTorch with allow_tf32 on
  bf16, f16:   the fastest correct entry (`.fp32acc`: fp32 accumulation) vs PyTorch's autocast
               pick in that dtype and layout

A case's dtype and layout come from its canonical key (..._g1_bf16_nhwc; none: f32 NCHW).

ratio = convbp time / PyTorch time: below 1, convbp's choice is faster. TF/s counts the direct
convolution's flops (2*n*k*p*q*(c/g)*r*s) whatever the algorithm, as convbp reports do; "% peak"
is TF/s over the device's dense peak for the column: FP32 (CUDA cores) for the fp32 column, TF32
tensor cores for the tf32 column, BF16/FP16 tensor cores for bf16 and f16. The built-in peaks are
the H100/H200 SXM's (same GH100 compute, 132 SMs at 1.98 GHz): FP32 66.9, TF32 494.7, BF16 and
FP16 989.4 TF/s dense (https://glennklockwood.com/garden/processors/h100, "FP32 66.9, TF32
494.7 (matrix), FP16/BF16 989.4 (matrix)"; the H200 keeps the H100's compute:
https://itkb.uw.cz/2026/06/nvidia-h200-vs-b300-precisions-cores.html, "FP16 / BF16 (dense)
~989 TFLOPS"). On another GPU the column shows "-" unless --peaks gives its figures.

usage: gpu_compare.py REPORT TORCH_JSON [-o comparison.md] [--peaks fp32=67,tf32=495,bf16=989,f16=989]
"""
import argparse
import json
import math
import sys


def best(results, want):
    ok = [r for r in results if r.get("status") == "ok" and r.get("time_ms") and want(r["impl"])]
    return min(ok, key=lambda r: r["time_ms"]["median"]) if ok else None


def dtype_layout(key):
    """(dtype, layout) of a canonical key: its _<dtype>_<layout> suffix, f32 NCHW without one."""
    parts = key.split("_")
    if len(parts) >= 2 and parts[-2] in ("f32", "bf16", "f16") and parts[-1] in ("nchw", "nhwc"):
        return parts[-2], parts[-1]
    return "f32", "nchw"


# Dense peaks in TF/s of the GPUs whose name contains the key (module docstring: sources).
KNOWN_PEAKS = {"H200": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "f16": 989.4},
               "H100 80GB HBM3": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "f16": 989.4}}


def parse_peaks(text):
    peaks = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name.strip() not in ("fp32", "tf32", "bf16", "f16"):
            raise SystemExit("gpu_compare.py: --peaks: unknown column %r in %r (expected fp32, "
                             "tf32, bf16, f16)" % (name, text))
        try:
            peaks[name.strip()] = float(value)
        except ValueError:
            raise SystemExit("gpu_compare.py: --peaks: %r is not a number in %r" % (value, text))
    return peaks


GROUP_ORDER = [(d, l) for d in ("f32", "bf16", "f16") for l in ("nchw", "nhwc")]


def fmt_ms(ms):
    return "%.3f" % ms if ms is not None else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report")
    ap.add_argument("torch")
    ap.add_argument("-o", "--output", help="Markdown file (default: stdout only)")
    ap.add_argument("--peaks", help="the device's dense peaks in TF/s, e.g. fp32=66.9,tf32=494.7 "
                    "(default: built in for H100/H200 SXM)")
    args = ap.parse_args()

    report = json.load(open(args.report))
    try:
        torch = json.load(open(args.torch))
    except (OSError, ValueError) as e:
        torch = {"error": "cannot read %s: %s" % (args.torch, e), "cases": []}
    # Older torch.json files have no dtype or layout: their cases are f32 NCHW, keyed plainly.
    timed = {(c["problem"], c["pass"], c.get("tf32", False)): c for c in torch.get("cases", [])
             if "time_ms" in c}

    ctx = report.get("context", {})
    libs = ctx.get("libraries", {})
    lines = ["# convbp cuDNN entries vs PyTorch's choice", ""]
    lines.append("- GPU: %s" % ctx.get("gpu"))
    lines.append("- convbp %s: cuDNN %s, CUDA runtime %s, driver %s; report %s%s" % (
        ctx.get("convbp"), libs.get("cudnn"), libs.get("cuda_runtime"), libs.get("cuda_driver"),
        args.report, "" if report.get("complete", True) else " (INCOMPLETE: the run was cut short)"))
    if "error" in torch:
        lines.append("- PyTorch: not measured (%s)" % torch["error"])
    else:
        lines.append("- PyTorch %s (CUDA %s, its own cuDNN %s), cudnn.benchmark=True, median of %s "
                     "timings (short calls back to back, as convbp times its own) after %s warm-up "
                     "call(s)%s" % (
                         torch.get("torch"), torch.get("torch_cuda"), torch.get("torch_cudnn"),
                         torch["settings"]["reps"], torch["settings"]["warmup"],
                         "" if torch.get("complete") else " (INCOMPLETE: cut short)"))
    lines += ["- ratio = convbp / PyTorch time (< 1: convbp's pick is faster); weights = dw + db on "
              "both sides"]
    gpu_name = str(ctx.get("gpu"))
    peaks = parse_peaks(args.peaks) if args.peaks else next(
        (v for k, v in KNOWN_PEAKS.items() if k in gpu_name), {})
    lines.append("- %% peak: TF/s over the dense peak of the column's unit, %s" % (
        ", ".join("%s %.1f TF/s" % kv for kv in sorted(peaks.items())) + (
            " (--peaks)" if args.peaks else " (H100/H200 SXM datasheet figures; gpu_compare.py "
            "cites them)") if peaks else "unknown for this GPU (give --peaks)"))
    groups = {}
    for case in report.get("cases", []):
        groups.setdefault(dtype_layout(case["problem"]), []).append(case)
    winners, problems = [], []
    for group in sorted(groups, key=GROUP_ORDER.index):
        dtype, layout = group
        if dtype == "f32":
            columns = (("fp32", lambda n: n.endswith(".fp32"), False), ("tf32", lambda n: True, True))
        else:
            columns = ((dtype, lambda n: True, False),)
        if group != ("f32", "nchw"):
            lines += ["", "## %s %s%s" % (dtype, layout.upper(),
                                          "" if dtype == "f32" else " (fp32 accumulation; "
                                          "PyTorch under autocast)")]
        header = "| case | pass |" + "".join(
            " %s best | ms | TF/s | %% peak | PyTorch ms | ratio |" % c[0] for c in columns)
        lines += ["", header, "|---|---|" + "---|---:|---:|---:|---:|---:|" * len(columns)]
        ratios = {c[0]: [] for c in columns}
        cut_short = False
        for case in groups[group]:
            # A case the run was stopped in holds the entries that ran before the signal: its
            # best is shown, marked, and left out of the geometric means.
            interrupted = case.get("interrupted", False)
            cut_short = cut_short or interrupted
            row = [case["name"].split(":", 1)[-1] + (" *" if interrupted else ""), case["pass"]]
            for label, want, tf32 in columns:
                r = best(case["results"], want)
                t = timed.get((case["problem"], case["pass"], tf32))
                ms = r["time_ms"]["median"] if r else None
                torch_ms = t["time_ms"]["median"] if t else None
                ratio = ms / torch_ms if ms and torch_ms else None
                if ratio and not interrupted:
                    ratios[label].append(ratio)
                tflops = case["flops"] / (ms * 1e9) if ms else None
                peak = peaks.get(label)
                row += [r["impl"] if r else "-", fmt_ms(ms), "%.1f" % tflops if tflops else "-",
                        "%.1f" % (100 * tflops / peak) if tflops and peak else "-",
                        fmt_ms(torch_ms), "%.2f" % ratio if ratio else "-"]
                if r:
                    where = ("" if group == ("f32", "nchw") else
                             " " + layout if dtype != "f32" else " f32 " + layout)
                    winners.append("- %s %s%s %s: `%s` %s" % (row[0], case["pass"], where, label,
                                                              r["impl"], r.get("detail", "")))
            lines.append("| " + " | ".join(row) + " |")
            for r in case["results"]:
                if r.get("status") in ("incorrect", "error", "timeout", "crashed"):
                    problems.append("- %s %s `%s`: %s: %s" % (row[0], case["pass"], r["impl"],
                                                              r["status"], r.get("why", "")))
        lines.append("")
        if cut_short:
            lines += ["\\* interrupted: the run was stopped during this case; its best is of the "
                      "entries that ran before, and it is in no geometric mean below.", ""]
        for label, values in ratios.items():
            if values:
                name = label if group == ("f32", "nchw") else "%s %s" % (label, layout)
                geo = math.exp(sum(math.log(v) for v in values) / len(values))
                line = ("Geometric mean ratio, %s: %.3f over %d case(s), a speedup of %.2fx over "
                        "PyTorch; convbp's pick at least as fast in %d of them." % (
                            name, geo, len(values), 1 / geo, sum(v <= 1.0 for v in values)))
                # The targets hold every case within 1.02x of PyTorch's time, besides the geomean.
                line += " Within 1.02x of PyTorch in %d of %d." % (
                    sum(v <= 1.02 for v in values), len(values))
                lines.append(line)
    lines += ["", "## What won (engine configuration or algorithm)", ""] + winners
    lines += ["", "## Results that were not ok (incorrect, error, timeout, crashed): %d" % len(problems), ""]
    lines += problems
    text = "\n".join(lines) + "\n"
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
