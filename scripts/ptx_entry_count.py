#!/usr/bin/env python3
"""Instructions one network runs in a PTX .entry whose every branch on the cell is
a constant: small_kernels.cu's probe, built by scripts/sass_report.sh.

NVVM leaves the branches it has decided in the PTX (`mov.pred %p1, -1; @%p1 bra`)
for ptxas to delete, so a plain count would include the code of every other
activation and init. This follows the entry's control flow from its start,
takes the decided side of each branch whose predicate is a constant (a mov.pred
of a literal, or a setp comparing registers that only ever hold one literal),
and counts the instructions of the blocks it reaches. The remaining branches
test data (NaN-propagating maxima, the out-of-range sums): both of their sides
are counted, as SASS predicates them. Loops (a back edge) are refused: the
probe unrolls them, so one pass is one network.

Usage: ptx_entry_count.py FILE.ptx NAME_SUBSTRING...
       ptx_entry_count.py --sass FILE.sass NAME_SUBSTRING...   (nvdisasm -c output)

--sass counts a kernel's SASS twice: every instruction but NOP padding, and the
same less the slow paths of double division and square root, which the fast path
takes only for operands near the ends of double's range: the library routines
(`$__internal_...` after the kernel's code) and each call site's argument moves
and call (from the branch that skips them to the label it jumps to).
"""
import re
import sys


def entry_body(ptx, name):
    m = re.search(r"^\.(?:visible )?\.?entry\s+(\S*" + re.escape(name) + r"\S*)\(", ptx, re.M)
    if not m:
        sys.exit(f"ptx_entry_count.py: no entry matching {name}")
    start = ptx.index("{", m.end())
    depth, k = 0, start
    while True:
        depth += (ptx[k] == "{") - (ptx[k] == "}")
        if depth == 0:
            return ptx[start + 1 : k]
        k += 1


def blocks_of(body):
    """[(label, [instructions])] in order; the first block's label is None."""
    out = [(None, [])]
    for line in body.split("\n"):
        s = line.strip()
        if not s or s.startswith((".", "//", "{", "}")):
            continue
        if s.endswith(":"):
            out.append((s[:-1], []))
        else:
            out[-1][1].append(s.rstrip(";").strip())
    return out


def literal(x):
    try:
        return int(x, 0)
    except ValueError:
        return None


def constants(instrs):
    """Registers whose every definition is a mov of the same literal -> value."""
    defs = {}
    for s in instrs:
        m = re.match(r"(?:@%!?p\d+\s+)?([\w.]+)\s+(%\w+)\s*,\s*(.*)$", s)
        if not m:
            continue
        op, dst, rest = m.groups()
        v = literal(rest.strip()) if op.startswith("mov.") and "," not in rest else None
        defs.setdefault(dst, []).append((op, v, rest))
    const = {r: d[0][1] for r, d in defs.items() if all(x[1] is not None and x[1] == d[0][1] for x in d)}
    # setp.<cmp>.<type> %p, a, b with both operands constant (registers or literals)
    cmp = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
           "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b}
    for r, d in defs.items():
        if r in const or len(d) != 1 or not d[0][0].startswith("setp."):
            continue
        c = d[0][0].split(".")[1]
        ops = [o.strip() for o in d[0][2].split(",")]
        vals = [const.get(o, literal(o)) for o in ops]
        if c in cmp and len(vals) == 2 and None not in vals:
            const[r] = -1 if cmp[c](*vals) else 0
    return const


def count(body):
    blocks = blocks_of(body)
    index = {lab: k for k, (lab, _) in enumerate(blocks)}
    const = constants([s for _, ins in blocks for s in ins])
    seen, stack, n, open_branches = set(), [0], 0, 0
    while stack:
        k = stack.pop()
        if k in seen or k >= len(blocks):
            continue
        seen.add(k)
        falls = True
        for s in blocks[k][1]:
            n += 1
            m = re.match(r"(@(%!?)(p\d+)\s+)?bra(?:\.uni)?\s+(\S+)", s)
            if not m:
                if s.startswith("ret") or s.startswith("exit"):
                    falls = False
                continue
            target = index[m.group(4)]
            if target <= k:
                sys.exit("ptx_entry_count.py: a loop in the entry; the probe must unroll every loop")
            if not m.group(1):
                stack.append(target)
                falls = False
                break
            p = const.get("%" + m.group(3))
            if p is None:
                open_branches += 1
                stack.append(target)
                continue
            taken = (p != 0) != (m.group(2) == "%!")
            if taken:
                stack.append(target)
                falls = False
                break
        if falls:
            stack.append(k + 1)
    # Philox's products: mul.wide.u32 by one of its two multipliers (philox.hpp's
    # mulhilo32 passes them as immediates).
    philox_mul = re.compile(r"mul\.wide\.u32\s+\S+,\s*%\w+,\s*(-766435501|-845247145|3528531795|3449720151)$")
    products = sum(1 for k in seen for s in blocks[k][1] if philox_mul.match(s))
    return n, open_branches, products


def sass_counts(sass, name):
    """(all instructions, instructions off the slow paths) of the kernel `name`."""
    lines = sass.split("\n")
    start = next((k for k, l in enumerate(lines) if l.startswith("\t.section\t.text.") and name in l), None)
    if start is None:
        sys.exit(f"ptx_entry_count.py: no SASS section matching {name}")
    items = []  # (is_label, text)
    for l in lines[start + 1 :]:
        if l.startswith("\t.section"):
            break
        if re.match(r"^[.$\w]+:$", l.strip()) and not l.startswith(" "):
            items.append((True, l.strip()))
        elif re.match(r"^ +/\*[0-9a-f]+\*/", l) and "NOP" not in l:
            items.append((False, l))
    slow = set()
    first_internal = next((k for k, (lab, t) in enumerate(items) if lab and t.startswith("$__internal")), len(items))
    slow.update(range(first_internal, len(items)))
    for c, (lab, t) in enumerate(items[:first_internal]):
        if lab or "CALL.REL" not in t or "$__internal" not in t:
            continue
        b = c
        while b > 0 and not (not items[b - 1][0] and " BRA " in items[b - 1][1]):
            b -= 1
        e = c
        while e < len(items) and not items[e][0]:
            e += 1
        slow.update(range(b, e))
    instrs = [k for k, (lab, _) in enumerate(items) if not lab]
    return len(instrs), sum(1 for k in instrs if k not in slow)


if sys.argv[1] == "--sass":
    sass = open(sys.argv[2]).read()
    for name in sys.argv[3:]:
        total, fast = sass_counts(sass, name)
        print(f"{total:6d} SASS instructions, {fast:6d} without the division and sqrt slow paths: {name}")
    sys.exit(0)

ptx = open(sys.argv[1]).read()
for name in sys.argv[2:]:
    n, br, mh = count(entry_body(ptx, name))
    # Philox4x32-10 takes two 32x32 -> 64-bit products per round, ten rounds per block.
    print(f"{n:6d} PTX instructions per network, {br:3d} data-dependent branches (both sides counted), "
          f"{mh / 20:5.1f} Philox blocks: {name}")
