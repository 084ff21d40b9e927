#!/usr/bin/env python3
"""Times PyTorch's CPU convolution backward on a convbp suite's cases, in their dtype and layout.

For every case of the suite (every layer, pass, dtype and layout, as `convbp cases` expands
it), the call timed is PyTorch's own backward of a convolution, the ATen operator autograd runs:

  torch.ops.aten.convolution_backward(dy, x, w, [k], stride, padding, dilation, False, [0, 0],
                                      groups, output_mask)
  data:     output_mask [True, False, False]: dx
  weights:  output_mask [False, True, True]:  dw and db (convbp's weights pass produces db too)

  dtype:    every tensor in the case's dtype (f32, bf16, f16); PyTorch's CPU convolutions go to
            oneDNN (mkldnn) for bf16 and for f32 where it chooses to, else to its own kernels
  layout:   nhwc puts x, w and dy in torch.channels_last, nchw keeps them contiguous

with torch.set_num_threads(--threads) (default: every CPU), so that PyTorch and convbp run on
the same number of threads. Each call is timed alone with time.perf_counter after --warmup
untimed calls; the figure is the median of --reps. A case PyTorch refuses (f16 convolutions
on CPU in PyTorch 1.13, for one) is recorded with PyTorch's message as "error".

The shapes, keys, counts and flops come from convbp itself (`convbp cases CONFIG --json`), as
in scripts/torch_conv_bench.py (the GPU script), so the convbp binary must be built: --convbp
PATH, else $CONVBP, else build-gpu/convbp or build/convbp next to these scripts, else convbp on
PATH. CONFIG is anything `convbp run` takes: a suite name under configs/ or a file.

Writes JSON (schema convbp.torch_cpu/1): one entry per case with its time, and "totals": per
dtype, layout and pass, the sum over layers of count x median (ms), the network's total for a
suite that lists every layer with its count. The file is rewritten after every case, so a run
cut short keeps what it measured ("complete": false until the end).

usage: torch_cpu_dtype_bench.py CONFIG -o torch_cpu.json [--threads N] [--reps N] [--warmup N]
                          [--convbp PATH] [--pass data|weights] [--problem KEY]
Exit status: 0 done, 1 PyTorch cannot be imported (said in the output file), 2 convbp failed.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_conv_bench import TORCH_DTYPES, ConvbpError, convbp_cases, find_convbp, save  # noqa: E402


def time_call(fn, warmup, reps):
    """Median wall time per call in ms, each call timed alone (a CPU call returns when done)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "reps": reps}


def backward_call(torch, p, x, w, dy):
    """The timed call for case p of `convbp cases --json`: PyTorch's convolution backward (the
    ATen operator autograd runs) for p's pass, returning (dx, dw, db) with None for what the
    pass does not compute. Symmetric padding only (PyTorch's convolution takes one pad a side)."""
    mask = [True, False, False] if p["pass"] == "data" else [False, True, True]
    pad = [p["pad"][0], p["pad"][1]]

    def call():
        return torch.ops.aten.convolution_backward(dy, x, w, [p["k"]], p["stride"], pad,
                                                   p["dilation"], False, [0, 0], p["groups"],
                                                   mask)
    return call


def totals(cases):
    """Per dtype, layout and pass: sum of count x median ms over the cases that ran."""
    out = {}
    for case in cases:
        if "time_ms" not in case:
            continue
        key = "%s/%s/%s" % (case["dtype"], case["layout"], case["pass"])
        entry = out.setdefault(key, {"dtype": case["dtype"], "layout": case["layout"],
                                     "pass": case["pass"], "ms": 0.0, "cases": 0})
        entry["ms"] += case["count"] * case["time_ms"]["median"]
        entry["cases"] += 1
    return sorted(out.values(), key=lambda e: (e["dtype"], e["layout"], e["pass"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="torch.set_num_threads (default: every CPU, %(default)s here)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--convbp", help="the convbp binary (default: $CONVBP, build-gpu/convbp, "
                    "build/convbp, PATH)")
    ap.add_argument("--pass", dest="pass_", choices=["data", "weights"], help="only this pass")
    ap.add_argument("--problem", help="this one problem key instead of the suite's layers")
    args = ap.parse_args()
    if args.threads < 1 or args.reps < 1 or args.warmup < 0:
        ap.error("--threads and --reps must be at least 1, --warmup at least 0")

    doc = {"schema": "convbp.torch_cpu/1", "config": args.config, "complete": False, "cases": []}
    extra = (["--pass", args.pass_] if args.pass_ else []) + (
        ["--problem", args.problem] if args.problem else [])
    try:
        convbp = find_convbp(args.convbp)
        cases = convbp_cases(convbp, args.config, extra)
    except ConvbpError as e:
        doc["error"] = str(e)
        save(doc, args.output)
        print("torch_cpu_dtype_bench.py: %s" % e, file=sys.stderr)
        return 2
    doc["suite"] = cases["suite"]
    try:
        import torch
    except Exception as e:  # no torch: say so in the output
        doc["error"] = "cannot import torch: %s" % e
        save(doc, args.output)
        print("torch_cpu_dtype_bench.py: %s" % doc["error"], file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    doc.update({
        "torch": torch.__version__,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "threads": torch.get_num_threads(),
        "settings": {"warmup": args.warmup, "reps": args.reps},
    })
    gen = torch.Generator().manual_seed(1)

    for p in cases["cases"]:
        dtype, layout = p.get("dtype", "f32"), p.get("layout", "nchw")
        case = {"name": p["name"], "problem": p["problem"], "pass": p["pass"], "dtype": dtype,
                "layout": layout, "count": p.get("count", 1), "flops": p["flops"]}
        pt, pl, pb, pr = p["pad"]
        if pt != pb or pl != pr:
            case["error"] = "PyTorch's convolution takes symmetric padding only"
        else:
            torch_dtype = getattr(torch, TORCH_DTYPES[dtype])
            memory_format = torch.channels_last if layout == "nhwc" else torch.contiguous_format

            def tensor(*shape):
                t = (torch.rand(*shape, generator=gen) * 2 - 1).to(torch_dtype)
                return t.contiguous(memory_format=memory_format)

            x = tensor(p["n"], p["c"], p["h"], p["w"])
            w = tensor(p["k"], p["c"] // p["groups"], p["r"], p["s"])
            dy = tensor(p["n"], p["k"], p["p"], p["q"])
            call = backward_call(torch, p, x, w, dy)
            try:
                t = time_call(call, args.warmup, args.reps)
                case["time_ms"] = t
                case["gflops"] = p["flops"] / (t["median"] * 1e6)
            except RuntimeError as e:  # a dtype or shape PyTorch's CPU backend does not take
                case["error"] = str(e).splitlines()[0]
            del x, w, dy
        doc["cases"].append(case)
        print("%-24s %-7s %-4s %-4s %s" % (case["name"], case["pass"], dtype, layout,
              "%.3f ms" % case["time_ms"]["median"] if "time_ms" in case else case["error"]),
              file=sys.stderr)
        doc["totals"] = totals(doc["cases"])
        save(doc, args.output)
    doc["complete"] = True
    save(doc, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
