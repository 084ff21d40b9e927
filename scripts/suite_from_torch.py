#!/usr/bin/env python3
"""Writes a convbp suite (convbp.config/1, docs/config.md) from a real network.

  suite_from_torch.py MODEL [--batch N] [--input 3x224x224] -o configs/NAME.json
  suite_from_torch.py --onnx FILE [--batch N] -o configs/NAME.json

MODEL is a torchvision model builder (resnet50, mobilenet_v2, efficientnet_b0,
convnext_tiny, ...), built with weights=None (no download: the shapes do not depend on the
weights) and run once in eval mode on a zero input of --input (C x H x W) with forward hooks
on every torch.nn.Conv2d; a module called twice is recorded twice. With --onnx, every Conv
node of the ONNX graph is read with its attributes and the shapes onnx.shape_inference
gives.

Layers of identical shape (c, h, w, k, r, s, stride, pad, dilation, groups) are merged into
one with `count` = how many times the network runs it, named after the first; `n` is --batch
for every layer (the trace itself runs at batch 1: no conv shape but n depends on the batch).
The suite's `source` records the model, the library versions and this command line.

Exit status: 0 written, 1 the model could not be traced or read, 2 bad arguments.
torch and torchvision are needed only for MODEL, onnx only for --onnx (Debian:
python3-torch, python3-torchvision, python3-onnx; run it with /usr/bin/python3, which has them,
when `python3` on PATH is another interpreter).
"""
import argparse
import json
import os
import shlex
import sys

# The CPU families that a full suite runs (as the hand-written suites in configs/ do); the
# naive reference is run by every case anyway, as the yardstick, not as a candidate.
DEFAULT_IMPLS = ["im2col_gemm.*", "onednn.*", "winograd.*"]


class TraceError(Exception):
    """The model cannot be turned into a suite; the message says why."""


def parse_input(text):
    parts = text.lower().split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        dims = []
    if len(dims) != 3 or min(dims) < 1:
        raise argparse.ArgumentTypeError(
            "expected C x H x W, e.g. 3x224x224, got %r" % text)
    return dims


def positive(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError("expected an integer >= 1, got %r" % text)
    return value


def same_padding(size, kernel, stride, dilation, upper):
    """Padding (begin, end) that makes the output ceil(size / stride), as SAME does."""
    extent = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + extent - size)
    small, large = total // 2, total - total // 2
    return (small, large) if upper else (large, small)


# --- torchvision --------------------------------------------------------------------------

def torch_layers(model_name, input_chw):
    try:
        import torch
        import torchvision
    except ImportError as e:
        raise TraceError("%s (Debian: apt-get install python3-torch python3-torchvision, and run "
                         "this script with /usr/bin/python3)" % e)
    builder = getattr(torchvision.models, model_name, None)
    if builder is None or not callable(builder) or model_name.startswith("_"):
        known = sorted(n for n in torchvision.models.list_models(module=torchvision.models)) \
            if hasattr(torchvision.models, "list_models") else []
        raise TraceError("torchvision %s has no model %r%s" % (
            torchvision.__version__, model_name,
            (" (models: " + ", ".join(known) + ")") if known else ""))
    try:
        model = builder(weights=None)
    except TypeError:  # builders older than the weights= API
        model = builder(pretrained=False)
    model.eval()

    records, skipped = [], []

    def hook(name):
        def record(module, inputs, _output):
            x = inputs[0]
            if x.dim() != 4:
                raise TraceError("%s: input of %d dimensions, expected NCHW" % (name, x.dim()))
            if module.padding_mode != "zeros":
                raise TraceError("%s: padding_mode=%r; convbp's convolution pads with zeros"
                                 % (name, module.padding_mode))
            _, c, h, w = x.shape
            r, s = module.kernel_size
            sh, sw = module.stride
            dh, dw = module.dilation
            if isinstance(module.padding, str):
                if module.padding == "valid":
                    pad = [0, 0, 0, 0]
                else:  # "same": PyTorch puts the odd element at the end (bottom, right)
                    top, bottom = same_padding(h, r, 1, dh, upper=True)
                    left, right = same_padding(w, s, 1, dw, upper=True)
                    pad = [top, left, bottom, right]
            else:
                ph, pw = module.padding
                pad = [ph, pw, ph, pw]
            records.append((name, dict(c=int(c), h=int(h), w=int(w), k=module.out_channels,
                                       r=r, s=s, stride=[sh, sw], pad=pad, dilation=[dh, dw],
                                       groups=module.groups)))
        return record

    handles = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            handles.append(module.register_forward_hook(hook(name)))
        elif isinstance(module, torch.nn.modules.conv._ConvNd):
            skipped.append("%s (%s)" % (name, type(module).__name__))
    with torch.no_grad():
        model(torch.zeros(1, *input_chw))
    for h in handles:
        h.remove()
    if skipped:
        print("note: not a Conv2d, left out: " + ", ".join(skipped), file=sys.stderr)
    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__}
    return records, "torchvision.models.%s(weights=None)" % model_name, versions


# --- ONNX ---------------------------------------------------------------------------------

def onnx_layers(path):
    try:
        import onnx
        from onnx import shape_inference
    except ImportError as e:
        raise TraceError("%s (Debian: apt-get install python3-onnx, and run this script with "
                         "/usr/bin/python3)" % e)
    try:
        model = onnx.load(path)
        inferred = shape_inference.infer_shapes(model)
    except Exception as e:  # onnx raises several types for a bad file
        raise TraceError("%s: cannot read the model: %s" % (path, e))
    graph = inferred.graph

    shapes = {}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)

    records = []
    for index, node in enumerate(graph.node):
        if node.op_type != "Conv" or node.domain not in ("", "ai.onnx"):
            continue
        name = node.name or "Conv_%d" % index
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        x, w = (shapes.get(node.input[0]), shapes.get(node.input[1]))
        if w is None or len(w) != 4 or None in w:
            raise TraceError("%s: node %s: the weight %r has no static 4-D shape (%s)"
                             % (path, name, node.input[1], w))
        if x is None or len(x) != 4 or None in x[1:]:
            raise TraceError("%s: node %s: the input %r has no static NCHW shape after shape "
                             "inference (%s)" % (path, name, node.input[0], x))
        _, c, h, wd = x
        k, _, r, s = w
        kernel = list(attrs.get("kernel_shape", [r, s]))
        if kernel != [r, s]:
            raise TraceError("%s: node %s: kernel_shape %s disagrees with the weight %s"
                             % (path, name, kernel, w))
        sh, sw = attrs.get("strides", [1, 1])
        dh, dw = attrs.get("dilations", [1, 1])
        groups = attrs.get("group", 1)
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad in ("NOTSET", ""):
            top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
        elif auto_pad == "VALID":
            top = left = bottom = right = 0
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            upper = auto_pad == "SAME_UPPER"
            top, bottom = same_padding(h, r, sh, dh, upper)
            left, right = same_padding(wd, s, sw, dw, upper)
        else:
            raise TraceError("%s: node %s: unknown auto_pad %r" % (path, name, auto_pad))
        records.append((name, dict(c=c, h=h, w=wd, k=k, r=r, s=s, stride=[sh, sw],
                                   pad=[top, left, bottom, right], dilation=[dh, dw],
                                   groups=groups)))
    opset = ",".join("%s%d" % ((o.domain + ":") if o.domain else "", o.version)
                     for o in model.opset_import)
    versions = {"onnx": onnx.__version__, "opset": opset}
    if model.producer_name:
        versions["producer"] = (model.producer_name + " " + model.producer_version).strip()
    return records, "ONNX %s (graph %r)" % (os.path.basename(path), graph.name), versions


# --- the suite ----------------------------------------------------------------------------

def shape_key(layer):
    return json.dumps(layer, sort_keys=True)


def merge(records):
    """Identical shapes become one layer with a count, in order of first appearance."""
    merged, index = [], {}
    for name, layer in records:
        key = shape_key(layer)
        if key in index:
            merged[index[key]][1]["count"] += 1
        else:
            index[key] = len(merged)
            merged.append((name, dict(layer, count=1)))
    return merged


def compact(layer):
    """The shortest spelling the reader accepts: w, s, stride, pad, dilation, groups left out
    or folded where they equal their defaults."""
    out = {"c": layer["c"], "h": layer["h"]}
    if layer["w"] != layer["h"]:
        out["w"] = layer["w"]
    out["k"] = layer["k"]
    out["r"] = layer["r"]
    if layer["s"] != layer["r"]:
        out["s"] = layer["s"]
    sh, sw = layer["stride"]
    if (sh, sw) != (1, 1):
        out["stride"] = sh if sh == sw else [sh, sw]
    t, l, b, r = layer["pad"]
    if (t, l, b, r) != (0, 0, 0, 0):
        out["pad"] = t if t == l == b == r else ([t, l] if (t, l) == (b, r) else [t, l, b, r])
    dh, dw = layer["dilation"]
    if (dh, dw) != (1, 1):
        out["dilation"] = dh if dh == dw else [dh, dw]
    if layer["groups"] != 1:
        out["groups"] = layer["groups"]
    out["count"] = layer["count"]
    return out


def unique_names(merged):
    seen, out = set(), []
    for name, layer in merged:
        base = name or "conv"
        candidate, i = base, 2
        while candidate in seen:
            candidate, i = "%s#%d" % (base, i), i + 1
        seen.add(candidate)
        out.append((candidate, layer))
    return out


def render(suite):
    """JSON with one layer per line, as the hand-written suites in configs/ are laid out."""
    lines = ["{"]
    for key in ("suite", "source", "defaults", "passes", "impls"):
        value = suite[key]
        if isinstance(value, dict) and key == "source":  # one entry a line: it is read by people
            entries = ["    %s: %s" % (json.dumps(k), json.dumps(v, ensure_ascii=False))
                       for k, v in value.items()]
            text = "{\n" + ",\n".join(entries) + "\n  }"
        else:
            text = json.dumps(value, ensure_ascii=False)
        lines.append("  %s: %s," % (json.dumps(key), text))
    lines.append('  "layers": [')
    rows = [json.dumps(layer, ensure_ascii=False, separators=(", ", ": "))
            .replace("{", "{ ", 1)[:-1] + " }" for layer in suite["layers"]]
    lines.append(",\n".join("    " + row for row in rows))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv):
    parser = argparse.ArgumentParser(
        description="Write a convbp suite from a torchvision model or an ONNX file.")
    parser.add_argument("model", nargs="?", help="torchvision model builder, e.g. resnet50")
    parser.add_argument("--onnx", metavar="FILE", help="read an ONNX model instead")
    parser.add_argument("--batch", type=positive, default=8, help="n of every layer (default 8)")
    parser.add_argument("--input", type=parse_input, default=[3, 224, 224], metavar="CxHxW",
                        help="input of the traced torchvision model (default 3x224x224)")
    parser.add_argument("--name", help="suite name (default: the output file's stem)")
    parser.add_argument("--impls", default=",".join(DEFAULT_IMPLS),
                        help="comma-separated implementation patterns (default %(default)s)")
    parser.add_argument("-o", "--output", required=True, help="the suite file to write")
    args = parser.parse_args(argv[1:])
    if bool(args.model) == bool(args.onnx):
        parser.error("give either a torchvision MODEL or --onnx FILE")

    try:
        if args.onnx:
            records, model, versions = onnx_layers(args.onnx)
            made_from = "--onnx %s" % shlex.quote(args.onnx)
        else:
            records, model, versions = torch_layers(args.model, args.input)
            made_from = shlex.quote(args.model)
            if args.input != [3, 224, 224]:
                made_from += " --input %s" % "x".join(map(str, args.input))
    except TraceError as e:
        print("suite_from_torch.py: %s" % e, file=sys.stderr)
        return 1
    if not records:
        print("suite_from_torch.py: no 2-D convolution in %s" % model, file=sys.stderr)
        return 1

    merged = unique_names(merge(records))
    name = args.name or os.path.splitext(os.path.basename(args.output))[0]
    command = "scripts/suite_from_torch.py %s --batch %d -o %s" % (
        made_from, args.batch, shlex.quote(args.output))
    if args.name:
        command += " --name %s" % shlex.quote(args.name)
    if args.impls != ",".join(DEFAULT_IMPLS):
        command += " --impls %s" % shlex.quote(args.impls)
    source = {"model": model, "versions": versions, "command": command,
              "notes": "%d convolutions, %d distinct shapes; count = occurrences"
                       % (len(records), len(merged))}
    if not args.onnx:
        source["input"] = "x".join(map(str, args.input))
    suite = {"suite": name, "source": source, "defaults": {"n": args.batch},
             "passes": ["data", "weights"],
             "impls": [p for p in args.impls.split(",") if p],
             "layers": [dict({"name": n}, **compact(layer)) for n, layer in merged]}
    text = render(suite)
    json.loads(text)  # the renderer's own check: what it wrote parses back
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        print("suite_from_torch.py: %s: no such folder" % folder, file=sys.stderr)
        return 2
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(text)
    print("%s: %d convolutions, %d distinct shapes -> %s"
          % (model, len(records), len(merged), args.output), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
