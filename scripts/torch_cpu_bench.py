#!/usr/bin/env python3
"""Times PyTorch's CPU backward convolution on a convbp suite's shapes, with convbp's threads.

For every layer and pass, the call PyTorch's autograd makes for a Conv2d's backward on the CPU,
torch.ops.aten.convolution_backward (it dispatches to oneDNN (mkldnn), its own slow_conv2d or
a depthwise kernel, as PyTorch decides), asked for what convbp's passes produce:

  data:     dx            (output_mask [True, False, False])
  weights:  dw and db     (output_mask [False, True, True]; convbp's weights pass makes db too)

Timing as convbp does on the CPU (harness/timing.cpp): --warmup untimed calls, then --reps
repetitions, each of as many back-to-back calls as fill --min-rep-seconds, timed on the host
clock; the figure is the median per-call time. Threads: torch.set_num_threads(--threads),
default convbp's own rule (OMP_NUM_THREADS when set, else every core), so that both sides run
the same threads. Writes JSON (schema convbp.torch/1, "device": "cpu") that `convbp show REPORT
--torch FILE` and `scripts/plot.py REPORT --torch FILE` add to the network total.

The shapes, keys and flops come from convbp (`convbp cases CONFIG --json`), found as
torch_conv_bench.py (the GPU sibling) finds it: --convbp PATH, else $CONVBP, else build-gpu/ or
build/convbp, else PATH. Run it with Debian's /usr/bin/python3, which has python3-torch.

usage: torch_cpu_bench.py CONFIG -o torch_cpu.json [--threads N] [--reps N] [--warmup N]
                          [--min-rep-seconds S] [--convbp PATH] [--pass data|weights]
                          [--problem KEY]
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_conv_bench import ConvbpError, convbp_cases, find_convbp, save  # noqa: E402

TORCH_DTYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}


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
    """Median per-call time in ms: reps repetitions, each of enough calls to last
    min_rep_seconds (the count fixed after the warm-up, as convbp's timing does)."""
    start = time.perf_counter()
    for _ in range(max(1, warmup)):
        fn()
    per_call = (time.perf_counter() - start) / max(1, warmup)
    calls = max(1, int(min_rep_seconds / per_call) if per_call > 0 else 1)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls * 1e3)
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "reps": reps, "iterations": calls}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--min-rep-seconds", type=float, default=0.02)
    ap.add_argument("--convbp", help="the convbp binary (default: $CONVBP, build-gpu/convbp, "
                    "build/convbp, PATH)")
    ap.add_argument("--pass", dest="pass_", choices=["data", "weights"], help="only this pass")
    ap.add_argument("--problem", help="this one problem key instead of the suite's layers")
    args = ap.parse_args()
    if args.threads < 1 or args.reps < 1 or args.warmup < 0:
        ap.error("--threads and --reps must be >= 1, --warmup >= 0")

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
    })
    gen = torch.Generator().manual_seed(1)

    def uniform(shape, dtype, layout):
        t = (torch.rand(*shape, generator=gen) * 2 - 1).to(getattr(torch, TORCH_DTYPES[dtype]))
        return t.contiguous(memory_format=torch.channels_last) if layout == "nhwc" else t

    conv = torch.ops.aten.convolution_backward
    for c in cases["cases"]:
        case = {"name": c["name"], "problem": c["problem"], "pass": c["pass"], "flops": c["flops"]}
        pt, pl, pb, pr = c["pad"]
        dtype, layout = c.get("dtype", "f32"), c.get("layout", "nchw")
        if pt != pb or pl != pr:
            case["error"] = "PyTorch's convolution takes symmetric padding only"
        elif dtype not in TORCH_DTYPES:
            case["error"] = "dtype %s has no PyTorch equivalent here" % dtype
        else:
            x = uniform((c["n"], c["c"], c["h"], c["w"]), dtype, layout)
            w = uniform((c["k"], c["c"] // c["groups"], c["r"], c["s"]), dtype, layout)
            dy = uniform((c["n"], c["k"], c["p"], c["q"]), dtype, layout)
            mask = [True, False, False] if c["pass"] == "data" else [False, True, True]
            stride, dilation, padding = list(c["stride"]), list(c["dilation"]), [pt, pl]

            def call():
                return conv(dy, x, w, [c["k"]], stride, padding, dilation, False, [0, 0],
                            c["groups"], mask)
            try:
                with torch.no_grad():
                    t = time_call(call, args.warmup, args.reps, args.min_rep_seconds)
                case["time_ms"] = t
                case["gflops"] = c["flops"] / (t["median"] * 1e6)
            except RuntimeError as e:  # an unsupported dtype or shape, out of memory
                case["error"] = str(e).splitlines()[0]
        doc["cases"].append(case)
        print("%-40s %-7s %s" % (case["name"], c["pass"], "%.3f ms" % case["time_ms"]["median"]
                                 if "time_ms" in case else case["error"]), file=sys.stderr)
        save(doc, args.output)  # after every case: a run cut short keeps what it measured
    doc["complete"] = True
    save(doc, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
