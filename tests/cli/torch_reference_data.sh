#!/usr/bin/env bash
# tests/data/torch_cases.json (the PyTorch reference cases that
# tests/test_torch_reference.cpp and the GPU/emulation tests check against) is
# what scripts/torch_reference.py computes for its cases today: regenerated
# here and compared byte for byte, except the "generator" line that names the
# PyTorch version. A missing file is a failure. Needs /usr/bin/python3 with
# torch; without it, exits 77 (skipped), as the other torch_* tests do.
set -euo pipefail
bin=$1 src=$2 work=$3
data=$src/tests/data/torch_cases.json
[[ -s $data ]] || { echo "FAIL: $data is missing (regenerate it with scripts/torch_reference.py)" >&2; exit 1; }
py=${GS_PYTHON:-/usr/bin/python3}
[[ -x $py ]] || py=python3
if ! "$py" -c "import torch" 2>/dev/null; then
    echo "SKIPPED: PyTorch is not importable by $py (install python3-torch)"
    exit 77
fi
rm -rf "$work"; mkdir -p "$work"
"$py" "$src/scripts/torch_reference.py" --cases "$data" --out "$work/regenerated.json"
grep -v '^ "generator": ' "$data" > "$work/committed.body"
grep -v '^ "generator": ' "$work/regenerated.json" > "$work/regenerated.body"
if ! cmp -s "$work/committed.body" "$work/regenerated.body"; then
    diff "$work/committed.body" "$work/regenerated.body" | head -20 >&2
    echo "FAIL: scripts/torch_reference.py --cases $data gives other numbers than the committed file" >&2
    exit 1
fi
echo "torch_reference_data: $(grep -c '"name"' "$data") cases regenerate identically ($(grep '"generator"' "$work/regenerated.json" | tr -d ' ,'))"
