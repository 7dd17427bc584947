#!/usr/bin/env python3
"""Checks shared by the scale-out CLI tests.

  scale_out_check.py units DIR [B]        every DIR/units/*.bin is a complete unit file and
                                       every DIR/cells/*.bin a complete cell file (header,
                                       exact size, checksum); prints how many units they hold
  scale_out_check.py same A.json B.json results.json files agree on everything but the
                                       provenance fields that describe the execution
  scale_out_check.py no-temporaries DIR  no "*.tmp.*" file anywhere under DIR
"""
import json
import os
import struct
import sys

# docs/scale_out.md: these provenance fields may differ between an unsharded run,
# a merge, a resumed run and a multi-device run; nothing else may.
EXECUTION_FIELDS = {"backend", "device", "threads", "start_time", "end_time", "elapsed_seconds",
                    "networks_per_second", "resumed_units", "devices", "shards", "merge_seconds"}

MASK = (1 << 64) - 1


def checksum(data):
    h = 0xcbf29ce484222325
    for (w,) in struct.iter_unpack("<Q", data):
        h = ((h ^ w) * 0x100000001b3) & MASK
    return h


def check_unit(path):
    data = open(path, "rb").read()
    if len(data) < 80:
        return "truncated"
    if data[:8] != b"GSUNIT6\n":  # the digit: version of the per-network values (checkpoint.cpp)
        return "bad magic"
    cell, block, off, count, stride, block_seeds = struct.unpack("<6Q", data[24:72])
    want = 72 + count * stride * 8 + 8
    if len(data) != want:
        return f"size {len(data)} != {want}"
    name = os.path.basename(path)
    if name != f"cell-{cell}-block-{block}.bin":
        return f"header says cell {cell} block {block}"
    (stored,) = struct.unpack("<Q", data[-8:])
    if checksum(data[:-8]) != stored:
        return "checksum mismatch"
    return None


def check_cell(path):
    data = open(path, "rb").read()
    if len(data) < 64:
        return "truncated", 0
    if data[:8] != b"GSCELL6\n":
        return "bad magic", 0
    cell, depth, networks, _ = struct.unpack("<4Q", data[24:56])
    want = 56 + (depth * 5 + 1) * 88 + 2 * 56 + 8  # header, summaries, growth records, checksum
    if len(data) != want:
        return f"size {len(data)} != {want}", 0
    if os.path.basename(path) != f"cell-{cell}.bin":
        return f"header says cell {cell}", 0
    (stored,) = struct.unpack("<Q", data[-8:])
    if checksum(data[:-8]) != stored:
        return "checksum mismatch", 0
    return None, networks


def main():
    cmd = sys.argv[1]
    if cmd == "units":
        d = os.path.join(sys.argv[2], "units")
        n = 0
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if not name.endswith(".bin"):
                continue  # a temporary left by kill -9 is allowed; resume removes it
            why = check_unit(os.path.join(d, name))
            if why:
                print(f"bad unit file {name}: {why}", file=sys.stderr)
                sys.exit(1)
            n += 1
        # A summarised cell stands for all its units: count them by seeds.
        d = os.path.join(sys.argv[2], "cells")
        block = int(sys.argv[3]) if len(sys.argv) > 3 else 0
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if not name.endswith(".bin"):
                continue
            why, networks = check_cell(os.path.join(d, name))
            if why:
                print(f"bad cell file {name}: {why}", file=sys.stderr)
                sys.exit(1)
            n += -(-networks // block) if block else 1
        print(n)
    elif cmd == "same":
        a, b = (json.load(open(p)) for p in sys.argv[2:4])
        for j in (a, b):
            for k in EXECUTION_FIELDS:
                j["provenance"].pop(k, None)
        if a != b:
            diff = [k for k in set(a) | set(b) if a.get(k) != b.get(k)]
            print(f"results.json differ in {diff}", file=sys.stderr)
            if "provenance" in diff:
                print(a["provenance"], b["provenance"], file=sys.stderr)
            sys.exit(1)
    elif cmd == "no-temporaries":
        left = [os.path.join(r, f) for r, _, fs in os.walk(sys.argv[2]) for f in fs if ".tmp." in f]
        if left:
            print(f"temporary files left: {left}", file=sys.stderr)
            sys.exit(1)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
