#!/usr/bin/env python3
"""The network total's scripts with the real PyTorch (Debian's python3-torch): torch_cpu_bench.py
times the smoke suite's cases, convbp show --torch adds them to a report's network total, and
plot.py draws the stacked bars (when matplotlib is there). Exit 77 (skipped) without torch.

Proves that PyTorch's results agree with what convbp measured: the same cases (names, keys,
passes from `convbp cases`), the asymmetric-padding case recorded as an error rather than timed
wrongly, and the PyTorch line's coverage in `convbp show`.

usage: test_network_scripts.py SOURCE_DIR WORK_DIR CONVBP_BINARY
"""
import json
import os
import subprocess
import sys


def check(condition, message):
    if not condition:
        print("FAILED: " + message)
        sys.exit(1)


def main():
    source, work, convbp = sys.argv[1], sys.argv[2], sys.argv[3]
    try:
        import torch  # noqa: F401
    except ImportError:
        print("SKIPPED: no torch in %s (Debian's python3-torch is in /usr/bin/python3)" %
              sys.executable)
        return 77
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("CONVBP", None)
    torch_json = os.path.join(work, "torch_cpu.json")
    run = subprocess.run([sys.executable, os.path.join(source, "scripts", "torch_cpu_bench.py"),
                          "smoke", "-o", torch_json, "--threads", "1", "--reps", "2",
                          "--min-rep-seconds", "0.001", "--convbp", convbp],
                         env=env, capture_output=True, text=True, cwd=source)
    check(run.returncode == 0, "torch_cpu_bench.py exit %d: %s" % (run.returncode, run.stderr))
    doc = json.load(open(torch_json))
    cases = json.loads(subprocess.run([convbp, "cases", "smoke", "--json"], capture_output=True,
                                      text=True, cwd=source, check=True).stdout)["cases"]
    check(doc["schema"] == "convbp.torch/1" and doc["complete"] and doc["device"] == "cpu",
          "header: %s" % {k: v for k, v in doc.items() if k != "cases"})
    check(doc["threads"] == 1, "threads: %s" % doc["threads"])
    check([(c["name"], c["problem"], c["pass"]) for c in doc["cases"]] ==
          [(c["name"], c["problem"], c["pass"]) for c in cases], "not convbp's cases")
    for c in doc["cases"]:
        if c["name"] == "smoke:odd":  # pad [1, 0, 2, 1]: PyTorch's padding is symmetric
            check("symmetric" in c.get("error", ""), "odd: %s" % c)
        else:
            check(c.get("time_ms", {}).get("median", 0) > 0, "not timed: %s" % c)

    report = os.path.join(work, "smoke.json")
    run = subprocess.run([convbp, "run", "smoke", "--impl", "im2col_gemm.*", "--reps", "1",
                          "--threads", "1", "-q", "-o", report], capture_output=True, text=True,
                         cwd=source)
    check(run.returncode == 0, "convbp run: %s" % run.stderr)
    check("network total" in run.stdout and "im2col_gemm.batched everywhere" in run.stdout,
          "run does not print the network total: %s" % run.stdout)
    run = subprocess.run([convbp, "show", report, "--torch", torch_json], capture_output=True,
                         text=True, cwd=source)
    check(run.returncode == 0, "show --torch: %s" % run.stderr)
    line = [l for l in run.stdout.splitlines() if "PyTorch" in l]
    check(line and "10 of 12 cases" in line[0], "PyTorch's line: %s" % run.stdout)

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("plot.py not checked: no matplotlib in %s" % sys.executable)
        return 0
    run = subprocess.run([sys.executable, os.path.join(source, "scripts", "plot.py"), report,
                          "--torch", torch_json, "-o", os.path.join(work, "smoke.png")],
                         capture_output=True, text=True)
    check(run.returncode == 0, "plot.py: %s" % run.stderr)
    check(os.path.getsize(os.path.join(work, "smoke-network.png")) > 0, "no network plot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
