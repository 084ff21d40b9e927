#!/usr/bin/env python3
"""Tests of scripts/suite_from_torch.py, run by ctest.

  test_suite_from_torch.py onnx  SOURCE_DIR CONVBP WORK_DIR
  test_suite_from_torch.py torch SOURCE_DIR CONVBP WORK_DIR

onnx: a tiny ONNX model built with onnx.helper (explicit and SAME_UPPER / SAME_LOWER / VALID
padding, strides, dilations, groups, a symbolic batch, a repeated shape, a non-Conv node and a
weight given only as a graph input) becomes the suite expected field by field, which convbp
accepts. torch: resnet50, mobilenet_v2, efficientnet_b0 and convnext_tiny traced from torchvision
give exactly the shipped configs/torchvision_*.json, and those of resnet50 and mobilenet_v2 the
shapes and counts of the hand-written configs/resnet50.json and mobilenet_v2.json (from the
papers). Exit 77 (ctest's SKIP_RETURN_CODE) when the library a
mode needs is not installed.
"""
import json
import os
import subprocess
import sys

SKIP = 77


def run_script(source, args):
    script = os.path.join(source, "scripts", "suite_from_torch.py")
    return subprocess.run([sys.executable, script] + args, capture_output=True, text=True)


def check(condition, message):
    if not condition:
        print("FAIL: " + message)
        sys.exit(1)


def convbp_accepts(convbp, suite_path, cases):
    """convbp reads the suite and expands it to `cases` cases (printed as benchdnn lines)."""
    out = subprocess.run([convbp, "cases", suite_path, "--benchdnn"], capture_output=True, text=True)
    check(out.returncode == 0, "convbp refused %s: %s" % (suite_path, out.stdout + out.stderr))
    lines = out.stdout.splitlines()
    check(len(lines) == cases, "convbp expanded %s to %d cases, expected %d:\n%s"
          % (suite_path, len(lines), cases, out.stdout))
    return lines


def test_onnx(source, convbp, work):
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        print("SKIP: python3-onnx is not installed")
        return SKIP
    import numpy  # onnx depends on it

    def weight(name, shape):
        return helper.make_tensor(name, TensorProto.FLOAT, shape,
                                  numpy.zeros(shape, dtype=numpy.float32).ravel().tolist())

    inits = [weight("w1", [16, 3, 3, 3]), weight("w2", [16, 16, 3, 3]),
             weight("w3", [16, 4, 3, 3]), weight("w4", [8, 16, 1, 1]), weight("w5", [8, 8, 5, 5]),
             weight("w6", [8, 8, 2, 2])]
    nodes = [
        # explicit asymmetric pads [top, left, bottom, right], stride 2
        helper.make_node("Conv", ["x", "w1"], ["a"], name="stem", strides=[2, 2],
                         pads=[1, 0, 2, 1]),
        # the same 3x3 twice: one layer with count 2
        helper.make_node("Conv", ["a", "w2"], ["b"], name="body1", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["b", "w2"], ["c"], name="body2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["d"], name="relu"),
        # groups 4, dilation 2, SAME_UPPER (no pads attribute)
        helper.make_node("Conv", ["d", "w3"], ["e"], name="grouped", group=4,
                         dilations=[2, 2], auto_pad="SAME_UPPER"),
        # 1x1 stride 2, VALID
        helper.make_node("Conv", ["e", "w4"], ["f"], name="reduce", strides=[2, 2],
                         auto_pad="VALID"),
        # SAME_LOWER with stride 2 on an odd size: the extra padding goes first
        helper.make_node("Conv", ["f", "w5"], ["g"], name="lower", strides=[2, 2],
                         auto_pad="SAME_LOWER"),
        # a weight that is a graph input, not an initializer
        helper.make_node("Conv", ["g", "wi"], ["y"], name="", kernel_shape=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 30, 20]),
         helper.make_tensor_value_info("wi", TensorProto.FLOAT, [8, 8, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8, 3, 2])], inits[:5])
    model = helper.make_model(graph, producer_name="convbp-test",
                              opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    path = os.path.join(work, "tiny.onnx")
    onnx.save(model, path)

    out_path = os.path.join(work, "tiny_suite.json")
    result = run_script(source, ["--onnx", path, "--batch", "3", "-o", out_path])
    check(result.returncode == 0, "the script failed: " + result.stderr)
    suite = json.load(open(out_path))
    # Heights and widths: stem 30x20 -> (30+3-3)/2+1 = 16, (20+1-3)/2+1 = 10; grouped keeps
    # 16x10; reduce: 8x5; lower: SAME on 8x5 stride 2 -> 4x3, padding 3 in all on h (SAME_LOWER:
    # 2 top, 1 bottom) and 4 on w (2, 2); the last 2x2 without padding -> 3x2.
    expected = [
        {"name": "stem", "c": 3, "h": 30, "w": 20, "k": 16, "r": 3, "stride": 2,
         "pad": [1, 0, 2, 1], "count": 1},
        {"name": "body1", "c": 16, "h": 16, "w": 10, "k": 16, "r": 3, "pad": 1, "count": 2},
        {"name": "grouped", "c": 16, "h": 16, "w": 10, "k": 16, "r": 3, "pad": 2,
         "dilation": 2, "groups": 4, "count": 1},
        {"name": "reduce", "c": 16, "h": 16, "w": 10, "k": 8, "r": 1, "stride": 2, "count": 1},
        {"name": "lower", "c": 8, "h": 8, "w": 5, "k": 8, "r": 5, "stride": 2,
         "pad": [2, 2, 1, 2], "count": 1},
        {"name": "Conv_7", "c": 8, "h": 4, "w": 3, "k": 8, "r": 2, "count": 1},
    ]
    check(suite["layers"] == expected, "layers:\n%s\nexpected:\n%s"
          % (json.dumps(suite["layers"], indent=1), json.dumps(expected, indent=1)))
    check(suite["defaults"] == {"n": 3}, "defaults: %s" % suite["defaults"])
    check(suite["suite"] == "tiny_suite", "suite name: %s" % suite["suite"])
    src = suite["source"]
    check(src["model"] == "ONNX tiny.onnx (graph 'tiny')", "source.model: %s" % src["model"])
    check(src["versions"]["onnx"] == onnx.__version__ and src["versions"]["opset"] == "13" and
          src["versions"]["producer"] == "convbp-test", "source.versions: %s" % src["versions"])
    check(src["command"].startswith("scripts/suite_from_torch.py --onnx ") and
          "--batch 3" in src["command"], "source.command: %s" % src["command"])
    lines = convbp_accepts(convbp, out_path, 2 * len(expected))
    check(lines[0] == '--dir=BWD_D mb3_ic3ih30iw20_oc16oh16ow10_kh3kw3_sh2sw2_ph1pw0_dh0dw0_'
                      'n"tiny_suite:stem"', "first case: " + lines[0])

    # A model without static spatial sizes is refused with the node named.
    graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    result = run_script(source, ["--onnx", path, "-o", out_path])
    check(result.returncode == 1 and "node stem" in result.stderr and
          "no static NCHW shape" in result.stderr, "dynamic height: " + result.stderr)
    result = run_script(source, ["--onnx", os.path.join(work, "missing.onnx"), "-o", out_path])
    check(result.returncode == 1 and "cannot read the model" in result.stderr,
          "missing file: " + result.stderr)
    print("ok: the ONNX model's six convolution shapes, counts and source")
    return 0


def test_torch(source, convbp, work):
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError:
        print("SKIP: python3-torch or python3-torchvision is not installed")
        return SKIP

    def shapes(suite):
        """(shape, occurrences) of a suite, whatever its layer names and however it groups them."""
        totals = {}
        for layer in suite["layers"]:
            key = json.dumps({k: v for k, v in layer.items() if k not in ("name", "count")},
                             sort_keys=True)
            totals[key] = totals.get(key, 0) + layer.get("count", 1)
        return totals

    # model -> (convolutions, the hand-written suite from the paper with the same shapes).
    # configs/resnet50.json lists the 64->256 1x1 at 56x56 twice (res2_branch2c and
    # res2a_branch1): the comparison is of shapes and counts, not of entries.
    models = {"resnet50": (53, "resnet50"), "mobilenet_v2": (52, "mobilenet_v2"),
              "efficientnet_b0": (81, None), "convnext_tiny": (22, None)}
    os.makedirs(os.path.join(work, "configs"), exist_ok=True)
    for model, (convolutions, paper_name) in models.items():
        # Traced as the shipped suite was, into the same relative path, so that the command it
        # records is the same too.
        relative = "configs/torchvision_%s.json" % model
        result = subprocess.run(
            [sys.executable, os.path.join(source, "scripts", "suite_from_torch.py"), model,
             "--batch", "8", "-o", relative], capture_output=True, text=True, cwd=work)
        check(result.returncode == 0, "the script failed on %s: %s" % (model, result.stderr))
        traced = json.load(open(os.path.join(work, relative)))
        shipped = json.load(open(os.path.join(source, relative)))
        # The versions are this machine's; everything else is the shipped file's.
        traced["source"].pop("versions")
        shipped["source"].pop("versions")
        check(traced == shipped, "the trace of %s differs from %s" % (model, relative))
        check(sum(l["count"] for l in traced["layers"]) == convolutions,
              "%d convolutions in %s" % (convolutions, model))
        if paper_name:
            paper = json.load(open(os.path.join(source, "configs", paper_name + ".json")))
            check(shapes(traced) == shapes(paper), "the trace and configs/%s.json differ:\n%s\n%s"
                  % (paper_name, shapes(traced), shapes(paper)))
        convbp_accepts(convbp, os.path.join(source, relative), 2 * len(traced["layers"]))

    result = run_script(source, ["no_such_model", "-o", os.path.join(work, "x.json")])
    check(result.returncode == 1 and "has no model 'no_such_model'" in result.stderr,
          "unknown model: " + result.stderr)
    print("ok: the four shipped suites trace again identically; resnet50 and mobilenet_v2 have "
          "the shapes and counts of the paper's suites")
    return 0


def main():
    mode, source, convbp, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    return {"onnx": test_onnx, "torch": test_torch}[mode](source, convbp, work)


if __name__ == "__main__":
    sys.exit(main())
