#!/usr/bin/env python3
"""Static instruction counts of the network kernels' inner loops, read from PTX.

Used by scripts/sass_report.sh when no SASS disassembler is available. PTX is
compiled with -lineinfo, so every instruction carries the source line it came
from (and the line of its caller where it was inlined). From that:

  * each .entry is split into basic blocks and its control-flow graph;
  * a sweep loop is the innermost natural loop containing an anchor line, a
    source line of kernels/network_body.cuh tagged `// [sweep:NAME]`;
  * a scenario (philox mode, uniform or normal init) keeps the loop's blocks
    reachable from the loop head over edges whose exclusive region (the blocks
    the edge's target dominates) is not mostly code of another scenario: torch
    mode, a zero init, the other distribution, or the trigonometric slow path
    (Payne-Hanek reduction, only taken for |x| >= 105615, never for Box-Muller
    angles in [0, 2 pi)). Both sides of every other branch are counted, as SASS
    issues both sides of a branch it predicates (batch-row guards, a row's
    second Philox block), so this is a static count, not a trace;
  * instructions per weight = that count / the weights one iteration handles
    (4: one Philox block in the forward, four columns in the backward).

Usage: ptx_loops.py FILE.ptx REPO_ROOT
"""
import re
import os
import sys

DETAIL = os.environ.get("PTX_LOOPS_DETAIL") == "1"
from collections import Counter, defaultdict

SCENARIOS = {
    "uniform": {"torch", "zero", "normal"},
    "normal": {"torch", "zero", "uniform"},
}

# (file, regex on a source line, tag): the brace-delimited body that starts on a
# matching line (the line's last '{' to its matching '}', both lines excluded) is
# code of that tag only.
TAG_RULES = [
    ("kernels/network_body.cuh", r"if \(a\.torch\)", "torch"),
    ("kernels/network_body.cuh", r"kind == Dist::zero", "zero"),
    ("kernels/network_body.cuh", r"wdist\.kind == Dist::uniform\)", "uniform"),
    ("kernels/net_math.cuh", r"if \(kind == Dist::uniform\)", "uniform"),
    ("kernels/net_math.cuh", r"else if \(kind == Dist::normal\)", "normal"),
    ("include/gradsweep/random_values.hpp", r"\bnormal_pair\s*\(", "normal"),
    ("include/gradsweep/random_values.hpp", r"\buniform_pm1(_fma)?\s*\(", "uniform"),
]


def body_ranges(lines, pattern):
    """1-based line numbers strictly inside each braced body opened on a matching line."""
    out = set()
    for i, text in enumerate(lines):
        if not re.search(pattern, text) or not text.rstrip().endswith("{"):
            continue
        depth = 1
        for k in range(i + 1, len(lines)):
            for ch in lines[k]:
                depth += (ch == "{") - (ch == "}")
                if depth == 0:
                    break
            if depth == 0:
                out.update(range(i + 2, k + 1))  # 1-based: after the opener's line, before the closer's
                break
    return out


def load_tags(root):
    tags = {}  # (basename, line) -> tag
    for rel, pat, tag in TAG_RULES:
        with open(f"{root}/{rel}") as f:
            lines = f.read().split("\n")
        base = rel.split("/")[-1]
        for n in body_ranges(lines, pat):
            tags[(base, n)] = tag
    return tags


def anchors(root):
    out = {}
    with open(f"{root}/kernels/network_body.cuh") as f:
        for n, text in enumerate(f, 1):
            m = re.search(r"//\s*\[sweep:(\w+)(?:\s+weights=(\d+))?\]", text)
            if m:
                out.setdefault(m.group(1), []).append(n)
    return out


def parse(ptx):
    files = {}
    for l in ptx:
        m = re.match(r'\s*\.file\s+(\d+)\s+"([^"]+)"', l)
        if m:
            files[int(m.group(1))] = m.group(2).split("/")[-1]
    entries, cur = [], None
    for l in ptx:
        if re.match(r"^(\.visible |\.weak )?\.entry", l):
            cur = (l.split()[-1].rstrip("("), [])
            entries.append(cur)
        elif re.match(r"^(\.visible |\.weak )?\.func", l):
            cur = None
        elif cur is not None:
            cur[1].append(l)
    return files, entries


def blocks_of(files, body):
    blocks = [{"label": None, "ins": []}]
    loc = None
    for l in body:
        s = l.strip()
        if not s or s.startswith("//"):
            continue
        m = re.match(r"^(\$L__\w+):$", s)
        if m:
            blocks.append({"label": m.group(1), "ins": []})
            continue
        m = re.match(r"\.loc\s+(\d+)\s+(\d+)\s+\d+(?:,.*inlined_at\s+(\d+)\s+(\d+))?", s)
        if m:
            loc = (files.get(int(m.group(1))), int(m.group(2)),
                   files.get(int(m.group(3))) if m.group(3) else None, int(m.group(4)) if m.group(4) else None)
            continue
        # Declarations, pragmas, braces and call-sequence scaffolding are not instructions.
        if s.startswith(".") or s in ("{", "}") or s.startswith("{ //") or s.startswith("}") or s.endswith(","):
            if not s.startswith("call"):
                continue
        if re.match(r"^[\w$]+,?$", s) or s.startswith(")") or s.startswith("("):
            continue
        blocks[-1]["ins"].append((s, loc))
        if re.search(r"\bbra(\.uni)?\s", s) or s.startswith("ret") or s.startswith("exit"):
            blocks.append({"label": None, "ins": []})
    return [b for b in blocks if b["ins"] or b["label"]]


def parse_sass(text):
    """nvdisasm -gi -c output -> [(function name, blocks)], blocks as blocks_of makes
    them: instructions with their (file, line, inlined-at file, inlined-at line),
    labels .L_x_N, a block ending after every branch, EXIT or RET. A `//##` group
    names the innermost location first, then its callers."""
    funcs, cur, blocks, loc, pending = [], None, None, None, []
    for raw in text.split("\n"):
        s = raw.strip()
        m = re.match(r"^\.text\.(\S+):$", s)
        if m:
            blocks = [{"label": None, "ins": []}]
            cur = (m.group(1), blocks)
            funcs.append(cur)
            continue
        if cur is None:
            continue
        m = re.match(r'//## File "([^"]+)", line (\d+)(?: inlined at "([^"]+)", line (\d+))?', s)
        if m:
            pending.append((m.group(1).split("/")[-1], int(m.group(2)),
                            m.group(3).split("/")[-1] if m.group(3) else None, int(m.group(4)) if m.group(4) else None))
            continue
        if pending:
            loc, pending = pending[0], []
        m = re.match(r"^(\.L_x_\d+):$", s)
        if m:
            blocks.append({"label": m.group(1), "ins": []})
            continue
        m = re.match(r"^/\*[0-9a-f]+\*/\s+(.*?)\s*;", s)
        if not m:
            continue
        ins = m.group(1)
        blocks[-1]["ins"].append((ins, loc))
        if re.search(r"\b(BRA|BRX|JMP|JMX)\b", ins) or re.match(r"^(@!?U?P\w+\s+)?(EXIT|RET)\b", ins):
            blocks.append({"label": None, "ins": []})
    out = []
    for name, bl in funcs:
        kept = [b for b in bl if b["ins"] or b["label"]]
        for b in kept:
            b["sass"] = True
        out.append((name, kept))
    return out


def sass_succ(blocks):
    """Successors of each SASS block: a branch's target label (every label a BRX
    names), the next block unless the block ends in an unconditional branch, EXIT or RET."""
    idx = {b["label"]: i for i, b in enumerate(blocks) if b["label"]}
    succ = []
    for i, b in enumerate(blocks):
        s = []
        last = b["ins"][-1][0] if b["ins"] else ""
        pred = re.match(r"^@!?U?P[T0-9]+\s+", last)
        targets = re.findall(r"\((\.L_x_\d+)\)", last) if re.search(r"\b(BRA|BRX|JMP|JMX)\b", last) else []
        s.extend(idx[t] for t in targets if t in idx)
        ends = bool(targets) or re.search(r"\b(BRX|JMX)\b", last) or re.match(r"^(EXIT|RET)\b", last)
        if not ends or pred:
            s.append(i + 1)
        succ.append([t for t in s if t < len(blocks)])
    pred_l = [[] for _ in blocks]
    for i, s in enumerate(succ):
        for t in s:
            pred_l[t].append(i)
    return succ, pred_l


def sass_rare(blocks, succ, pred):
    """SASS form of the slow-path edges: a branch on a predicate set by comparing
    |x| with 105615 (float) or 2^31 (double), the Payne-Hanek threshold, or x with
    infinity; the side where |x| is large (or infinite) is rare."""
    rare = set()
    for u, b in enumerate(blocks):
        if not b["ins"] or len(succ[u]) != 2:
            continue
        m = re.match(r"^@(!?)(P\d)\s+BRA", b["ins"][-1][0])
        if not m:
            continue
        # SASS reuses predicate registers: the compare that set this one is the
        # last instruction writing it, in this block or, where the compiler kept
        # the predicate across blocks (sinf and cosf of one angle share one range
        # check), in the blocks before it: each step goes to the earliest
        # predecessor, the head of the if/else that joined there.
        setp, k, ins = None, u, b["ins"][:-1]
        for _ in range(64):
            found = False
            for s, _ in reversed(ins):
                w = re.match(r"^(?:@!?P\w+\s+)?\S+\s+(P\d)\b", s)
                if w and w.group(1) == m.group(2):
                    c = re.match(r"^(?:@!?P\w+\s+)?[FD]SETP\.(\w+)(?:\.\w+)*\s+P\d,\s*P\w+,\s*([^,]+),\s*([^,]+),", s)
                    if c:
                        setp = (c.group(1), c.group(2).strip() + " " + c.group(3).strip())
                    found = True
                    break
            if found or not pred[k]:
                break
            k = min(pred[k])
            if k >= u:  # a back edge: not a structured predecessor
                break
            ins = blocks[k]["ins"]
        if setp is None:
            continue
        cmp, ops = setp
        taken, fall = succ[u][0], succ[u][1]
        if re.search(r"\b(105615|2\.14748\d*e\+09|2147483648)\b", ops):
            big = cmp in ("GE", "GEU", "GT", "GTU")
        elif "INF" in ops and cmp in ("EQ", "EQU", "NE", "NEU"):
            big = cmp in ("EQ", "EQU")
        else:
            continue
        # big: the predicate is true on the rare side
        rare.add((u, taken if big != bool(m.group(1)) else fall))
    return rare


def cfg(blocks):
    if blocks and blocks[0].get("sass"):
        return sass_succ(blocks)
    idx = {b["label"]: i for i, b in enumerate(blocks) if b["label"]}
    succ = []
    for i, b in enumerate(blocks):
        s = []
        last = b["ins"][-1][0] if b["ins"] else ""
        m = re.search(r"\bbra(\.uni)?\s+(\$L__\w+)", last)
        if m:
            s.append(idx[m.group(2)])
            if last.startswith("@"):
                s.append(i + 1)
        elif not (last.startswith("ret") or last.startswith("exit")):
            s.append(i + 1)
        succ.append([t for t in s if t < len(blocks)])
    pred = [[] for _ in blocks]
    for i, s in enumerate(succ):
        for t in s:
            pred[t].append(i)
    return succ, pred


def natural_loops(succ, pred):
    loops = []
    for u, s in enumerate(succ):
        for h in s:
            if h <= u:  # back edge in layout order (LLVM lays a loop head out before its body)
                body, st = {h}, [u]
                while st:
                    n = st.pop()
                    if n not in body:
                        body.add(n)
                        st.extend(pred[n])
                loops.append((h, body))
    return loops


def dominators(nodes, head, succ_in):
    order = sorted(nodes)
    dom = {n: set(nodes) for n in nodes}
    dom[head] = {head}
    preds = defaultdict(list)
    for n in nodes:
        for t in succ_in[n]:
            preds[t].append(n)
    changed = True
    while changed:
        changed = False
        for n in order:
            if n == head:
                continue
            ps = [dom[p] for p in preds[n]]
            new = (set.intersection(*ps) if ps else set()) | {n}
            if new != dom[n]:
                dom[n] = new
                changed = True
    return dom, preds


def ins_tag(loc, tags):
    if not loc:
        return None
    t = tags.get((loc[0], loc[1]))
    if t is None and loc[2]:
        t = tags.get((loc[2], loc[3]))
    return t


def analyse(blocks, tags, anchor_lines):
    succ, pred = cfg(blocks)
    loops = natural_loops(succ, pred)
    # The trigonometric slow paths: branches on |x| < 105615 (float) or < 2^31
    # (double) leave for the Payne-Hanek reduction, and on x == inf for NaN.
    setp = {}
    for b in blocks:
        for s, _ in b["ins"]:
            m = re.match(r"setp\.(\w+)\.f(32|64)\s+(%p\d+),\s*%fd?\d+,\s*(0[fd][0-9A-F]+);", s)
            if m:
                setp[m.group(3)] = (m.group(1), m.group(4))
    rare = set()
    if blocks and blocks[0].get("sass"):
        rare = sass_rare(blocks, succ, pred)
    for u, b in enumerate(blocks):
        if blocks[0].get("sass"):
            break
        if not b["ins"]:
            continue
        m = re.match(r"@(!?)(%p\d+)\s+bra(?:\.uni)?\s+(\$L__\w+)", b["ins"][-1][0])
        if not m or m.group(2) not in setp or len(succ[u]) != 2:
            continue
        cmp, const = setp[m.group(2)]
        taken, fall = succ[u][0], succ[u][1]
        if cmp == "ltu" and const in ("0f47CE4780", "0d41E0000000000000"):
            rare_side = fall if not m.group(1) else taken
        elif cmp == "eq" and const in ("0f7F800000", "0d7FF0000000000000"):
            rare_side = taken if not m.group(1) else fall
        else:
            continue
        rare.add((u, rare_side))
    results = []
    for sweep, lines in anchor_lines.items():
        want = {("network_body.cuh", n) for n in lines}
        hits = [(h, body) for h, body in loops
                if any(loc and (loc[0], loc[1]) in want for k in body for _, loc in blocks[k]["ins"])]
        # innermost: no other hit strictly inside
        inner = [(h, b) for h, b in hits if not any(b2 < b for _, b2 in hits)]
        for h, body in sorted(inner):
            succ_in = {n: [t for t in succ[n] if t in body and t != h] for n in body}
            dom, preds = dominators(body, h, succ_in)
            dominated = defaultdict(set)
            for n in body:
                for d in dom[n]:
                    dominated[d].add(n)

            # Post-dominators on the loop body without its back edges (a virtual exit
            # after every block that leaves or loops), for the join of each branch.
            EXIT = -1
            pdom = {n: set(body) | {EXIT} for n in body}
            pdom[EXIT] = {EXIT}
            changed = True
            while changed:
                changed = False
                for n in sorted(body, reverse=True):
                    outs = succ_in[n] if succ_in[n] and all(t in succ_in for t in succ[n] if t != h) else succ_in[n] + [EXIT]
                    new = set.intersection(*[pdom[t] for t in outs]) | {n}
                    if new != pdom[n]:
                        pdom[n] = new
                        changed = True

            def reach(n):
                seen, st = set(), [n]
                while st:
                    x = st.pop()
                    if x in seen or x == EXIT:
                        continue
                    seen.add(x)
                    st.extend(succ_in[x])
                return seen

            def region_is(v, excluded, own):
                if len(preds[v]) != 1:
                    return False
                u = preds[v][0]
                strict = pdom[u] - {u}
                join = max(strict, key=lambda x: len(pdom[x]))
                reg = dominated[v] - reach(join)
                if not reg:
                    return False
                if (u, v) in rare:
                    return True
                ins = [i for k in reg for i in blocks[k]["ins"]]
                c = Counter(ins_tag(loc, tags) for _, loc in ins)
                if c[own]:
                    return False
                bad = sum(v for t, v in c.items() if t in excluded)
                return bad > 0 and bad * 2 >= len(ins)

            site = Counter()
            for k in body:
                for _, loc in blocks[k]["ins"]:
                    if loc and (loc[0], loc[1]) in want and loc[2]:
                        site[f"{loc[2]}:{loc[3]}"] += 1
            per = {}
            for scen, excluded in SCENARIOS.items():
                own = scen
                seen, st = set(), [h]
                while st:
                    n = st.pop()
                    if n in seen:
                        continue
                    seen.add(n)
                    for t in succ_in[n]:
                        if not region_is(t, excluded, own):
                            st.append(t)
                # Loops nested in the sweep loop (the batch rows past the first tile
                # in the backward's statistics) run a data-dependent number of times,
                # possibly none: counted apart, per pass.
                nested = set()
                for h2, b2 in loops:
                    if h2 != h and b2 < body:
                        nested |= b2
                ins = [i for k in seen - nested for i in blocks[k]["ins"]]
                inner = sum(len(blocks[k]["ins"]) for k in seen & nested)
                philox = sum(1 for _, loc in ins if loc and loc[0] == "philox.hpp")
                per[scen] = (len(ins), philox, inner)
                if DETAIL and scen == "uniform":
                    by = Counter(f"{loc[0]}:{loc[1]}" if loc else "?" for _, loc in ins)
                    print(f"    [{sweep} {scen}] " + ", ".join(f"{k} {v}" for k, v in by.most_common(25)))
            total = sum(len(blocks[k]["ins"]) for k in body)
            results.append((sweep, site.most_common(1)[0][0] if site else "?", total, per))
    return results


def cubin_abi7(src, dst):
    """Copies a cubin, its ELF header rewritten from CUDA 12.x/13's ABI version 8
    (architecture in e_flags bits 8..15) to version 7 (architecture in bits 0..7 and
    16..23, 64-bit addresses, unified texture mode), which CUDA 11.8's nvdisasm
    reads. The sections are untouched."""
    import struct
    d = bytearray(open(src, "rb").read())
    if d[:4] != b"\x7fELF":
        sys.exit(f"{src}: not an ELF file")
    if d[8] == 8:
        sm = (struct.unpack_from("<I", d, 48)[0] >> 8) & 0xFF
        d[8] = 7
        struct.pack_into("<I", d, 48, (sm << 16) | 0x400 | 0x100 | sm)
    open(dst, "wb").write(bytes(d))


def main():
    if sys.argv[1] == "--cubin-abi7":
        cubin_abi7(sys.argv[2], sys.argv[3])
        return
    ptx_path, root = sys.argv[1], sys.argv[2]
    sass_path = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--sass" else None
    tags = load_tags(root)
    if sass_path:
        with open(sass_path) as f:
            funcs = parse_sass(f.read())
        ptx = []
    else:
        with open(ptx_path) as f:
            ptx = f.read().split("\n")
    anchor_lines = anchors(root)
    weights = {}
    with open(f"{root}/kernels/network_body.cuh") as f:
        for text in f:
            m = re.search(r"//\s*\[sweep:(\w+)\s+weights=(\d+)\]", text)
            if m:
                weights[m.group(1)] = int(m.group(2))
    unit = "SASS" if sass_path else "PTX"
    if sass_path:
        entries = funcs
    else:
        files, entries = parse(ptx)
    for name, body in entries:
        if "network_kernel" not in name:
            continue
        kind = "float" if "network_kernelIf" in name else "double" if "network_kernelId" in name else name
        blocks = body if sass_path else blocks_of(files, body)
        n_all = sum(len(b["ins"]) for b in blocks)
        print(f"network_kernel<{kind}>: {n_all} {unit} instructions in the entry")
        res = analyse(blocks, tags, anchor_lines)
        for sweep, site, total, per in sorted(res, key=lambda r: (r[0] != "forward", r[0], r[1])):
            w = weights.get(sweep, 4)
            u, n = per["uniform"], per["normal"]
            call = site
            m = re.match(r"(.+):(\d+)$", site)
            if m:
                for path in (f"{root}/kernels/{m.group(1)}", f"{root}/include/gradsweep/{m.group(1)}"):
                    try:
                        with open(path) as f:
                            call = f"{site} `{f.read().split(chr(10))[int(m.group(2)) - 1].strip()}`"
                        break
                    except OSError:
                        pass
            print(f"  {sweep} loop, inlined at {call}")
            nested = f" | nested loop {u[2]:3d} per pass" if u[2] else ""
            print(f"    all paths {total:5d} | "
                  f"uniform {u[0]:4d} = {u[0] / w:6.1f}/weight | normal {n[0]:4d} = {n[0] / w:6.1f}/weight | "
                  f"philox.hpp {u[1]:4d} ({w} weights per iteration){nested}")


if __name__ == "__main__":
    main()
