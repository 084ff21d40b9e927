#!/usr/bin/env python3
"""Issue 13's CPU figures as Markdown tables, from convbp reports and torch_cpu_bench.py outputs.

  dtype_figures.py --convbp R1.json [R2.json ...] --torch T1.json [T2.json ...]

Each side may come from several rounds (the same suite run again, alternating convbp and
PyTorch): every side keeps its minimum over the rounds, per implementation for convbp (the
minimum of each implementation's median, then the fastest `ok` one is the pick) and per case
for PyTorch. Prints, per layout:

  1. convbp's bf16 pick against its f32 pick, per layer and pass, and the geometric mean
     (f32 ms / bf16 ms: above 1 means bf16 is faster);
  2. convbp's bf16 pick against PyTorch's bf16 convolution_backward (PyTorch ms / convbp ms:
     above 1 means convbp's pick is faster), and the same for f32;
  3. NHWC against NCHW for the same dtype (NCHW ms / NHWC ms), convbp's pick and PyTorch;
  4. what declined in the 16-bit cases, with convbp's reasons.

The PyTorch files are scripts/torch_cpu_bench.py's (convbp.torch/1, "device": "cpu"); a case's
dtype and layout are its own fields, else (a file written before they were recorded) read off
its key. The former torch_cpu_dtype_bench.py's convbp.torch_cpu/1 files are read too.
"""
import argparse
import json
import math
import re
import sys
from collections import OrderedDict


def load(path):
    with open(path) as f:
        return json.load(f)


def geomean(values):
    values = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def short_name(name):
    """The layer's name without the suite (`resnet50_bf16:`) and without the dtype and layout
    suffix convbp adds to the name of a case that is not f32 NCHW (`.bf16_nhwc`)."""
    return re.sub(r"\.(f32|bf16|f16)_(nchw|nhwc)$", "", name.split(":", 1)[-1])


def dtype_layout(key):
    """The dtype and layout a canonical key ends with (no suffix: f32 NCHW), as impls/problem.h
    spells it: `..._g1`, `..._g1_bf16`, `..._g1_bf16_nhwc`, `..._g1_f32_nhwc`."""
    parts = key.split("_")
    layout = parts.pop() if parts[-1] in ("nchw", "nhwc") else "nchw"
    dtype = parts[-1] if parts[-1] in ("f32", "bf16", "f16") else "f32"
    return dtype, layout


def convbp_side(paths):
    """{(layer, pass, dtype, layout): {"impl": pick, "ms": min over rounds, "declined": {...}}}"""
    per_impl = OrderedDict()  # (layer, pass, dtype, layout) -> {impl: ms}
    declined = OrderedDict()  # (dtype, layout, pass) -> {impl: why}
    context = None
    for path in paths:
        report = load(path)
        context = context or report.get("context", {})
        for case in report["cases"]:
            key = (short_name(case["name"]), case["pass"]) + dtype_layout(case["problem"])
            times = per_impl.setdefault(key, {})
            for r in case["results"]:
                if r["status"] == "ok":
                    ms = r["time_ms"]["median"]
                    times[r["impl"]] = min(ms, times.get(r["impl"], ms))
                elif r["status"] == "unsupported":
                    declined.setdefault((key[2], key[3], key[1]), OrderedDict()).setdefault(
                        r["impl"], r["why"])
    picks = {}
    for key, times in per_impl.items():
        if times:
            impl = min(times, key=times.get)
            picks[key] = {"impl": impl, "ms": times[impl]}
    return picks, declined, context


def torch_side(paths):
    """{(layer, pass, dtype, layout): {"ms": min over rounds} or {"error": PyTorch's refusal}}"""
    best, info = {}, None
    for path in paths:
        doc = load(path)
        schema, device = doc.get("schema"), doc.get("device", "cpu")
        if schema not in ("convbp.torch/1", "convbp.torch_cpu/1") or device != "cpu":
            sys.exit("dtype_figures.py: %s: schema %s on %s, expected convbp.torch/1 on cpu "
                     "(scripts/torch_cpu_bench.py's output)" % (path, schema, device))
        if "error" in doc:
            sys.exit("dtype_figures.py: %s: the PyTorch run failed: %s" % (path, doc["error"]))
        info = info or {k: doc.get(k) for k in ("torch", "threads", "mkldnn", "settings")}
        for case in doc["cases"]:
            dtype, layout = dtype_layout(case["problem"])
            key = (short_name(case["name"]), case["pass"], case.get("dtype", dtype),
                   case.get("layout", layout))
            if "time_ms" in case:
                ms = case["time_ms"]["median"]
                if key not in best or "ms" not in best[key] or ms < best[key]["ms"]:
                    best[key] = {"ms": ms}
            elif key not in best:
                best[key] = {"error": case.get("error", "")}
    return best, info


def fmt(ms):
    return "%.2f" % ms if ms is not None else "-"


def ratio(a, b):
    return a / b if a and b else None


def table_bf16_vs_f32(picks, layers, layout):
    print("\n**bf16 pick vs f32 pick, %s** (f32 ms / bf16 ms: above 1, bf16 is faster)\n"
          % layout.upper())
    print("| layer | pass | f32 pick | ms | bf16 pick | ms | f32 / bf16 |")
    print("|---|---|---|---:|---|---:|---:|")
    ratios = []
    for layer, pass_ in layers:
        f = picks.get((layer, pass_, "f32", layout))
        b = picks.get((layer, pass_, "bf16", layout))
        if not f or not b:
            continue
        r = ratio(f["ms"], b["ms"])
        ratios.append(r)
        print("| %s | %s | `%s` | %s | `%s` | %s | %.2f |" % (
            layer, pass_, f["impl"], fmt(f["ms"]), b["impl"], fmt(b["ms"]), r))
    print("| **geomean** | | | | | | **%.2f** |" % geomean(ratios))


def table_vs_torch(picks, torch, layers, layout):
    print("\n**convbp's pick vs PyTorch `convolution_backward`, %s** (PyTorch ms / convbp ms: "
          "above 1, convbp's pick is faster)\n" % layout.upper())
    print("| layer | pass | bf16: convbp | bf16: PyTorch | ratio | f32: convbp | f32: PyTorch "
          "| ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    ratios = {"bf16": [], "f32": []}
    for layer, pass_ in layers:
        cells = []
        for dtype in ("bf16", "f32"):
            c = picks.get((layer, pass_, dtype, layout))
            t = torch.get((layer, pass_, dtype, layout), {})
            r = ratio(t.get("ms"), c["ms"] if c else None)
            if r:
                ratios[dtype].append(r)
            cells += [fmt(c["ms"] if c else None), fmt(t.get("ms")) if "ms" in t else
                      t.get("error", "-")[:40], "%.2f" % r if r else "-"]
        print("| %s | %s | %s |" % (layer, pass_, " | ".join(cells)))
    print("| **geomean** | | | | **%.2f** | | | **%.2f** |" % (geomean(ratios["bf16"]),
                                                            geomean(ratios["f32"])))


def table_layouts(picks, torch, layers):
    print("\n**NHWC vs NCHW, same dtype** (NCHW ms / NHWC ms: above 1, NHWC is faster)\n")
    print("| layer | pass | f32: convbp | f32: PyTorch | bf16: convbp | bf16: PyTorch |")
    print("|---|---|---:|---:|---:|---:|")
    ratios = OrderedDict((k, []) for k in ("f32c", "f32t", "bf16c", "bf16t"))
    for layer, pass_ in layers:
        cells = []
        for dtype in ("f32", "bf16"):
            for side, name in ((picks, "c"), (torch, "t")):
                a = side.get((layer, pass_, dtype, "nchw"), {}).get("ms")
                b = side.get((layer, pass_, dtype, "nhwc"), {}).get("ms")
                r = ratio(a, b)
                if r:
                    ratios[dtype + name].append(r)
                cells.append("%.2f" % r if r else "-")
        print("| %s | %s | %s |" % (layer, pass_, " | ".join(cells)))
    print("| **geomean** | | %s |" % " | ".join("**%.2f**" % geomean(v) for v in ratios.values()))


def table_declined(declined):
    print("\n**Declined in the 16-bit cases** (convbp's `why`; identical reasons merged)\n")
    print("| dtype | implementation | where | why |")
    print("|---|---|---|---|")
    rows = OrderedDict()
    for (dtype, layout, pass_), impls in declined.items():
        if dtype == "f32":
            continue
        for impl, why in impls.items():
            why = re.sub(r"(data|weights)-pass", "<pass>", why)
            rows.setdefault((dtype, impl, why), []).append("%s %s" % (layout, pass_))
    for (dtype, impl, why), where in rows.items():
        print("| %s | `%s` | %s | %s |" % (dtype, impl, ", ".join(where), why.replace("|", "\\|")))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--convbp", nargs="+", required=True, help="convbp reports, one per round")
    ap.add_argument("--torch", nargs="*", default=[],
                    help="torch_cpu_bench.py outputs, one per round")
    args = ap.parse_args()
    picks, declined, context = convbp_side(args.convbp)
    torch, info = torch_side(args.torch) if args.torch else ({}, None)
    layers = list(OrderedDict.fromkeys((k[0], k[1]) for k in picks))
    print("convbp %s, %s, oneDNN %s, %s threads; PyTorch %s, %s threads; minimum over %d "
          "convbp and %d PyTorch rounds" % (
              context.get("convbp"), context.get("cpu", {}).get("model"),
              context.get("libraries", {}).get("onednn"), context.get("threads"),
              info and info.get("torch"), info and info.get("threads"), len(args.convbp),
              len(args.torch)))
    for layout in ("nchw", "nhwc"):
        table_bf16_vs_f32(picks, layers, layout)
    if torch:
        for layout in ("nchw", "nhwc"):
            table_vs_torch(picks, torch, layers, layout)
    table_layouts(picks, torch, layers)
    table_declined(declined)
    return 0


if __name__ == "__main__":
    sys.exit(main())
