#!/usr/bin/env python3
"""The GPU check's two Python scripts, on any machine: scripts/torch_conv_bench.py against a
stand-in for PyTorch (tests/stub_torch), with its shapes from the built convbp (`convbp
cases`), then scripts/gpu_compare.py on its output and a hand-made convbp report. Proves their
control flow, output schema and arithmetic, so that the one run on a GPU machine does not fail
on a script error; the figures themselves need the GPU.

usage: test_gpu_scripts.py SOURCE_DIR WORK_DIR CONVBP_BINARY
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


def main():
    source, work, convbp = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.path.join(source, "tests", "stub_torch"),
               STUB_TORCH_CALL_MS="0.2", PYTHONDONTWRITEBYTECODE="1")
    env.pop("CONVBP", None)
    config = os.path.join(source, "configs", "gpu_resnet50.json")
    torch_json = os.path.join(work, "torch.json")
    bench = os.path.join(source, "scripts", "torch_conv_bench.py")

    # Without a convbp binary there are no shapes: a clear error, and a torch.json that says it.
    run = subprocess.run([sys.executable, bench, config, "-o", torch_json,
                          "--convbp", os.path.join(work, "no-such-convbp")],
                         env=env, capture_output=True, text=True)
    check(run.returncode == 2 and "no-such-convbp: not an executable file" in run.stderr,
          "a missing convbp: exit %d: %s" % (run.returncode, run.stderr))
    check("no-such-convbp" in json.load(open(torch_json)).get("error", ""),
          "torch.json does not say that convbp is missing")
    # A suite convbp refuses: its own message, its exit status.
    run = subprocess.run([sys.executable, bench, os.path.join(work, "no-such-suite.json"), "-o",
                          torch_json, "--convbp", convbp], env=env, capture_output=True, text=True)
    check(run.returncode == 2 and "no such config file" in run.stderr,
          "a missing suite: exit %d: %s" % (run.returncode, run.stderr))

    run = subprocess.run([sys.executable, bench, config, "-o", torch_json, "--reps", "5",
                          "--warmup", "1", "--convbp", convbp],
                         env=env, capture_output=True, text=True)
    check(run.returncode == 0, "torch_conv_bench.py exit %d: %s" % (run.returncode, run.stderr))
    doc = json.load(open(torch_json))
    layers = json.load(open(config))["layers"]
    check(doc["schema"] == "convbp.torch/1" and doc["complete"], "torch.json header: %s" % doc)
    check(len(doc["cases"]) == len(layers) * 2 * 2,
          "expected %d cases (layers x passes x TF32 off/on), got %d" % (len(layers) * 4,
                                                                         len(doc["cases"])))
    for case in doc["cases"]:
        check("time_ms" in case, "no time for %s" % case)
        t = case["time_ms"]["median"]
        # A stub call takes exactly 0.2 ms of virtual time: every timing, single or a batch of
        # calls back to back divided by its count, must say 0.2 ms per call (the weights pass:
        # conv2d_weight only, the stub's sum being free).
        for stat in ("median", "min", "max"):
            check(abs(case["time_ms"][stat] - 0.2) < 1e-9, "%s %s: %s %.6f ms per call for a "
                  "0.2 ms stub call" % (case["problem"], case["pass"], stat, case["time_ms"][stat]))
        check(abs(case["tflops"] - case["flops"] / (t * 1e9)) < 1e-9 * case["tflops"] + 1e-12,
              "tflops of %s" % case["problem"])
        if case["pass"] == "weights":
            check("dw_only_ms" in case, "weights case without dw_only_ms")
    # Names, keys and flops are convbp's own, case for case.
    cases = json.loads(subprocess.run([convbp, "cases", config, "--json"], capture_output=True,
                                      text=True, check=True).stdout)["cases"]
    expected = [(c["name"], c["problem"], c["pass"], c["flops"]) for c in cases]
    got = [(c["name"], c["problem"], c["pass"], c["flops"]) for c in doc["cases"] if not c["tf32"]]
    check(got == expected, "torch.json's cases differ from convbp cases:\n%s\n%s" % (got, expected))
    keys = {c["problem"] for c in doc["cases"]}
    check("n32_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1" in keys,
          "res2 3x3's key, as convbp spells it, is missing: %s" % sorted(keys))
    check("n32_c144_h56_w56_k144_r3_s3_st1x1_pad1x1x1x1_dil1x1_g144" in keys,
          "the depthwise layer's key is missing")

    # A convbp report for two of those cases: convbp wins the first (fp32 and tf32), loses the
    # second's fp32; one result is incorrect and must be listed.
    by_key = {(c["problem"], c["pass"], c["tf32"]): c for c in doc["cases"]}
    res2 = "n32_c64_h56_w56_k64_r3_s3_st1x1_pad1x1x1x1_dil1x1_g1"
    torch_ms = {tf32: by_key[(res2, "data", tf32)]["time_ms"]["median"] for tf32 in (False, True)}

    def result(impl, ms, status="ok", family=""):
        r = {"impl": impl, "status": status, "why": "" if status == "ok" else "max_rel 1e-2",
             "detail": "eng0", "time_ms": {"median": ms} if status == "ok" else None,
             "gflops": 0, "error": None, "workspace_bytes": 0, "deterministic": True}
        if family:
            r["family"] = family
        return r

    flops = by_key[(res2, "data", False)]["flops"]
    report = {"schema": "convbp.report/1", "complete": True,
              "context": {"gpu": "stub GPU", "convbp": "test",
                          "libraries": {"cudnn": "9.14.0", "cuda_runtime": "13.0",
                                        "cuda_driver": "13.0"}},
              "cases": [
                  {"name": "gpu_resnet50:res2_3x3", "problem": res2, "pass": "data",
                   "flops": flops,
                   "results": [
                       result("cudnn.algo1.fp32", torch_ms[False] * 0.9),
                       result("cudnn.engine7.k2=1.fp32", torch_ms[False] * 0.5,
                              family="cudnn.engine.fp32"),
                       result("cudnn.engine9.tf32", torch_ms[True] * 0.25,
                              family="cudnn.engine.tf32"),
                       result("cudnn.fft.fp32", 0, status="incorrect")]},
                  {"name": "gpu_resnet50:res2_3x3", "problem": res2, "pass": "weights",
                   "flops": flops,
                   "results": [result("cudnn.algo0.fp32",
                                      by_key[(res2, "weights", False)]["time_ms"]["median"] * 2)]},
              ]}
    report_json = os.path.join(work, "report.json")
    json.dump(report, open(report_json, "w"))
    out_md = os.path.join(work, "comparison.md")
    run = subprocess.run([sys.executable, os.path.join(source, "scripts", "gpu_compare.py"),
                          report_json, torch_json, "-o", out_md], capture_output=True, text=True)
    check(run.returncode == 0, "gpu_compare.py exit %d: %s" % (run.returncode, run.stderr))
    text = open(out_md).read()
    rows = [line for line in text.splitlines() if line.startswith("| res2_3x3 ")]
    check(len(rows) == 2, "expected two table rows, got:\n" + text)
    data = [cell.strip() for cell in rows[0].strip("|").split("|")]
    check(data[2] == "cudnn.engine7.k2=1.fp32" and data[7] == "0.50",
          "fp32 column of the data row: %s" % data)
    check(data[8] == "cudnn.engine9.tf32" and data[13] == "0.25",
          "tf32 column of the data row: %s" % data)
    check(abs(float(data[4]) - flops / (torch_ms[False] * 0.5 * 1e9)) < 0.06,
          "TF/s of the fp32 best: %s" % data[4])
    check(data[5] == "-" and "unknown for this GPU" in text,
          "%% peak on a GPU without known peaks: %s" % data[5])
    # --peaks: % peak = TF/s over the given peak of the column (fp32 here).
    run = subprocess.run([sys.executable, os.path.join(source, "scripts", "gpu_compare.py"),
                          report_json, torch_json, "--peaks", "fp32=2,tf32=500"],
                         capture_output=True, text=True)
    peaked = [line for line in run.stdout.splitlines() if line.startswith("| res2_3x3 ")]
    cells = [cell.strip() for cell in peaked[0].strip("|").split("|")] if peaked else []
    check(run.returncode == 0 and cells and
          abs(float(cells[5]) - 50 * float(cells[4])) <= 0.001 * 50 * float(cells[4]),
          "--peaks fp32=2: %s %s" % (cells, run.stderr))
    weights = [cell.strip() for cell in rows[1].strip("|").split("|")]
    check(weights[7] == "2.00", "weights ratio: %s" % weights)
    geo = math.sqrt(0.5 * 2.0)
    check("Geometric mean ratio, fp32: %.3f over 2 case(s), a speedup of %.2fx over PyTorch; "
          "convbp's pick at least as fast in 1 of them." % (geo, 1 / geo) in text,
          "fp32 geometric mean %.3f missing:\n%s" % (geo, text))
    check("`cudnn.fft.fp32`: incorrect" in text, "the incorrect result is not listed:\n" + text)
    check("Within 1.02x of PyTorch in 1 of 2." in text, "fp32 cases within 1.02x:\n" + text)
    # A case the run was stopped in is shown, marked, and in no geometric mean.
    report["cases"][1]["interrupted"] = True
    json.dump(report, open(report_json, "w"))
    run = subprocess.run([sys.executable, os.path.join(source, "scripts", "gpu_compare.py"),
                          report_json, torch_json], capture_output=True, text=True)
    text = run.stdout
    check(run.returncode == 0 and "| res2_3x3 * | weights |" in text and
          "\\* interrupted: the run was stopped during this case" in text and
          "Geometric mean ratio, fp32: 0.500 over 1 case(s)" in text,
          "an interrupted case in the comparison:\n%s%s" % (text, run.stderr))
    report["cases"][1].pop("interrupted")

    # The mixed-precision suite: bf16 and f16 under autocast, NCHW and channels_last.
    amp_config = os.path.join(source, "configs", "gpu_resnet50_amp.json")
    amp_json = os.path.join(work, "torch_amp.json")
    run = subprocess.run([sys.executable, os.path.join(source, "scripts", "torch_conv_bench.py"),
                          amp_config, "-o", amp_json, "--reps", "3", "--warmup", "1",
                          "--convbp", convbp],
                         env=env, capture_output=True, text=True)
    check(run.returncode == 0, "torch_conv_bench.py (amp) exit %d: %s" % (run.returncode, run.stderr))
    amp = json.load(open(amp_json))
    amp_layers = json.load(open(amp_config))["layers"]
    check(len(amp["cases"]) == len(amp_layers) * 2 * 2 * 2,
          "expected layers x passes x 2 dtypes x 2 layouts = %d cases, got %d" % (
              len(amp_layers) * 8, len(amp["cases"])))
    seen = {(c["dtype"], c["layout"]) for c in amp["cases"]}
    check(seen == {("bf16", "nchw"), ("bf16", "nhwc"), ("f16", "nchw"), ("f16", "nhwc")},
          "dtypes and layouts timed: %s" % sorted(seen))
    for case in amp["cases"]:
        check("time_ms" in case, "no time for %s (%s)" % (case["problem"], case.get("error")))
        check(case["autocast"] and not case["tf32"], "16-bit case not under autocast: %s" % case)
        check(case["problem"].endswith("_%s_%s" % (case["dtype"], case["layout"])),
              "key without its dtype and layout: %s" % case["problem"])
    res2_bf16 = res2 + "_bf16_nhwc"
    amp_by_key = {(c["problem"], c["pass"]): c for c in amp["cases"]}
    check((res2_bf16, "data") in amp_by_key, "res2 bf16 NHWC missing: %s" % sorted(amp_by_key))
    amp_torch_ms = amp_by_key[(res2_bf16, "data")]["time_ms"]["median"]
    amp_report = {"schema": "convbp.report/1", "complete": True, "context": report["context"],
                  "cases": [dict(report["cases"][0]),
                            {"name": "gpu_resnet50_amp:res2_3x3", "problem": res2_bf16,
                             "pass": "data", "flops": flops,
                             "results": [result("cudnn.algo1.fp32acc", amp_torch_ms * 1.5),
                                         result("cudnn.engine3.fp32acc", amp_torch_ms * 0.8,
                                                family="cudnn.engine.fp32acc")]}]}
    amp_report_json = os.path.join(work, "report_amp.json")
    json.dump(amp_report, open(amp_report_json, "w"))
    merged = os.path.join(work, "torch_merged.json")
    both = dict(doc, cases=doc["cases"] + amp["cases"])
    json.dump(both, open(merged, "w"))
    run = subprocess.run([sys.executable, os.path.join(source, "scripts", "gpu_compare.py"),
                          amp_report_json, merged], capture_output=True, text=True)
    check(run.returncode == 0, "gpu_compare.py (amp) exit %d: %s" % (run.returncode, run.stderr))
    text = run.stdout
    check("## bf16 NHWC" in text, "no bf16 NHWC table:\n" + text)
    amp_rows = [line for line in text.split("## bf16 NHWC")[1].splitlines()
                if line.startswith("| res2_3x3 ")]
    check(len(amp_rows) == 1, "expected one bf16 NHWC row:\n" + text)
    cells = [cell.strip() for cell in amp_rows[0].strip("|").split("|")]
    check(cells[2] == "cudnn.engine3.fp32acc" and cells[7] == "0.80", "bf16 NHWC row: %s" % cells)
    check("Geometric mean ratio, bf16 nhwc: 0.800 over 1 case(s)" in text and
          "Within 1.02x of PyTorch in 1 of 1." in text, "bf16 NHWC geometric mean:\n" + text)
    check(text.count("| res2_3x3 ") == 2, "the f32 NCHW case must stay in its own table:\n" + text)

    print("torch_conv_bench.py: %d cases (+%d mixed-precision); gpu_compare.py: tables per dtype "
          "and layout, ratios, geometric means and problems as expected" % (
              len(doc["cases"]), len(amp["cases"])))


if __name__ == "__main__":
    main()
