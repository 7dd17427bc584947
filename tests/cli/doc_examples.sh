#!/usr/bin/env bash
# Every ```json block in README.md and docs/*.md is valid JSON; every one that is
# a sweep spec (an object with "network" or "grid") passes `gradsweep validate`
# as written, and runs to completion when it is small (at most 50000 networks).
# There must be at least one spec among them. A block introduced by "runs as"
# must be exactly the spec that results.json records for the block before it
# (the spec with every default filled in). Every shipped sweep (sweeps/**.json)
# passes `gradsweep validate`.
set -euo pipefail
bin=$1 src=$2 work=$3
rm -rf "$work"; mkdir -p "$work"
/usr/bin/python3 - "$bin" "$src" "$work" <<'PY'
import glob, json, os, re, subprocess, sys
binary, src, work = sys.argv[1:4]
docs = [os.path.join(src, "README.md")] + sorted(glob.glob(os.path.join(src, "docs", "*.md")))
fence = re.compile(r"^```json[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
failures, specs, blocks, ran, resolved_checked = [], 0, 0, 0, 0
for doc in docs:
    text = open(doc, encoding="utf-8").read()
    last_resolved = None  # results.json's "spec" of the block before
    for m in fence.finditer(text):
        blocks += 1
        line = text.count("\n", 0, m.start()) + 1
        where = f"{os.path.relpath(doc, src)}:{line}"
        try:
            value = json.loads(m.group(1))
        except ValueError as e:
            failures.append(f"{where}: not valid JSON: {e}")
            continue
        if text[:m.start()].rstrip().endswith("runs as"):
            if last_resolved is None:
                failures.append(f"{where}: \"runs as\" without a spec that ran before it")
            elif value != last_resolved:
                failures.append(f"{where}: the spec above runs as {json.dumps(last_resolved)}, not as written here")
            resolved_checked += 1
        last_resolved = None
        if not (isinstance(value, dict) and ("network" in value or "grid" in value)):
            continue
        specs += 1
        path = os.path.join(work, f"spec{specs}.json")
        with open(path, "w") as f:
            f.write(m.group(1))
        p = subprocess.run([binary, "validate", path], capture_output=True, text=True)
        if p.returncode != 0:
            failures.append(f"{where}: gradsweep validate: exit {p.returncode}: {p.stderr.strip()}")
            continue
        networks = int(re.search(r"= (\d+) networks", p.stdout).group(1))
        if networks > 50000:
            print(f"{where}: valid ({p.stdout.strip()}); too large to run here")
            continue
        out = os.path.join(work, f"out{specs}")
        p = subprocess.run([binary, "run", path, "-o", out, "-q", "--threads", "2"], capture_output=True, text=True, timeout=300)
        if p.returncode != 0 or not os.path.exists(os.path.join(out, "results.csv")):
            failures.append(f"{where}: gradsweep run: exit {p.returncode}: {p.stderr.strip()}")
            continue
        ran += 1
        last_resolved = json.load(open(os.path.join(out, "results.json")))["spec"]
        print(f"{where}: valid and ran ({p.stdout.strip() or networks} networks)")
print(f"{blocks} json blocks, {specs} specs, {ran} run, {resolved_checked} resolved forms checked")
# The shipped sweeps (sweeps/, sweeps/seeds/, sweeps/studies/) validate as they are.
shipped = sorted(glob.glob(os.path.join(src, "sweeps", "**", "*.json"), recursive=True))
for path in shipped:
    p = subprocess.run([binary, "validate", path], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        failures.append(f"{os.path.relpath(path, src)}: gradsweep validate: exit {p.returncode}: {p.stderr.strip()}")
print(f"{len(shipped)} shipped sweeps validated")
if not any("/studies/" in x for x in shipped):
    failures.append("no sweep under sweeps/studies/")
for f in failures:
    print("FAIL:", f)
if specs == 0:
    print("FAIL: no spec example found in README.md or docs/")
sys.exit(1 if failures or specs == 0 else 0)
PY
