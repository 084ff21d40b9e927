#!/usr/bin/env python3
"""Times PyTorch's own choice of cuDNN backward convolution on a convbp suite's shapes.

For every layer, pass, dtype and layout of the suite ("dtypes", default ["f32"]; "layouts",
default ["nchw"]), with torch.backends.cudnn.benchmark = True (PyTorch times cuDNN's candidates
on the first call and keeps the fastest):

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

usage: torch_conv_bench.py CONFIG -o torch.json [--reps N] [--warmup N]
"""
import argparse
import contextlib
import json
import math
import os
import statistics
import sys


def int_or_pair(value, default):
    if value is None:
        return default, default
    if isinstance(value, int):
        return value, value
    return value[0], value[1]


def layers(config):
    """The suite's layers as dicts of ConvProblem fields (same defaults as harness/config.cpp)."""
    defaults = config.get("defaults", {})
    out = []
    for layer in config["layers"]:
        get = lambda key, fallback=None: layer.get(key, defaults.get(key, fallback))
        pad = get("pad", 0)
        if isinstance(pad, int):
            pad = [pad] * 4
        elif len(pad) == 2:
            pad = [pad[0], pad[1], pad[0], pad[1]]
        p = {
            "name": layer.get("name", "layer"),
            "n": get("n", 1), "c": get("c"), "h": get("h"), "k": get("k"), "r": get("r"),
            "groups": get("groups", 1), "count": get("count", 1), "pad": pad,
        }
        p["w"] = get("w", p["h"])
        p["s"] = get("s", p["r"])
        p["stride"] = int_or_pair(get("stride"), 1)
        p["dilation"] = int_or_pair(get("dilation"), 1)
        pt, pl, pb, pr = pad
        p["p"] = (p["h"] + pt + pb - ((p["r"] - 1) * p["dilation"][0] + 1)) // p["stride"][0] + 1
        p["q"] = (p["w"] + pl + pr - ((p["s"] - 1) * p["dilation"][1] + 1)) // p["stride"][1] + 1
        p["flops"] = 2 * p["n"] * p["k"] * p["p"] * p["q"] * (p["c"] // p["groups"]) * p["r"] * p["s"]
        p["key"] = ("n{n}_c{c}_h{h}_w{w}_k{k}_r{r}_s{s}_st{st[0]}x{st[1]}_pad{pd[0]}x{pd[1]}x{pd[2]}x{pd[3]}"
                    "_dil{d[0]}x{d[1]}_g{groups}").format(st=p["stride"], pd=pad, d=p["dilation"], **p)
        out.append(p)
    return out


# convbp's dtype names and PyTorch's.
TORCH_DTYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}


def typed_key(key, dtype, layout):
    """convbp's canonical key for a dtype and layout: f32 NCHW keeps the plain key, anything
    else appends _<dtype>_<layout> (impls/problem.h)."""
    if dtype == "f32" and layout == "nchw":
        return key
    suffix = "_%s_%s" % (dtype, layout)
    return key if key.endswith(suffix) else key + suffix


def variants(config):
    """(dtype, layout, tf32) in the order timed: TF32 off and on for f32, once for 16-bit."""
    out = []
    for dtype in config.get("dtypes", ["f32"]):
        for layout in config.get("layouts", ["nchw"]):
            out += [(dtype, layout, tf32) for tf32 in ((False, True) if dtype == "f32" else (False,))]
    return out


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
    args = ap.parse_args()

    with open(args.config) as f:
        config = json.load(f)
    suite = config.get("suite", "suite")
    passes = config.get("passes", ["data", "weights"])
    doc = {"schema": "convbp.torch/1", "config": args.config, "suite": suite, "complete": False,
           "cases": []}
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
        "settings": {"cudnn.benchmark": True, "warmup": args.warmup, "reps": args.reps,
                     "dtypes": config.get("dtypes", ["f32"]),
                     "layouts": config.get("layouts", ["nchw"])},
    })
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.deterministic = False
    gen = torch.Generator(device="cuda").manual_seed(1)

    def uniform(*shape):
        return torch.rand(*shape, device="cuda", generator=gen) * 2 - 1

    for p in layers(config):
        pt, pl, pb, pr = p["pad"]
        if pt != pb or pl != pr:
            print("skip %s: PyTorch's conv2d takes symmetric padding only" % p["name"], file=sys.stderr)
            continue
        kw = dict(stride=p["stride"], padding=(pt, pl), dilation=p["dilation"], groups=p["groups"])
        x32 = uniform(p["n"], p["c"], p["h"], p["w"])
        w32 = uniform(p["k"], p["c"] // p["groups"], p["r"], p["s"])
        dy32 = uniform(p["n"], p["k"], p["p"], p["q"])
        for dtype, layout, tf32 in variants(config):
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch_dtype = getattr(torch, TORCH_DTYPES[dtype])

            def prepare(t):
                t = t.to(torch_dtype)
                return t.contiguous(memory_format=torch.channels_last) if layout == "nhwc" else t

            x, w, dy = prepare(x32), prepare(w32), prepare(dy32)
            # Only bf16 and f16 run under autocast; f32 stays as before (TF32 per allow_tf32).
            autocast = (lambda: torch.autocast("cuda", dtype=torch_dtype)) if dtype != "f32" else None
            for pass_ in passes:
                case = {"name": "%s:%s" % (suite, p["name"]),
                        "problem": typed_key(p["key"], dtype, layout), "pass": pass_,
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
        del x32, w32, dy32
        torch.cuda.empty_cache()
        save(doc, args.output)  # after every layer: a run cut short keeps what it measured
    doc["complete"] = True
    save(doc, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
