#!/usr/bin/env python3
"""Times PyTorch's CPU convolution backward on a convbp suite's cases, in their dtype and layout.

For every case of the suite (every layer, pass, dtype and layout, as `convbp cases` expands
it), the call timed is PyTorch's own backward of a convolution, the ATen operator autograd runs
(it dispatches to oneDNN (mkldnn), its own slow_conv2d or a depthwise kernel, as PyTorch
decides):

  torch.ops.aten.convolution_backward(dy, x, w, [k], stride, padding, dilation, False, [0, 0],
                                      groups, output_mask)
  data:     output_mask [True, False, False]: dx
  weights:  output_mask [False, True, True]:  dw and db (convbp's weights pass produces db too)
  dtype:    every tensor in the case's dtype (f32, bf16, f16)
  layout:   nhwc puts x, w and dy in torch.channels_last, nchw keeps them contiguous

A case PyTorch refuses (f16 convolutions on the CPU in PyTorch 1.13, for one) is recorded with
PyTorch's message as "error"; so is asymmetric padding, which PyTorch's convolution cannot take.

Timing is convbp's CPU timing (harness/timing.cpp), so that both sides are measured alike:
--warmup untimed calls, then one more that sizes the repetitions (convbp sizes them on a warm
call too: its validation runs first, while PyTorch creates its oneDNN primitive on a case's
first call); then --reps repetitions, each of as many back-to-back calls as fill
--min-rep-seconds (the count fixed before the first),
timed on the host clock; the figure is the median of the repetitions' per-call times. It is
kept over timing each call alone because a short call's lone time carries the clock's and
Python's per-call overhead, while a call longer than --min-rep-seconds is timed alone anyway
(--min-rep-seconds 0 times every call alone; on ResNet-50's 3x3 layers, 4-20 ms a call, the
two agree within noise: docs/dtypes.md). Threads: torch.set_num_threads(--threads),
default convbp's own rule (OMP_NUM_THREADS when set, else every core).

The shapes, keys, counts and flops come from convbp itself (`convbp cases CONFIG --json`), as
in scripts/torch_conv_bench.py (the GPU sibling, whose helpers this reuses): --convbp PATH,
else $CONVBP, else build-gpu/convbp or build/convbp next to these scripts, else convbp on PATH.
CONFIG is anything `convbp run` takes: a suite name under configs/ or a file. Run it with
Debian's /usr/bin/python3, which has python3-torch.

Writes JSON, schema convbp.torch/1 with "device": "cpu" (docs/report.md): per case its dtype,
layout, count and time (median/min/max ms, reps, iterations) and GF/s, or "error"; and
"totals": per dtype, layout and pass, the sum over cases of count x median ms. `convbp show
REPORT --torch FILE` and `scripts/plot.py REPORT --torch FILE` add it to a report's network
total; scripts/dtype_figures.py compares it with convbp per dtype and layout. The file is
rewritten after every case, so a run cut short keeps what it measured ("complete": false
until the end).

usage: torch_cpu_bench.py CONFIG -o OUT.json [--threads N] [--reps N] [--warmup N]
                          [--min-rep-seconds S] [--convbp PATH] [--pass data|weights]
                          [--problem KEY]
Exit status: 0 done, 1 PyTorch cannot be imported (said in the output file), 2 convbp failed
(said in the output file) or bad arguments.
"""
import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_conv_bench import TORCH_DTYPES, ConvbpError, convbp_cases, find_convbp, save  # noqa: E402


def default_threads():
    """convbp's default (impls/registry.cpp set_threads): OMP_NUM_THREADS, else every core."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
        if n > 0:
            return n
    except ValueError:
        pass
    return os.cpu_count() or 1


def time_call(fn, warmup, reps, min_rep_seconds):
    """Per-call ms as convbp's measure() takes it: after the warm-up, one call's time sizes a
    repetition to at least min_rep_seconds of back-to-back calls; the median of reps."""
    def lone_call():
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    for _ in range(warmup):
        fn()
    single = lone_call()
    calls = max(1, math.ceil(min_rep_seconds / max(single, 1e-9)))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls * 1e3)
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "reps": reps, "iterations": calls}


def backward_call(torch, p, x, w, dy):
    """The timed call for case p of `convbp cases --json`: PyTorch's convolution backward for
    p's pass, returning (dx, dw, db) with None for what the pass does not compute. Symmetric
    padding only (PyTorch's convolution takes one pad a side)."""
    mask = [True, False, False] if p["pass"] == "data" else [False, True, True]
    pad = [p["pad"][0], p["pad"][1]]

    def call():
        return torch.ops.aten.convolution_backward(dy, x, w, [p["k"]], p["stride"], pad,
                                                   p["dilation"], False, [0, 0], p["groups"],
                                                   mask)
    return call


def why_not_timed(p):
    """Why case p cannot be given to PyTorch at all, or None."""
    pt, pl, pb, pr = p["pad"]
    if pt != pb or pl != pr:
        return "PyTorch's convolution takes symmetric padding only"
    if p.get("dtype", "f32") not in TORCH_DTYPES:
        return "dtype %s has no PyTorch equivalent here" % p["dtype"]
    return None


def measure(torch, gen, p, args):
    """Times case p in its dtype and layout: {"time_ms", "gflops"}, or {"error": PyTorch's
    first line} for a dtype or shape its CPU backend does not take (or out of memory)."""
    torch_dtype = getattr(torch, TORCH_DTYPES[p.get("dtype", "f32")])
    memory_format = (torch.channels_last if p.get("layout", "nchw") == "nhwc"
                     else torch.contiguous_format)

    def tensor(*shape):
        t = (torch.rand(*shape, generator=gen) * 2 - 1).to(torch_dtype)
        return t.contiguous(memory_format=memory_format)

    try:
        x = tensor(p["n"], p["c"], p["h"], p["w"])
        w = tensor(p["k"], p["c"] // p["groups"], p["r"], p["s"])
        dy = tensor(p["n"], p["k"], p["p"], p["q"])
        with torch.no_grad():
            t = time_call(backward_call(torch, p, x, w, dy), args.warmup, args.reps,
                          args.min_rep_seconds)
        return {"time_ms": t, "gflops": p["flops"] / (t["median"] * 1e6)}
    except RuntimeError as e:
        return {"error": (str(e).splitlines() or [type(e).__name__])[0]}


def totals(cases):
    """Per dtype, layout and pass: sum of count x median ms over the cases that ran."""
    out = {}
    for case in cases:
        if "time_ms" not in case:
            continue
        key = (case["dtype"], case["layout"], case["pass"])
        entry = out.setdefault(key, {"dtype": case["dtype"], "layout": case["layout"],
                                     "pass": case["pass"], "ms": 0.0, "cases": 0})
        entry["ms"] += case["count"] * case["time_ms"]["median"]
        entry["cases"] += 1
    return [out[key] for key in sorted(out)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--threads", type=int, default=default_threads(),
                    help="torch.set_num_threads (default: convbp's, %(default)s here)")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed calls first (default 1)")
    ap.add_argument("--min-rep-seconds", type=float, default=0.02,
                    help="back-to-back calls fill a repetition to this (default 0.02; "
                    "0: every call alone)")
    ap.add_argument("--convbp", help="the convbp binary (default: $CONVBP, build-gpu/convbp, "
                    "build/convbp, PATH)")
    ap.add_argument("--pass", dest="pass_", choices=["data", "weights"], help="only this pass")
    ap.add_argument("--problem", help="this one problem key instead of the suite's layers")
    args = ap.parse_args(argv)
    if args.threads < 1 or args.reps < 1 or args.warmup < 0 or not args.min_rep_seconds >= 0:
        ap.error("--threads and --reps must be at least 1, --warmup and --min-rep-seconds "
                 "at least 0")

    doc = {"schema": "convbp.torch/1", "config": args.config, "device": "cpu",
           "call": "aten.convolution_backward", "complete": False, "cases": []}
    extra = (["--pass", args.pass_] if args.pass_ else []) + (
        ["--problem", args.problem] if args.problem else [])
    try:
        cases = convbp_cases(find_convbp(args.convbp), args.config, extra)
    except ConvbpError as e:
        doc["error"] = str(e)
        save(doc, args.output)
        print("torch_cpu_bench.py: %s" % e, file=sys.stderr)
        return 2
    doc["suite"] = cases["suite"]
    try:
        import torch
    except Exception as e:  # no torch: say so in the output
        doc["error"] = "cannot import torch: %s (run with /usr/bin/python3)" % e
        save(doc, args.output)
        print("torch_cpu_bench.py: %s" % doc["error"], file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    doc.update({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "settings": {"warmup": args.warmup, "reps": args.reps,
                     "min_rep_seconds": args.min_rep_seconds},
        "totals": [],
    })
    gen = torch.Generator().manual_seed(1)

    for p in cases["cases"]:
        case = {"name": p["name"], "problem": p["problem"], "pass": p["pass"],
                "dtype": p.get("dtype", "f32"), "layout": p.get("layout", "nchw"),
                "count": p.get("count", 1), "flops": p["flops"]}
        why = why_not_timed(p)
        case.update({"error": why} if why else measure(torch, gen, p, args))
        doc["cases"].append(case)
        doc["totals"] = totals(doc["cases"])
        print("%-40s %-7s %-4s %-4s %s" % (
            case["name"], case["pass"], case["dtype"], case["layout"],
            "%.3f ms" % case["time_ms"]["median"] if "time_ms" in case else case["error"]),
            file=sys.stderr)
        save(doc, args.output)  # after every case: a run cut short keeps what it measured
    doc["complete"] = True
    save(doc, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
