#!/usr/bin/env bash
# Static cost of the network kernels, without a GPU: compiles kernels/cuda_backend.cu
# for sm_90 with the flags CMakeLists.txt gives it and prints, per kernel, what
# ptxas reports (registers, stack, spills) and, per inner loop (the forward row
# sweep, the backward column sweep), instructions per weight counted from the PTX
# by scripts/ptx_loops.py. docs/cuda_backend.md ("Static instruction counts")
# explains the numbers. Output is stable text, meant to be committed under
# bench/results/.
#
# Usage: scripts/sass_report.sh [OUTPUT_FILE]   (default: stdout)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
PTXAS="$(dirname "$NVCC")/ptxas"
ARCH=sm_90
tmp="$(mktemp -d)"
# SASS_REPORT_KEEP=DIR: the PTX, cubin and disassembly stay there for reading.
trap 'if [[ -n "${SASS_REPORT_KEEP:-}" ]]; then mkdir -p "$SASS_REPORT_KEEP"; cp "$tmp"/k.* "$SASS_REPORT_KEEP"/; fi; rm -rf "$tmp"' EXIT

# The flags of gradsweep_cuda in CMakeLists.txt (Release), for one architecture.
"$NVCC" -std=c++20 --expt-relaxed-constexpr -lineinfo -O3 -DNDEBUG -I include -I kernels \
    -arch="$ARCH" -ptx kernels/cuda_backend.cu -o "$tmp/k.ptx"
"$PTXAS" -arch="$ARCH" -O3 -v --generate-line-info "$tmp/k.ptx" -o "$tmp/k.cubin" 2>"$tmp/ptxas.txt"

# A SASS disassembler, optional: NVDISASM, else nvdisasm on PATH or next to nvcc.
# CUDA 13's toolkit here ships none; CUDA 11.8's (Debian's non-free
# nvidia-cuda-toolkit, unpacked anywhere with dpkg -x) reads this cubin once its ELF
# header is rewritten to the older ABI (scripts/ptx_loops.py --cubin-abi7).
NVDISASM="${NVDISASM:-$(command -v nvdisasm || { [[ -x "$(dirname "$NVCC")/nvdisasm" ]] && echo "$(dirname "$NVCC")/nvdisasm"; } || true)}"
if [[ -n "$NVDISASM" ]]; then
    python3 scripts/ptx_loops.py --cubin-abi7 "$tmp/k.cubin" "$tmp/k7.cubin"
    if ! "$NVDISASM" -gi -c "$tmp/k7.cubin" >"$tmp/k.sass" 2>"$tmp/nvdisasm.txt"; then
        echo "scripts/sass_report.sh: $NVDISASM failed: $(head -c 300 "$tmp/nvdisasm.txt"); SASS counts left out" >&2
        NVDISASM=""
    fi
fi

report() {
    echo "# scripts/sass_report.sh: kernels/cuda_backend.cu for $ARCH"
    echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- kernels include 2>/dev/null || echo ' (kernels or include modified)')"
    echo "# $("$NVCC" --version | grep -o 'release [0-9.]*, V[0-9.]*' || true)"
    echo
    echo "## ptxas -v (registers, stack, spills)"
    awk '
        /Compiling entry function/ { name = $0; sub(/.*network_kernel/, "network_kernel", name); sub(/EEvNS0.*/, "", name);
                                      sub(/network_kernelIf/, "network_kernel<float>", name); sub(/network_kernelId/, "network_kernel<double>", name) }
        /bytes stack frame/ && name != "" { stack = $0; gsub(/^ +/, "", stack) }
        /Used [0-9]+ registers/ && name != "" { regs = $0; sub(/.*Used /, "", regs); sub(/,.*/, "", regs);
                                                 printf "%-24s %s; %s\n", name, regs, stack; name = "" }
    ' "$tmp/ptxas.txt"
    echo
    if [[ -n "$NVDISASM" ]]; then
        echo "## Inner loops, from the SASS ($("$NVDISASM" --version | grep -o 'release [0-9.]*' || true) nvdisasm)"
        echo "# issued SASS instructions in one iteration of the innermost loop holding the"
        echo "# [sweep:...] line, chosen as for the PTX counts below (the same analysis on"
        echo "# the disassembly); predicated instructions count once each."
        python3 scripts/ptx_loops.py "$tmp/k.ptx" "$root" --sass "$tmp/k.sass"
        echo
    fi
    echo "## Inner loops, from the PTX"
    echo "# static PTX instructions in one iteration of the innermost loop holding the"
    echo "# [sweep:...] line; 'uniform'/'normal': philox mode with that init, torch-mode"
    echo "# and zero-init code and the trigonometric slow path left out, both sides of"
    echo "# every other branch counted. PTX is not SASS: ptxas may fuse or expand."
    python3 scripts/ptx_loops.py "$tmp/k.ptx" "$root"
}

# The small-width kernels (kernels/small_kernels.cu): ptxas -v per shape, and the
# instructions one network of the benchmarks' 5 x 3 cell runs, from the probe
# (GS_SMALL_KERNEL_PROBE: that cell with every setting a constant) by
# scripts/ptx_entry_count.py.
small_report() {
    "$NVCC" -std=c++20 --expt-relaxed-constexpr -lineinfo -O3 -DNDEBUG -I include -I kernels \
        -arch="$ARCH" -ptx kernels/small_kernels.cu -o "$tmp/s.ptx"
    "$PTXAS" -arch="$ARCH" -O3 -v "$tmp/s.ptx" -o "$tmp/s.cubin" 2>"$tmp/ptxas_s.txt"
    "$NVCC" -std=c++20 --expt-relaxed-constexpr -lineinfo -O3 -DNDEBUG -DGS_SMALL_KERNEL_PROBE -I include -I kernels \
        -arch="$ARCH" -ptx kernels/small_kernels.cu -o "$tmp/probe.ptx"
    echo
    echo "## Small-width kernels (kernels/small_kernels.cu), ptxas -v"
    awk '
        /Compiling entry function/ { name = $0; sub(/.*small_network_kernelI/, "", name); sub(/EEEvNS0.*/, "", name);
                                      t = substr(name, 1, 1) == "f" ? "float" : "double"; sub(/^[fd]Li/, "", name);
                                      gsub(/ELi/, ",", name); name = "small_network_kernel<" t "," name ">" }
        /bytes stack frame/ && name != "" { stack = $0; gsub(/^ +/, "", stack) }
        /Used [0-9]+ registers/ && name != "" { regs = $0; sub(/.*Used /, "", regs); sub(/,.*/, "", regs);
                                                 printf "%-36s %s; %s\n", name, regs, stack; name = "" }
    ' "$tmp/ptxas_s.txt"
    echo
    echo "## Small-width kernel, one network of sizes 3-3-3-3-3-1 (shortcut, bias, uniform init, fixed input)"
    echo "# PTX instructions on the probe's path (decided branches followed, data-dependent ones both sides)."
    echo "# PTX is not SASS: ptxas turns each pair of xors into one LOP3 and expands double division and sqrt."
    local names=(-E -e 's/[^ ]*small_probe_kernelIfLNS_10ActivationE0E[^ ]*/float, relu/'
                 -e 's/[^ ]*small_probe_kernelIfLNS_10ActivationE1E[^ ]*/float, gelu/'
                 -e 's/[^ ]*small_probe_kernelIdLNS_10ActivationE0E[^ ]*/double, relu/')
    python3 scripts/ptx_entry_count.py "$tmp/probe.ptx" small_probe_kernelIfLNS_10ActivationE0E small_probe_kernelIfLNS_10ActivationE1E \
        small_probe_kernelIdLNS_10ActivationE0E | sed "${names[@]}"
    if [[ -n "$NVDISASM" ]]; then
        "$PTXAS" -arch="$ARCH" -O3 "$tmp/probe.ptx" -o "$tmp/probe.cubin"
        python3 scripts/ptx_loops.py --cubin-abi7 "$tmp/probe.cubin" "$tmp/probe7.cubin"
        "$NVDISASM" -c "$tmp/probe7.cubin" >"$tmp/probe.sass"
        echo "# SASS of the whole probe kernel (every instruction but NOP padding once, the division's slow path included)"
        awk '/\.text\./ { f = $0; sub(/.*\.text\./, "", f); sub(/:.*/, "", f) }
             /^ +\/\*[0-9a-f]+\*\// && f ~ /probe/ && $0 !~ /NOP/ { n[f]++; if ($0 ~ / BRA /) b[f]++ }
             END { for (f in n) printf "%6d SASS instructions, %3d branches: %s\n", n[f], b[f], f }' "$tmp/probe.sass" | sort -k6 | sed "${names[@]}"
        echo "# the same less the double division's and square root's slow paths (the library routines and each"
        echo "# call site's moves and call; taken only for operands near the ends of double's range)"
        python3 scripts/ptx_entry_count.py --sass "$tmp/probe.sass" small_probe_kernelIfLNS_10ActivationE0E small_probe_kernelIfLNS_10ActivationE1E \
            small_probe_kernelIdLNS_10ActivationE0E | sed "${names[@]}"
    fi
}

if [[ $# -ge 1 ]]; then { report; small_report; } >"$1"; else report; small_report; fi
