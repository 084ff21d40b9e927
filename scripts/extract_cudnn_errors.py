#!/usr/bin/env python3
"""Extracts the cuDNN entries' measured errors from a GPU check's results into the CSV that
tests/test_error_model.cpp holds the error model against.

Usage: scripts/extract_cudnn_errors.py <gpu results dir> > tests/data/cudnn_errors_<gpu>_<date>.csv

Sources: gpu_report.json (every suite result with an error figure) and tests.log (the lines of
the cuDNN tests that judged an entry incorrect: the sweep's and the device test's). Columns:
  entry, pass, problem, seed   the result and how to rerun it (seed 0: the suite's, unrecorded)
  notes     the engine configuration's numerical notes ('+'-joined, from the report's detail;
            for a tests.log line without detail, those of the same engine, pass and precision
            elsewhere in the run); empty for legacy algorithms, whose name says what they are
  verdict   'wrong' when the output is garbage (NaN, or rel_l2 > 0.5: no rounding gets there),
            'right' otherwise, whatever the tolerance of the day said
  max_rel, rel_l2, nan_count, source
"""
import collections
import csv
import json
import re
import sys

NOTE_WORDS = {"tensor_core", "fft", "winograd", "winograd_4x4", "winograd_6x6", "winograd_13x13"}


def notes_of(detail):
    m = re.search(r"\(([^)]*)\)", detail)
    if not m or ";" not in m.group(1):
        return []
    return [n.strip() for n in m.group(1).split(";", 1)[1].split(",") if n.strip() in NOTE_WORDS]


def engine_key(entry, pass_):
    m = re.match(r"cudnn\.engine(\d+)\..*?(fp32|tf32)$", entry)
    return (int(m.group(1)), pass_, m.group(2)) if m else None


def main(root):
    rows = []
    report = json.load(open(f"{root}/gpu_report.json"))
    for case in report["cases"]:
        for r in case["results"]:
            e = r.get("error")
            if not e:
                continue
            rows.append(dict(entry=r["impl"], pass_=case["pass"], problem=case["problem"], seed=0,
                             notes=notes_of(r["detail"]), max_rel=e["max_rel"],
                             rel_l2=e["rel_l2"], nan_count=e["nan_count"],
                             source="gpu_report.json"))
    line_re = re.compile(r"(cudnn\.\S+) (data|weights) seed (\d+) problem (\S+): incorrect: "
                         r"(?:dx|dw): (.*)")
    for line in open(f"{root}/tests.log"):
        m = line_re.match(line.strip())
        if not m:
            continue
        entry, pass_, seed, problem, rest = m.groups()
        figures = re.search(r"max_rel ([0-9.e+-]+), rel_l2 ([0-9.e+-]+)", rest)
        nan = re.search(r"(\d+) NaN/Inf", rest)
        detail = re.search(r"\[(.*)\]$", line.strip())
        rows.append(dict(entry=entry, pass_=pass_, problem=problem, seed=int(seed),
                         notes=notes_of(detail.group(1)) if detail else None,
                         max_rel=float(figures.group(1)) if figures else float("nan"),
                         rel_l2=float(figures.group(2)) if figures else float("nan"),
                         nan_count=int(nan.group(1)) if nan else 0, source="tests.log"))
    known = collections.defaultdict(set)
    for r in rows:
        k = engine_key(r["entry"], r["pass_"])
        if k and r["notes"] is not None:
            known[k] |= set(r["notes"])
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["entry", "pass", "problem", "seed", "notes", "verdict", "max_rel", "rel_l2",
                  "nan_count", "source"])
    for r in rows:
        notes = r["notes"]
        if notes is None:
            notes = known.get(engine_key(r["entry"], r["pass_"]), set())
        wrong = r["nan_count"] > 0 or r["rel_l2"] != r["rel_l2"] or r["rel_l2"] > 0.5
        out.writerow([r["entry"], r["pass_"], r["problem"], r["seed"], "+".join(sorted(notes)),
                      "wrong" if wrong else "right", repr(r["max_rel"]), repr(r["rel_l2"]),
                      r["nan_count"], r["source"]])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
