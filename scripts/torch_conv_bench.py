#!/usr/bin/env python3
"""Times PyTorch's own choice of cuDNN backward convolution on a convbp suite's shapes.

For every case of the suite (every layer, pass, dtype and layout, as `convbp cases` expands
it), with torch.backends.cudnn.benchmark = True (PyTorch times cuDNN's candidates on the first
call and keeps the fastest):

  f32:        once with TF32 off and once with it on
  bf16, f16:  under torch.autocast("cuda", dtype), on tensors of that dtype: autocast casts a
              convolution's input and weight to the dtype in the forward pass, so its backward
              is convolution_backward on 16-bit tensors (fp32 accumulation inside cuDNN), which
              is what is timed here; dw and db come out in the dtype
  nhwc:       every tensor in torch.channels_last (PyTorch then asks cuDNN for NHWC)

  data:    dx = torch.nn.grad.conv2d_input(...)
  weights: dw = torch.nn.grad.conv2d_weight(...) and db = dy.sum((0, 2, 3)), because convbp's
           weights pass produces db too (the time of dw alone is recorded beside it)

Calls are bracketed by CUDA events, as convbp's cuDNN plans are (short calls back to back, so
that launch latency is not counted: see time_call); the figure is the median over --reps
timings after --warmup untimed calls. Writes JSON (schema convbp.torch/1) that
scripts/gpu_compare.py reads beside a convbp report.

The shapes, keys and flops come from convbp itself (`convbp cases CONFIG --json`), so the
convbp binary must be built: --convbp PATH, else $CONVBP, else build-gpu/convbp or
build/convbp next to these scripts, else convbp on PATH. CONFIG is anything `convbp run`
takes: a suite name under configs/ or a file.

usage: torch_conv_bench.py CONFIG -o torch.json [--reps N] [--warmup N] [--convbp PATH]
                           [--pass data|weights] [--problem KEY]
"""
import argparse
import contextlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConvbpError(Exception):
    """No convbp binary, or convbp refused the suite (its message says why)."""


def find_convbp(given):
    """The convbp binary: --convbp, else $CONVBP, else a build next to these scripts
    (build-gpu/, as scripts/gpu_check.sh builds it, then build/), else convbp on PATH."""
    def runnable(path):
        return os.path.isfile(path) and os.access(path, os.X_OK)

    for label, path in (("--convbp", given), ("CONVBP=", os.environ.get("CONVBP"))):
        if path:
            if runnable(path):
                return path
            raise ConvbpError("%s%s%s: not an executable file" % (
                label, "" if label.endswith("=") else " ", path))
    tried = [os.path.join(ROOT, d, "convbp") for d in ("build-gpu", "build")]
    for path in tried:
        if runnable(path):
            return path
    found = shutil.which("convbp")
    if found:
        return found
    raise ConvbpError("no convbp binary: tried %s and PATH; build it (cmake --build build-gpu "
                   "--target convbp; scripts/gpu_check.sh does) or pass --convbp PATH" %
                   ", ".join(tried))


def convbp_cases(convbp, config, extra):
    """The suite's cases as convbp expands them (`convbp cases --json`): names, keys, shape
    fields, output sizes and flops come from convbp (impls/problem.h), never computed here."""
    try:
        run = subprocess.run([convbp, "cases", config, "--json"] + extra, capture_output=True,
                             text=True)
    except OSError as e:
        raise ConvbpError("cannot run %s: %s" % (convbp, e))
    if run.returncode != 0:
        raise ConvbpError("%s cases %s: exit %d: %s" % (convbp, config, run.returncode,
                                                     run.stderr.strip()))
    return json.loads(run.stdout)


def layers(cases):
    """The cases grouped by layer, in order (convbp lists every pass of a layer together): one
    dict of the first case's fields per layer, with the passes it runs."""
    out = []
    for case in cases["cases"]:
        if out and out[-1]["name"] == case["name"] and out[-1]["problem"] == case["problem"]:
            out[-1]["passes"].append(case["pass"])
        else:
            out.append(dict(case, passes=[case["pass"]]))
    return out


# convbp's dtype names and PyTorch's.
TORCH_DTYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}


def save(doc, path):
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(path + ".tmp", path)


def time_call(torch, fn, warmup, reps):
    """Median GPU time per call, as convbp's cuDNN plans measure it (impls/cudnn/common.cpp):
    a call under 1 ms is repeated back to back between the events (about 1 ms of work, at most
    32 calls) after one untimed call that keeps the GPU busy while the timed ones are enqueued,
    so that Python's and the host's launch latency is not counted; a longer call is timed alone."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start = torch.cuda.Event(enable_timing=True)
    stop = torch.cuda.Event(enable_timing=True)
    last, times = 0.0, []
    for _ in range(reps):
        calls = min(32, max(1, math.ceil(1.0 / last))) if last > 0 else 1
        if last < 1.0:
            fn()
        start.record()
        for _ in range(calls):
            fn()
        stop.record()
        stop.synchronize()
        last = start.elapsed_time(stop) / calls
        times.append(last)
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "reps": reps}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--convbp", help="the convbp binary (default: $CONVBP, build-gpu/convbp, "
                    "build/convbp, PATH)")
    ap.add_argument("--pass", dest="pass_", choices=["data", "weights"], help="only this pass")
    ap.add_argument("--problem", help="this one problem key instead of the suite's layers")
    args = ap.parse_args()

    doc = {"schema": "convbp.torch/1", "config": args.config, "complete": False, "cases": []}
    extra = (["--pass", args.pass_] if args.pass_ else []) + (
        ["--problem", args.problem] if args.problem else [])
    try:
        convbp = find_convbp(args.convbp)
        cases = convbp_cases(convbp, args.config, extra)
    except ConvbpError as e:  # said in the output too, so that the comparison says why
        doc["error"] = str(e)
        save(doc, args.output)
        print("torch_conv_bench.py: %s" % e, file=sys.stderr)
        return 2
    doc["suite"] = cases["suite"]
    try:
        import torch
        import torch.nn.grad as grad
    except Exception as e:  # no torch: say so in the output, do not fail the whole check
        doc["error"] = "cannot import torch: %s" % e
        save(doc, args.output)
        print(doc["error"], file=sys.stderr)
        return 1
    if not torch.cuda.is_available():
        doc["error"] = "torch.cuda.is_available() is False"
        save(doc, args.output)
        print(doc["error"], file=sys.stderr)
        return 1
    doc.update({
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "torch_cudnn": str(torch.backends.cudnn.version()),
        "device": torch.cuda.get_device_name(0),
        "settings": {"cudnn.benchmark": True, "warmup": args.warmup, "reps": args.reps},
    })
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.deterministic = False
    gen = torch.Generator(device="cuda").manual_seed(1)

    def uniform(*shape):
        return torch.rand(*shape, device="cuda", generator=gen) * 2 - 1

    for p in layers(cases):
        pt, pl, pb, pr = p["pad"]
        if pt != pb or pl != pr:
            print("skip %s: PyTorch's conv2d takes symmetric padding only" % p["name"], file=sys.stderr)
            continue
        kw = dict(stride=p["stride"], padding=(pt, pl), dilation=p["dilation"], groups=p["groups"])
        dtype, layout = p.get("dtype", "f32"), p.get("layout", "nchw")
        torch_dtype = getattr(torch, TORCH_DTYPES[dtype])

        def prepare(t):
            t = t.to(torch_dtype)
            return t.contiguous(memory_format=torch.channels_last) if layout == "nhwc" else t

        x = prepare(uniform(p["n"], p["c"], p["h"], p["w"]))
        w = prepare(uniform(p["k"], p["c"] // p["groups"], p["r"], p["s"]))
        dy = prepare(uniform(p["n"], p["k"], p["p"], p["q"]))
        # Only bf16 and f16 run under autocast; f32 runs with TF32 off, then on.
        autocast = (lambda: torch.autocast("cuda", dtype=torch_dtype)) if dtype != "f32" else None
        for tf32 in ((False, True) if dtype == "f32" else (False,)):
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
            for pass_ in p["passes"]:
                case = {"name": p["name"], "problem": p["problem"], "pass": pass_,
                        "tf32": tf32, "dtype": dtype, "layout": layout,
                        "autocast": dtype != "f32", "flops": p["flops"]}
                context = autocast() if autocast else contextlib.nullcontext()
                try:
                    with context:
                        if pass_ == "data":
                            t = time_call(torch, lambda: grad.conv2d_input(x.shape, w, dy, **kw),
                                          args.warmup, args.reps)
                        else:
                            t = time_call(torch, lambda: (grad.conv2d_weight(x, w.shape, dy, **kw),
                                                          dy.sum((0, 2, 3))), args.warmup, args.reps)
                            case["dw_only_ms"] = time_call(
                                torch, lambda: grad.conv2d_weight(x, w.shape, dy, **kw),
                                args.warmup, args.reps)["median"]
                    case["time_ms"] = t
                    case["tflops"] = p["flops"] / (t["median"] * 1e9)
                except RuntimeError as e:  # out of memory, an unsupported shape
                    case["error"] = str(e).splitlines()[0]
                    torch.cuda.empty_cache()
                doc["cases"].append(case)
                print("%-34s %-7s %-4s %-4s tf32=%-5s %s" % (case["name"], pass_, dtype, layout, tf32,
                      "%.3f ms" % case["time_ms"]["median"] if "time_ms" in case else case["error"]),
                      file=sys.stderr)
        del x, w, dy
        torch.cuda.empty_cache()
        save(doc, args.output)  # after every layer: a run cut short keeps what it measured
    doc["complete"] = True
    save(doc, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
