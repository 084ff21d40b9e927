#!/usr/bin/env python3
"""Plot a convbp report: per case and pass, the GF/s of every correct implementation, with the
machine's measured FMA peak as a line (Winograd's effective GF/s may exceed it).

When the report has a network total (its "network", docs/report.md), a second image beside
the first (OUT with -network before .png; one more per further dtype and layout) draws it: one stacked bar per strategy
(convbp's picks, each single strategy everywhere, PyTorch with --torch), the layers as the
stacks (count-weighted time, data + weights), each bar labelled with its total and, where it
does not cover every case, how many it covers.

usage: scripts/plot.py REPORT.json [-o OUT.png] [--torch TORCH.json]

--torch takes scripts/torch_cpu_bench.py's or scripts/torch_conv_bench.py's JSON (on a GPU the
TF32-allowed timings are used, PyTorch's default), measured on the same suite.

scripts/run draws it beside every report it writes. By hand, run it with Debian's interpreter,
/usr/bin/python3, which has matplotlib once scripts/run or scripts/test installed
python3-matplotlib (`python3` on PATH may be another interpreter without it).
"""
import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("report")
    ap.add_argument("-o", "--output", help="image file (default: REPORT with .png)")
    ap.add_argument("--torch", help="PyTorch timings (convbp.torch/1) to add to the network total")
    args = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot.py: needs matplotlib (apt-get install python3-matplotlib, then run with /usr/bin/python3)")
    with open(args.report) as f:
        doc = json.load(f)
    cases = doc["cases"]
    impls = []
    for c in cases:
        for r in c["results"]:
            if r["status"] == "ok" and r["impl"] not in impls:
                impls.append(r["impl"])
    labels = [f'{c["name"].split(":", 1)[-1]}\n{c["pass"]}' for c in cases]
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(cases) + 2), 5.5))
    width = 0.8 / max(1, len(impls))
    for i, impl in enumerate(impls):
        xs, ys = [], []
        for j, c in enumerate(cases):
            for r in c["results"]:
                if r["impl"] == impl and r["status"] == "ok":
                    xs.append(j + (i - (len(impls) - 1) / 2) * width)
                    ys.append(r["gflops"])
        ax.bar(xs, ys, width, label=impl)
    peak = doc["context"].get("peak_gflops")
    if peak:
        ctx = doc["context"]
        ax.axhline(peak, color="k", linestyle="--", linewidth=1,
                   label=f"FMA peak, measured ({peak:.0f} GF/s)")
        avx2 = ctx.get("peak_gflops_avx2")
        if avx2 and avx2 < peak:
            ax.axhline(avx2, color="gray", linestyle=":", linewidth=1,
                       label=f"AVX2 FMA peak, measured ({avx2:.0f} GF/s)")
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("GF/s (direct-convolution flops / median time)")
    ctx = doc["context"]
    title = f'{doc["settings"].get("suite", "")}: {ctx["cpu"]["model"]}, {ctx["threads"]} threads'
    core = ctx.get("openblas_core", {}).get("running")
    if core:
        title += f", OpenBLAS {core} kernels"
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    out = args.output or args.report.rsplit(".", 1)[0] + ".png"
    fig.savefig(out, dpi=110)
    print(out)
    if doc.get("network"):
        torch = None
        if args.torch:
            with open(args.torch) as f:
                torch = json.load(f)
            if torch.get("schema") != "convbp.torch/1":
                sys.exit("plot.py: %s: schema is not convbp.torch/1" % args.torch)
        # One total per dtype and layout: the first in OUT-network.png, the others with their
        # dtype and layout in the name.
        for i, network in enumerate(doc["network"]):
            suffix = "" if i == 0 else "-%s-%s" % (network["dtype"], network["layout"])
            network_out = out.rsplit(".", 1)[0] + "-network%s.png" % suffix
            plot_network(plt, doc, network, torch, network_out)
            print(network_out)
    elif args.torch:
        print("plot.py: the report has no network total (written before it existed, or nothing "
              "was timed); --torch ignored", file=sys.stderr)


def torch_strategy(network, torch):
    """PyTorch as one more strategy: per layer the count-weighted sum of its timed passes (the
    TF32-allowed timing where a GPU file has both), as `convbp show --torch` computes it."""
    times = {}
    for c in torch.get("cases", []):
        if "time_ms" not in c:
            continue
        key = (c["problem"], c["pass"])
        if key not in times or c.get("tf32", False):
            times[key] = c["time_ms"]["median"]
    layer_ms, covered, cases = [], 0, 0
    for layer in network["layers"]:
        total, any_pass = 0.0, False
        for p in network["passes"]:
            cases += 1
            ms = times.get((layer["problem"], p))
            if ms is not None:
                total += ms * layer["count"]
                covered += 1
                any_pass = True
        layer_ms.append(total if any_pass else None)
    where = torch.get("device", "")
    label = "PyTorch %s%s" % (torch.get("torch", ""), " on " + where if where else "")
    return {"description": label, "covered": covered, "cases": cases}, layer_ms


def plot_network(plt, doc, network, torch, out):
    strategies = [dict(s) for s in network["strategies"]]
    layers = network["layers"]
    columns = [[l["ms"][i] for l in layers] for i in range(len(strategies))]
    for s in strategies:
        s["cases"] = network["cases"]
    if torch is not None:
        s, ms = torch_strategy(network, torch)
        strategies.append(s)
        columns.append(ms)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(strategies) + 4), 6))
    colors = list(plt.cm.tab20.colors) + list(plt.cm.tab20b.colors) + list(plt.cm.tab20c.colors)
    xs = range(len(strategies))
    bottoms = [0.0] * len(strategies)
    for j, layer in enumerate(layers):
        heights = [col[j] or 0.0 for col in columns]
        ax.bar(xs, heights, 0.6, bottom=bottoms, color=colors[j % len(colors)],
               edgecolor="white", linewidth=0.3,
               label="%s x%d" % (layer["name"].split(":", 1)[-1], layer["count"]))
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    for x, s, total in zip(xs, strategies, bottoms):
        text = "%.4g ms" % total
        if s["covered"] < s["cases"]:
            text += "\ncovers %d of %d cases" % (s["covered"], s["cases"])
        ax.text(x, total, text, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([s["description"] for s in strategies], rotation=15, ha="right",
                       fontsize=8)
    ax.set_ylabel("backward time per step, ms (data + weights, each layer x its count)")
    ctx = doc["context"]
    variant = ("" if (network["dtype"], network["layout"]) == ("f32", "nchw") else
               " in %s %s" % (network["dtype"], network["layout"]))
    ax.set_title("%s: network total%s, %d convolutions in %d layers\n%s, %s threads" % (
        doc["settings"].get("suite", ""), variant, network["convolutions"], len(layers),
        ctx["cpu"]["model"] if not ctx.get("gpu") else ctx["gpu"], ctx["threads"]), fontsize=10)
    ax.set_ylim(0, max(bottoms) * 1.15 if max(bottoms) > 0 else 1)
    ax.legend(fontsize=6, ncol=1 if len(layers) <= 25 else 2, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), title="layer x count", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
