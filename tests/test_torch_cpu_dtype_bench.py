#!/usr/bin/env python3
"""Tests of scripts/torch_cpu_dtype_bench.py, run by ctest.

  test_torch_cpu_dtype_bench.py SOURCE_DIR CONVBP WORK_DIR

1. The call it times is the backward it claims: on a small strided, grouped, dilated shape
   (from `convbp cases --problem`), backward_call's dx equals torch.nn.grad.conv2d_input's,
   its dw conv2d_weight's and its db dy summed over n, h, w, in f32 NCHW and NHWC.
2. The script end to end on one tiny problem in f32, bf16 and f16, NCHW and NHWC, both passes:
   a complete convbp.torch_cpu/1 file, one entry per case with convbp's key, a positive time
   or PyTorch's refusal in words, on the thread count asked for, and totals per dtype, layout
   and pass equal to count x median.

Exit 77 (ctest's SKIP_RETURN_CODE) when PyTorch is not installed.
"""
import json
import os
import subprocess
import sys

SKIP = 77
# Odd sizes, stride 2x1, dilation 1x2, 2 groups, batch 3: a wrong argument order shows.
PROBLEM = "n3_c4_h9_w7_k6_r3_s2_st2x1_pad1x1x1x1_dil1x2_g2"


def check(condition, message):
    if not condition:
        print("FAIL: " + message)
        sys.exit(1)


def test_call_is_the_backward(source, convbp, torch):
    sys.path.insert(0, os.path.join(source, "scripts"))
    import torch_cpu_dtype_bench
    import torch_conv_bench

    for layout in ("nchw", "nhwc"):
        key = PROBLEM if layout == "nchw" else PROBLEM + "_f32_nhwc"
        cases = torch_conv_bench.convbp_cases(convbp, "smoke", ["--problem", key])["cases"]
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
            dx, dw, db = torch_cpu_dtype_bench.backward_call(torch, case, x, w, dy)()
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


def test_script(source, convbp, work):
    suite = os.path.join(work, "tiny.json")
    with open(suite, "w") as f:
        json.dump({"suite": "tiny", "source": "test_torch_cpu_dtype_bench.py",
                   "passes": ["data", "weights"], "dtypes": ["f32", "bf16", "f16"],
                   "layouts": ["nchw", "nhwc"],
                   "layers": [{"name": "odd", "n": 2, "c": 8, "h": 9, "w": 7, "k": 8, "r": 3,
                               "s": 3, "stride": [2, 1], "pad": 1, "count": 3}]}, f)
    out = os.path.join(work, "torch_cpu.json")
    run = subprocess.run([sys.executable, os.path.join(source, "scripts", "torch_cpu_dtype_bench.py"),
                          suite, "-o", out, "--threads", "1", "--reps", "2", "--warmup", "1",
                          "--convbp", convbp], capture_output=True, text=True)
    check(run.returncode == 0, "torch_cpu_dtype_bench.py exit %d: %s" % (run.returncode, run.stderr))
    with open(out) as f:
        doc = json.load(f)
    check(doc["schema"] == "convbp.torch_cpu/1" and doc["complete"], "incomplete: %s" % doc)
    check(doc["threads"] == 1, "threads %s, asked for 1" % doc["threads"])
    expected = json.loads(subprocess.run([convbp, "cases", suite, "--json"], capture_output=True,
                                         text=True, check=True).stdout)["cases"]
    check([c["problem"] + c["pass"] for c in doc["cases"]] ==
          [c["problem"] + c["pass"] for c in expected],
          "cases differ from convbp's: %s" % [c["problem"] for c in doc["cases"]])
    for case in doc["cases"]:
        if "time_ms" in case:
            check(case["time_ms"]["median"] > 0 and case["time_ms"]["reps"] == 2,
                  "%s %s: time %s" % (case["problem"], case["pass"], case["time_ms"]))
        else:
            check(case["dtype"] == "f16" and case["error"],
                  "%s %s: no time and no reason: %s" % (case["problem"], case["pass"], case))
    for dtype in ("f32", "bf16"):
        timed = [c for c in doc["cases"] if c["dtype"] == dtype and "time_ms" in c]
        check(len(timed) == 4, "%s: %d of 4 cases timed" % (dtype, len(timed)))
    for total in doc["totals"]:
        cases = [c for c in doc["cases"] if "time_ms" in c and
                 (c["dtype"], c["layout"], c["pass"]) == (total["dtype"], total["layout"],
                                                           total["pass"])]
        want = sum(3 * c["time_ms"]["median"] for c in cases)
        check(abs(total["ms"] - want) <= 1e-9 * want, "total %s: %g, expected %g" %
              (total, total["ms"], want))


def main():
    source, convbp, work = sys.argv[1:4]
    try:
        import torch
    except ImportError:
        print("SKIP: PyTorch is not installed for %s" % sys.executable)
        return SKIP
    os.makedirs(work, exist_ok=True)
    test_call_is_the_backward(source, convbp, torch)
    test_script(source, convbp, work)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
