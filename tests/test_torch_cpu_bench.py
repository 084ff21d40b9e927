#!/usr/bin/env python3
"""Tests of scripts/torch_cpu_bench.py and of the three readers of its output, run by ctest.

  test_torch_cpu_bench.py SOURCE_DIR CONVBP WORK_DIR

Without PyTorch:
1. Timing is convbp's (harness/timing.cpp), on a virtual clock: after the warm-up, one call
   sizes a repetition to --min-rep-seconds of back-to-back calls, the median per call;
   --min-rep-seconds 0 times each call alone.
2. Exit statuses as documented, each said in the output file too: 2 when convbp cannot be run,
   1 when PyTorch cannot be imported.
With PyTorch (else exit 77, ctest's SKIP_RETURN_CODE):
3. The call it times is the backward it claims: on a small strided, grouped, dilated shape
   (from `convbp cases --problem`), backward_call's dx equals torch.nn.grad.conv2d_input's, its
   dw conv2d_weight's and its db dy summed over n, h, w, in f32 NCHW and NHWC.
4. The script end to end on a tiny suite in f32, bf16 and f16, NCHW and NHWC, both passes, one
   layer with asymmetric padding: exactly convbp's cases (names, keys, passes), each with a
   positive time or a refusal in words (asymmetric padding; f16 where PyTorch refuses it), the
   thread count asked for, totals per dtype, layout and pass equal to count x median, and the
   file rewritten after every case with "complete": false until the end.
5. Its readers: `convbp show --torch` adds PyTorch to the network total with its coverage;
   scripts/dtype_figures.py reads it (and reads alike a file without the dtype, layout and
   count fields, as the former network script wrote, and a former convbp.torch_cpu/1 file),
   refuses a GPU file by name, and prints the convbp-vs-PyTorch tables; scripts/plot.py draws
   the network bars with it (when matplotlib is there).
"""
import copy
import json
import os
import subprocess
import sys
import time

SKIP = 77
# Odd sizes, stride 2x1, dilation 1x2, 2 groups, batch 3: a wrong argument order shows.
PROBLEM = "n3_c4_h9_w7_k6_r3_s2_st2x1_pad1x1x1x1_dil1x2_g2"


def check(condition, message):
    if not condition:
        print("FAIL: " + message)
        sys.exit(1)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def test_timing(bench):
    clock, calls = [0.0], [0]

    def call():  # 1 ms of virtual time per call
        calls[0] += 1
        clock[0] += 1e-3

    real = time.perf_counter
    time.perf_counter = lambda: clock[0]
    try:
        t = bench.time_call(call, warmup=2, reps=3, min_rep_seconds=0.0105)
        check(t["iterations"] == 11 and calls[0] == 2 + 1 + 3 * 11 and t["reps"] == 3 and
              abs(t["median"] - 1.0) < 1e-9, "warm-up 2, 10.5 ms a rep of 1 ms calls: %s, "
              "%d calls" % (t, calls[0]))
        calls[0] = 0
        t = bench.time_call(call, warmup=0, reps=2, min_rep_seconds=0.003)
        check(t["iterations"] == 3 and calls[0] == 1 + 2 * 3, "no warm-up: %s, %d calls" %
              (t, calls[0]))
        calls[0] = 0
        t = bench.time_call(call, warmup=1, reps=4, min_rep_seconds=0)
        check(t["iterations"] == 1 and calls[0] == 1 + 1 + 4, "alone: %s, %d calls" % (t, calls[0]))
    finally:
        time.perf_counter = real


def test_exit_statuses(source, convbp, work):
    script = os.path.join(source, "scripts", "torch_cpu_bench.py")
    out = os.path.join(work, "failed.json")
    r = run([sys.executable, script, "smoke", "-o", out, "--convbp", os.path.join(work, "none")])
    doc = json.load(open(out))
    check(r.returncode == 2 and "not an executable file" in doc.get("error", "") and
          doc["schema"] == "convbp.torch/1" and not doc["complete"],
          "bad --convbp: exit %d, %s" % (r.returncode, doc))
    no_torch = os.path.join(work, "no_torch", "torch")
    os.makedirs(no_torch, exist_ok=True)
    with open(os.path.join(no_torch, "__init__.py"), "w") as f:
        f.write("raise ImportError('no torch in this test')\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(no_torch))
    r = run([sys.executable, script, "smoke", "-o", out, "--convbp", convbp], env=env)
    doc = json.load(open(out))
    check(r.returncode == 1 and "cannot import torch" in doc.get("error", "") and
          doc.get("suite") == "smoke", "no torch: exit %d, %s" % (r.returncode, doc))


def test_call_is_the_backward(bench, convbp, torch):
    for layout in ("nchw", "nhwc"):
        key = PROBLEM if layout == "nchw" else PROBLEM + "_f32_nhwc"
        cases = bench.convbp_cases(convbp, "smoke", ["--problem", key])["cases"]
        check(len(cases) == 2, "convbp cases --problem %s gave %d cases, expected 2" %
              (key, len(cases)))
        gen = torch.Generator().manual_seed(7)
        fmt = torch.channels_last if layout == "nhwc" else torch.contiguous_format
        p = cases[0]
        x = torch.rand(p["n"], p["c"], p["h"], p["w"], generator=gen,
                       dtype=torch.float64).contiguous(memory_format=fmt)
        w = torch.rand(p["k"], p["c"] // p["groups"], p["r"], p["s"], generator=gen,
                       dtype=torch.float64).contiguous(memory_format=fmt)
        dy = torch.rand(p["n"], p["k"], p["p"], p["q"], generator=gen,
                        dtype=torch.float64).contiguous(memory_format=fmt)
        kw = dict(stride=p["stride"], padding=p["pad"][:2], dilation=p["dilation"],
                  groups=p["groups"])
        for case in cases:
            dx, dw, db = bench.backward_call(torch, case, x, w, dy)()
            if case["pass"] == "data":
                want = torch.nn.grad.conv2d_input(x.shape, w, dy, **kw)
                check(dw is None and db is None, "%s data: dw or db computed" % key)
                check(torch.allclose(dx, want, rtol=1e-12, atol=1e-12),
                      "%s data: dx differs from conv2d_input by %g (seed 7)" %
                      (key, (dx - want).abs().max()))
            else:
                want = torch.nn.grad.conv2d_weight(x, w.shape, dy, **kw)
                check(dx is None, "%s weights: dx computed" % key)
                check(torch.allclose(dw, want, rtol=1e-12, atol=1e-12),
                      "%s weights: dw differs from conv2d_weight by %g (seed 7)" %
                      (key, (dw - want).abs().max()))
                check(torch.allclose(db, dy.sum((0, 2, 3)), rtol=1e-12, atol=1e-12),
                      "%s weights: db is not dy summed over n, h, w (seed 7)" % key)


def test_script(bench, convbp, work, suite):
    """Runs main() in this process, keeping every version of the file it writes."""
    out = os.path.join(work, "torch_cpu.json")
    written, save = [], bench.save

    def recording_save(doc, path):
        written.append(copy.deepcopy(doc))
        save(doc, path)

    bench.save = recording_save
    try:
        status = bench.main([suite, "-o", out, "--threads", "1", "--reps", "2", "--warmup", "1",
                             "--min-rep-seconds", "0.001", "--convbp", convbp])
    finally:
        bench.save = save
    check(status == 0, "torch_cpu_bench.py main() returned %s" % status)
    with open(out) as f:
        doc = json.load(f)
    check(doc["schema"] == "convbp.torch/1" and doc["device"] == "cpu" and doc["complete"],
          "header: %s" % {k: v for k, v in doc.items() if k != "cases"})
    check(doc["threads"] == 1, "threads %s, asked for 1" % doc["threads"])
    expected = json.loads(run([convbp, "cases", suite, "--json"], check=True).stdout)["cases"]
    check([(c["name"], c["problem"], c["pass"]) for c in doc["cases"]] ==
          [(c["name"], c["problem"], c["pass"]) for c in expected],
          "cases differ from convbp's: %s" % [c["problem"] for c in doc["cases"]])
    check(len(written) == len(expected) + 1 and written[-1] == doc and
          all(not w["complete"] and len(w["cases"]) == i + 1 for i, w in enumerate(written[:-1])),
          "not rewritten after every case: %s" % [(len(w["cases"]), w["complete"])
                                                  for w in written])
    for case in doc["cases"]:
        if case["name"].split(":")[-1].split(".")[0] == "asym":
            check("symmetric" in case.get("error", ""), "asymmetric padding: %s" % case)
        elif "time_ms" in case:
            check(case["time_ms"]["median"] > 0 and case["time_ms"]["reps"] == 2 and
                  case["time_ms"]["iterations"] >= 1 and case["gflops"] > 0,
                  "%s %s: time %s" % (case["problem"], case["pass"], case["time_ms"]))
        else:
            check(case["dtype"] == "f16" and case["error"],
                  "%s %s: no time and no reason: %s" % (case["problem"], case["pass"], case))
    for dtype in ("f32", "bf16"):
        timed = [c for c in doc["cases"] if c["dtype"] == dtype and "time_ms" in c]
        check(len(timed) == 4, "%s: %d of 4 odd cases timed" % (dtype, len(timed)))
    check(len(doc["totals"]) >= 8, "totals: %s" % doc["totals"])
    for total in doc["totals"]:
        cases = [c for c in doc["cases"] if "time_ms" in c and
                 (c["dtype"], c["layout"], c["pass"]) == (total["dtype"], total["layout"],
                                                           total["pass"])]
        want = sum(3 * c["time_ms"]["median"] for c in cases)
        check(abs(total["ms"] - want) <= 1e-9 * want and total["cases"] == len(cases),
              "total %s: %g, expected %g" % (total, total["ms"], want))
    return out, doc


def test_readers(source, convbp, work, suite, torch_json, doc):
    report = os.path.join(work, "tiny-report.json")
    r = run([convbp, "run", suite, "--impl", "im2col_gemm.*,onednn.*", "--reps", "1",
             "--threads", "1", "-q", "-o", report])
    check(r.returncode == 0, "convbp run %s: %s" % (suite, r.stderr))
    r = run([convbp, "show", report, "--torch", torch_json])
    check(r.returncode == 0, "show --torch: %s" % r.stderr)
    lines = [line for line in r.stdout.splitlines() if "PyTorch" in line]
    # f32 NCHW comes first: odd's two passes timed, asym's two refused.
    check(lines and "on cpu, 1 thread, aten.convolution_backward" in lines[0] and
          "2 of 4 cases" in lines[0], "PyTorch's line in convbp show: %s" % r.stdout)

    import dtype_figures  # scripts/, on the path since main()
    best, info = dtype_figures.torch_side([torch_json])
    check(info["threads"] == 1 and info["torch"] == doc["torch"], "info: %s" % info)
    for c in doc["cases"]:
        key = (dtype_figures.short_name(c["name"]), c["pass"], c["dtype"], c["layout"])
        want = {"ms": c["time_ms"]["median"]} if "time_ms" in c else {"error": c["error"]}
        check(best.get(key) == want, "dtype_figures %s: %s, expected %s" % (key, best.get(key),
                                                                             want))
    older = {"network script's": dict(doc, cases=[{k: v for k, v in c.items() if k not in
                                                   ("dtype", "layout", "count")}
                                                  for c in doc["cases"]]),
             "convbp.torch_cpu/1": {k: v for k, v in doc.items() if k not in ("device", "call")}}
    older["convbp.torch_cpu/1"]["schema"] = "convbp.torch_cpu/1"
    for what, old in older.items():
        path = os.path.join(work, "old.json")
        with open(path, "w") as f:
            json.dump(old, f)
        check(dtype_figures.torch_side([path])[0] == best, "%s file read otherwise" % what)
    gpu = os.path.join(work, "gpu.json")
    with open(gpu, "w") as f:
        json.dump(dict(doc, device="NVIDIA H200"), f)
    script = os.path.join(source, "scripts", "dtype_figures.py")
    r = run([sys.executable, script, "--convbp", report, "--torch", gpu])
    check(r.returncode != 0 and "gpu.json" in r.stderr and "NVIDIA H200" in r.stderr,
          "a GPU file: exit %d, %s" % (r.returncode, r.stderr))
    r = run([sys.executable, script, "--convbp", report, "--torch", torch_json])
    check(r.returncode == 0, "dtype_figures.py: %s" % r.stderr)
    table = r.stdout.split("PyTorch `convolution_backward`, NCHW")[-1]
    row = [line for line in table.splitlines() if line.startswith("| odd | data |")]
    cells = row[0].split("|") if row else []
    # | layer | pass | bf16: convbp | bf16: PyTorch | ratio | f32: convbp | f32: PyTorch | ratio |
    # (convbp's time of a tiny case prints as 0.00: read only as a number.)
    check(len(cells) > 8 and float(cells[6]) >= 0 and float(cells[7]) > 0 and
          float(cells[8]) > 0,
          "dtype_figures.py: no f32 PyTorch time for odd data: %s" % r.stdout)

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("plot.py not checked: no matplotlib in %s" % sys.executable)
        return
    r = run([sys.executable, os.path.join(source, "scripts", "plot.py"), report, "--torch",
             torch_json, "-o", os.path.join(work, "tiny.png")])
    check(r.returncode == 0, "plot.py: %s" % r.stderr)
    check(os.path.getsize(os.path.join(work, "tiny-network.png")) > 0, "no network plot")


def main():
    source, convbp, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    sys.path.insert(0, os.path.join(source, "scripts"))
    import torch_cpu_bench as bench
    test_timing(bench)
    test_exit_statuses(source, convbp, work)
    try:
        import torch
    except ImportError:
        print("SKIP: PyTorch is not installed for %s (Debian's python3-torch is in "
              "/usr/bin/python3); the timing and exit statuses passed" % sys.executable)
        return SKIP
    test_call_is_the_backward(bench, convbp, torch)
    suite = os.path.join(work, "tiny.json")
    with open(suite, "w") as f:
        json.dump({"suite": "tiny", "source": "test_torch_cpu_bench.py",
                   "passes": ["data", "weights"], "dtypes": ["f32", "bf16", "f16"],
                   "layouts": ["nchw", "nhwc"],
                   "layers": [{"name": "odd", "n": 2, "c": 8, "h": 9, "w": 7, "k": 8, "r": 3,
                               "s": 3, "stride": [2, 1], "pad": 1, "count": 3},
                              {"name": "asym", "n": 1, "c": 4, "h": 6, "w": 5, "k": 4, "r": 2,
                               "s": 2, "pad": [1, 0, 0, 1]}]}, f)
    torch_json, doc = test_script(bench, convbp, work, suite)
    test_readers(source, convbp, work, suite, torch_json, doc)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
