#!/usr/bin/env python3
"""Compares two gradsweep results.json files of the same spec, statistic by
statistic: the CUDA backend's (GOT) against the CPU backend's (WANT).

usage: gpu_accept_compare.py GOT_RESULTS WANT_RESULTS --tol REL [--json OUT] [--label NAME]

Every cell, every layer quantity and the loss; per summary: n and n_nonfinite
must be equal, n_zero may differ by at most --zero-slack of n (float32: a
gradient that is exactly 0 in one backend can be a denormal in the other), and
each of mean, std, min, q05, median, q95, max, geomean must satisfy

    |got - want| <= tol * (max(|got|, |want|) + spread)

where spread = max(|max|, |min|) of that summary in WANT: the statistics are of
non-negative quantities, and a per-network relative difference of at most tol
moves an order statistic, a mean or a geometric mean by at most tol relative,
but a standard deviation by up to tol times the largest value. Null (non-finite)
must match null. The tolerances and why are in docs/cuda_backend.md
("End to end"). Standard library only, so it runs on a bare GPU machine.
Exit 0 when everything is within tolerance, 1 when not, 2 on bad input.
"""
import argparse
import json
import math
import os
import sys

STATS = ["mean", "std", "min", "q05", "median", "q95", "max", "geomean"]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print("gpu_accept_compare: %s: %s" % (path, e), file=sys.stderr)
        sys.exit(2)


def summaries(cell):
    """(name, summary) for every summary of a cell, in file order."""
    out = [("loss", cell["loss"])]
    for layer in cell["layers"]:
        for key, value in layer.items():
            if isinstance(value, dict) and "n" in value:
                out.append(("layer %d %s" % (layer["layer"], key), value))
    return out


def compare(got_doc, want_doc, tol, zero_slack):
    report = {
        "tolerance": tol,
        "cells": 0,
        "summaries": 0,
        "values": 0,
        "failures": 0,
        "max_rel_dev": 0.0,
        "max_rel_dev_by_stat": {s: 0.0 for s in STATS},
        "worst": None,
        "first_failures": [],
    }

    def fail(what):
        report["failures"] += 1
        if len(report["first_failures"]) < 20:
            report["first_failures"].append(what)

    if got_doc.get("spec_hash") != want_doc.get("spec_hash"):
        fail("spec_hash differs: %s vs %s" % (got_doc.get("spec_hash"), want_doc.get("spec_hash")))
        return report
    gcells, wcells = got_doc["cells"], want_doc["cells"]
    if len(gcells) != len(wcells):
        fail("%d cells vs %d" % (len(gcells), len(wcells)))
        return report
    for gc, wc in zip(gcells, wcells):
        report["cells"] += 1
        where_cell = "cell %s (%s)" % (wc["cell"], json.dumps(wc.get("axes", {}), sort_keys=True))
        if gc["networks"] != wc["networks"] or gc["nonfinite_networks"] != wc["nonfinite_networks"]:
            fail("%s: networks %s/%s vs %s/%s" % (where_cell, gc["networks"], gc["nonfinite_networks"],
                                                  wc["networks"], wc["nonfinite_networks"]))
        gs, ws = summaries(gc), summaries(wc)
        if [n for n, _ in gs] != [n for n, _ in ws]:
            fail("%s: different quantities" % where_cell)
            continue
        for (name, g), (_, w) in zip(gs, ws):
            report["summaries"] += 1
            where = "%s %s" % (where_cell, name)
            for key in ("n", "n_nonfinite"):
                if g[key] != w[key]:
                    fail("%s %s: %s vs %s" % (where, key, g[key], w[key]))
            if abs(g["n_zero"] - w["n_zero"]) > zero_slack * max(w["n"], 1):
                fail("%s n_zero: %s vs %s" % (where, g["n_zero"], w["n_zero"]))
            spread = max(abs(w["max"]) if w["max"] is not None else 0.0, abs(w["min"]) if w["min"] is not None else 0.0)
            for s in STATS:
                a, b = g[s], w[s]
                if a is None or b is None:
                    if (a is None) != (b is None):
                        fail("%s %s: %s vs %s" % (where, s, a, b))
                    continue
                report["values"] += 1
                scale = max(abs(a), abs(b))
                err = abs(a - b)
                rel = err / scale if scale > 0 else 0.0
                if rel > report["max_rel_dev_by_stat"][s]:
                    report["max_rel_dev_by_stat"][s] = rel
                if rel > report["max_rel_dev"]:
                    report["max_rel_dev"] = rel
                    report["worst"] = {"where": where, "statistic": s, "got": a, "want": b, "rel": rel}
                if not (err <= tol * (scale + spread)) or math.isnan(err):
                    fail("%s %s: got %r want %r (rel %.3g, tol %g)" % (where, s, a, b, rel, tol))
    return report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("got")
    ap.add_argument("want")
    ap.add_argument("--tol", type=float, required=True)
    ap.add_argument("--zero-slack", type=float, default=0.0)
    ap.add_argument("--json")
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    got_doc, want_doc = load(a.got), load(a.want)
    report = compare(got_doc, want_doc, a.tol, a.zero_slack)
    report["label"] = a.label
    report["precision"] = want_doc.get("provenance", {}).get("precision")
    report["backends"] = [got_doc.get("provenance", {}).get("backend"), want_doc.get("provenance", {}).get("backend")]
    report["ok"] = report["failures"] == 0 and report["values"] > 0
    if report["values"] == 0:
        report["first_failures"].append("nothing compared")
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(report, f, indent=1)
        os.replace(a.json + ".tmp", a.json)
    print("%s: %d cells, %d values, %d failures, max relative deviation %.3g%s" % (
        a.label or a.got, report["cells"], report["values"], report["failures"], report["max_rel_dev"],
        (" at %s %s" % (report["worst"]["where"], report["worst"]["statistic"])) if report["worst"] else ""))
    for f in report["first_failures"]:
        print("  FAIL " + f)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
