#!/usr/bin/env python3
"""Plot a convbp report: per case and pass, the GF/s of every correct implementation, with the
machine's measured FMA peak as a line (Winograd's effective GF/s may exceed it).

usage: scripts/plot.py REPORT.json [-o OUT.png]

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


if __name__ == "__main__":
    main()
