#!/usr/bin/env python3
"""Compare two convbp reports, like google/benchmark's tools/compare.py.

For every (problem, pass, implementation) timed in both reports: the relative change of the
median, a two-sided Mann-Whitney U test on the repetitions' samples, and a verdict that needs
both significance (p < alpha) and a minimum change (default 5%). Ends with the geometric mean
of the time ratios. Needs SciPy (Debian's python3-scipy, which scripts/run and scripts/test
install; run with /usr/bin/python3 if `python3` on PATH is another interpreter).

usage: scripts/compare.py BASELINE.json CONTENDER.json [--alpha 0.05] [--min-change 0.05]
"""
import argparse
import json
import math
import sys

try:
    from scipy.stats import mannwhitneyu
except ImportError:  # said in main(), after --help
    mannwhitneyu = None


def load(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"compare.py: {path}: {e}")
    if doc.get("schema") != "convbp.report/1":
        sys.exit(f"compare.py: {path}: not a convbp.report/1 file")
    times = {}
    for c in doc["cases"]:
        for r in c["results"]:
            if r["status"] == "ok" and r.get("time_ms"):
                t = r["time_ms"]
                times[(c["problem"], c["pass"], r["impl"])] = (c["name"], t["median"],
                                                               t.get("samples") or [t["median"]])
    return doc, times


def mann_whitney_p(a, b):
    """Two-sided p-value of the Mann-Whitney U test (SciPy's: exact for small samples without
    ties, the normal approximation with tie and continuity corrections otherwise). Samples
    that are all equal give no evidence of a change: p = 1."""
    p = mannwhitneyu(a, b, alternative="two-sided").pvalue
    return 1.0 if math.isnan(p) else float(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("baseline")
    ap.add_argument("contender")
    ap.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    ap.add_argument("--min-change", type=float, default=0.05,
                    help="smallest relative change that counts (default 0.05 = 5%%)")
    args = ap.parse_args()
    if mannwhitneyu is None:
        sys.exit("compare.py: needs SciPy (apt-get install python3-scipy, then run with "
                 "/usr/bin/python3)")
    _, base = load(args.baseline)
    _, cont = load(args.contender)
    common = [k for k in base if k in cont]
    if not common:
        sys.exit("compare.py: the reports share no timed (problem, pass, impl)")
    rows = [("case", "pass", "impl", "base ms", "new ms", "change", "p", "verdict")]
    log_sum = 0.0
    for key in common:
        name, b_med, b_s = base[key]
        _, c_med, c_s = cont[key]
        change = c_med / b_med - 1
        p = mann_whitney_p(b_s, c_s)
        significant = p < args.alpha and abs(change) >= args.min_change
        verdict = ("slower" if change > 0 else "faster") if significant else "same"
        log_sum += math.log(c_med / b_med)
        rows.append((name, key[1], key[2], f"{b_med:.3f}", f"{c_med:.3f}", f"{change:+.1%}",
                     f"{p:.3f}", verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) if i < 3 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))
    geo = math.exp(log_sum / len(common))
    print(f"\ngeometric mean of new/base time over {len(common)} results: {geo:.3f} "
          f"({'faster' if geo < 1 else 'slower'} by {abs(1 - geo):.1%})")
    if any(len(base[k][2]) < 4 or len(cont[k][2]) < 4 for k in common):
        print("note: some results have fewer than 4 samples; the U test cannot reach p < 0.05 "
              "with 3 vs 3 samples")


if __name__ == "__main__":
    main()
