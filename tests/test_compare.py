#!/usr/bin/env python3
"""scripts/compare.py on two small reports whose answers are known by hand.

Four results are timed in both reports, 5 samples each side. Where one side's samples all lie
below the other's, the exact two-sided Mann-Whitney p is 2 / C(10, 5) = 2/252 = 0.008. Where
they interleave with base ranks 1, 3, 5, 6, 8 of 10, U = 23 - 15 = 8, 4.5 from its mean 12.5,
and p = 2 * P(U <= 8) = 2 * 53/252 = 0.421 (53 of the 252 rank splits have U <= 8: the
counts of U = 0..8 are 1, 1, 2, 3, 5, 7, 9, 11, 14, the partitions of U into at most 5 parts
of at most 5). The verdicts need both p < 0.05 and a
change of at least 5%, so one clear but small speed-up is "same".

usage: test_compare.py SOURCE_DIR WORK_DIR   (exit 77, skipped, when SciPy is missing)
"""
import json
import math
import os
import subprocess
import sys


def fail(message):
    print("FAILED: " + message)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def report(results):
    """A convbp.report/1 with one data case per (layer, impl, samples, status)."""
    cases = []
    for layer, impl, samples, status in results:
        ok = status == "ok"
        median = sorted(samples)[len(samples) // 2]
        cases.append({
            "name": "t:" + layer, "problem": "key_" + layer, "pass": "data", "count": 1,
            "flops": 1e9, "results": [{
                "impl": impl, "status": status, "why": "",
                "time_ms": {"median": median, "samples": samples} if ok else None}]})
    return {"schema": "convbp.report/1", "complete": True, "context": {}, "settings": {},
            "cases": cases}


def main():
    try:
        import scipy  # noqa: F401
    except ImportError:
        print("SKIPPED: compare.py needs SciPy (python3-scipy), which this interpreter (%s) "
              "lacks" % sys.executable)
        sys.exit(77)
    source, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    base = report([
        ("slower", "x", [1, 2, 3, 4, 5], "ok"),
        ("small", "x", [100, 101, 102, 103, 104], "ok"),
        ("faster", "x", [10, 11, 12, 13, 14], "ok"),
        ("noisy", "x", [1, 10, 2, 20, 3], "ok"),
        ("only_base", "x", [1, 2, 3], "ok"),
        ("broken", "x", [1, 2, 3], "ok"),
    ])
    contender = report([
        ("slower", "x", [6, 7, 8, 9, 10], "ok"),
        ("small", "x", [96, 97, 98, 99, 99.5], "ok"),
        ("faster", "x", [5, 6, 7, 8, 9], "ok"),
        ("noisy", "x", [1.5, 11, 2.5, 21, 30], "ok"),
        ("broken", "x", [1, 2, 3], "incorrect"),
    ])
    paths = []
    for name, doc in (("base.json", base), ("new.json", contender)):
        paths.append(os.path.join(work, name))
        with open(paths[-1], "w") as f:
            json.dump(doc, f)
    run = subprocess.run([sys.executable, os.path.join(source, "scripts", "compare.py")] + paths,
                         capture_output=True, text=True)
    check(run.returncode == 0, "compare.py exit %d: %s" % (run.returncode, run.stderr))
    rows = {}
    for line in run.stdout.splitlines():
        cells = line.split()
        if len(cells) == 8 and cells[0].startswith("t:"):
            rows[cells[0][2:]] = cells
    check(sorted(rows) == ["faster", "noisy", "slower", "small"],
          "expected rows for the four results timed ok in both reports, got %s:\n%s"
          % (sorted(rows), run.stdout))
    expected = {  # layer: (base ms, new ms, change, p, verdict)
        "slower": ("3.000", "8.000", "+166.7%", "0.008", "slower"),
        "small": ("102.000", "98.000", "-3.9%", "0.008", "same"),
        "faster": ("12.000", "7.000", "-41.7%", "0.008", "faster"),
        "noisy": ("3.000", "11.000", "+266.7%", "0.421", "same"),
    }
    for layer, want in expected.items():
        got = tuple(rows[layer][3:])
        check(got == want, "%s: expected %s, got %s:\n%s" % (layer, want, got, run.stdout))
    geo = math.exp((math.log(8 / 3) + math.log(98 / 102) + math.log(7 / 12) + math.log(11 / 3)) / 4)
    check("geometric mean of new/base time over 4 results: %.3f" % geo in run.stdout,
          "geometric mean %.3f missing:\n%s" % (geo, run.stdout))
    print("compare.py: changes, p-values, verdicts and the geometric mean as worked out by hand")


if __name__ == "__main__":
    main()
