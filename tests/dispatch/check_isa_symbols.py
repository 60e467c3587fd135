#!/usr/bin/env python3
"""Checks that a program built with run-time dispatch never runs code above the CPU's ISA.

Per-ISA variants of the same sources share weak symbols (inline functions, templates) that are not
in qtx's ISA-keyed namespaces: std::, CLI11, the caller's own helpers. The linker keeps one copy of
each, the first on the link line (qtx_add_dispatch puts the lowest ISA first), so a kept copy may
hold instructions of a higher ISA than one of its callers guarantees. From the linked program
(objdump -d: instructions and direct calls/jumps; nm: which symbols are global or weak; the linker
map: which object each function came from) this script checks every function:
  - needs: the level its instructions need: baseline (no VEX/EVEX), AVX2 (VEX), AVX-VNNI (VEX
    vpdpbusd), AVX-512 (zmm, xmm/ymm16-31, mask registers; AMX tiles, which only the avx512_vnni
    backend's GEMM runs, after checking the CPU);
  - guaranteed: for code in qtx's keyed namespaces (qtx::abi_avx2::...), its key; for a local
    function (static, .isra/.cold clones), the level of the variant object it came from; for an
    unkeyed global or weak function (what variants share), the lowest guarantee among its direct
    callers, propagated through the call graph; one whose address is taken (a lea in the code, a
    relocation in the data: vtables, function pointers) counts on the baseline, and one that is
    neither called nor referenced is dead code (a copy kept for a caller the linker discarded);
  - needs must not exceed guaranteed (AVX-VNNI and AVX-512 are siblings: each needs itself).
Usage: check_isa_symbols.py <program> <linker map> [objdump] [nm]
"""
import bisect
import re
import subprocess
import sys

BASELINE, AVX2, AVX_VNNI, AVX512 = 0, 1, 2, 3
NAMES = ["baseline", "AVX2", "AVX-VNNI", "AVX-512"]
HEADER = re.compile(r"^([0-9a-f]+) <(.+)>:$")
BRANCH = re.compile(r"^(?:call|j[a-z]+)\s+([0-9a-f]+) <")
AVX512_OPERAND = re.compile(r"%zmm|%[xy]mm(1[6-9]|2[0-9]|3[01])\b|%k[0-7]\b")


def key_level(symbol):
    if "abi_avx512" in symbol:
        return AVX512
    if "abi_avx_vnni" in symbol:
        return AVX_VNNI
    if "abi_avx" in symbol:  # abi_avx2 and abi_avx (AVX without AVX2: counted as the VEX level)
        return AVX2
    if "abi_scalar" in symbol:
        return BASELINE
    return None


def meet(a, b):
    """The most both levels guarantee."""
    if a == b:
        return a
    if {a, b} == {AVX_VNNI, AVX512}:
        return AVX2
    return min(a, b)


def satisfies(available, needed):
    if needed in (AVX_VNNI, AVX512):
        return available == needed
    return available >= needed


AMX = re.compile(r"^(ldtilecfg|sttilecfg|tileloadd|tileloaddt1|tilestored|tilerelease|tilezero|tdp\w+)\b")


def needed_level(instruction):
    # AMX runs only in the avx512_vnni backend (after a run-time check): counted as that level.
    if AVX512_OPERAND.search(instruction) or AMX.match(instruction):
        return AVX512
    if "vpdpbus" in instruction or "vpdpwss" in instruction:
        return AVX_VNNI if "{vex}" in instruction else AVX512
    mnemonic = instruction.split(" ")[0]
    return AVX2 if mnemonic.startswith("v") or mnemonic == "{vex}" else BASELINE


VARIANT_OBJECT = re.compile(r"_qtx_(scalar|avx2|avx_vnni|avx512_vnni)\.dir/")
OBJECT_LEVEL = {"scalar": BASELINE, "avx2": AVX2, "avx_vnni": AVX_VNNI, "avx512_vnni": AVX512}
REFERENCE = re.compile(r"# ([0-9a-f]+) <")
RELATIVE = re.compile(r"R_X86_64_RELATIVE\s+\*ABS\*\+0x([0-9a-f]+)")
MAP_SECTION = re.compile(r"^ \.text\S*\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$")
MAP_NAME_ONLY = re.compile(r"^ \.text\S*$")
MAP_CONTINUATION = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$")


def object_ranges(map_file):
    """(start, end, level) of every .text input section, from a GNU ld / lld map."""
    ranges, pending = [], False
    with open(map_file) as lines:
        for line in lines:
            line = line.rstrip("\n")
            match = MAP_SECTION.match(line) or (pending and MAP_CONTINUATION.match(line))
            pending = bool(MAP_NAME_ONLY.match(line))
            if match:
                start, size, path = int(match.group(1), 16), int(match.group(2), 16), match.group(3)
                variant = VARIANT_OBJECT.search(path)
                if size:
                    ranges.append((start, start + size, OBJECT_LEVEL[variant.group(1)] if variant else BASELINE))
    return sorted(ranges)


def main():
    program, map_file = sys.argv[1], sys.argv[2]
    objdump = sys.argv[3] if len(sys.argv) > 3 else "objdump"
    nm = sys.argv[4] if len(sys.argv) > 4 else "nm"
    shared = set()
    for line in subprocess.run([nm, "--defined-only", program], check=True, capture_output=True,
                               text=True).stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in "TWVu":
            shared.add(int(fields[0], 16))
    ranges = object_ranges(map_file)
    range_starts = [r[0] for r in ranges]

    def object_level(address):
        i = bisect.bisect_right(range_starts, address) - 1
        return ranges[i][2] if i >= 0 and address < ranges[i][1] else BASELINE

    listing = subprocess.run([objdump, "-d", "--no-show-raw-insn", program], check=True,
                             capture_output=True, text=True).stdout
    # Functions by start address (local symbols of different objects may share a name).
    names, needed, culprit, edges = {}, {}, {}, []
    address_taken = set()
    relocations = subprocess.run([objdump, "-R", program], check=True, capture_output=True, text=True).stdout
    for match in RELATIVE.finditer(relocations):
        address_taken.add(int(match.group(1), 16))
    current = None
    for line in listing.splitlines():
        match = HEADER.match(line)
        if match:
            current = int(match.group(1), 16)
            names[current] = match.group(2)
            needed[current] = BASELINE
            continue
        parts = line.split("\t")
        if current is None or len(parts) < 2:
            continue
        instruction = parts[-1].strip()
        level = needed_level(instruction)
        if level != needed[current] and (level > needed[current] or level in (AVX_VNNI, AVX512)):
            needed[current] = max(level, needed[current])
            culprit[current] = instruction
        branch = BRANCH.search(instruction)
        if branch:
            edges.append((current, int(branch.group(1), 16)))
        elif instruction.startswith("lea"):
            reference = REFERENCE.search(instruction)
            if reference:
                address_taken.add(int(reference.group(1), 16))
    starts = sorted(names)
    callers = {}
    for source, target in edges:
        callee = starts[bisect.bisect_right(starts, target) - 1] if target >= starts[0] else None
        if callee is not None and callee != source:
            callers.setdefault(callee, set()).add(source)

    def fixed(f):
        """Guarantee that does not depend on callers, or None."""
        key = key_level(names[f])
        if key is not None:
            return key
        return None if f in shared else object_level(f)

    guaranteed, dead = {}, set()
    for f in starts:
        level = fixed(f)
        if level is None and f not in callers and f not in address_taken:
            dead.add(f)
        guaranteed[f] = level if level is not None else (AVX512 if f in callers else BASELINE)
    changed = True
    while changed:
        changed = False
        for f in starts:
            if fixed(f) is not None or f not in callers or f in address_taken:
                continue
            level = None
            for c in callers[f]:
                level = guaranteed[c] if level is None else meet(level, guaranteed[c])
            if level != guaranteed[f]:
                guaranteed[f] = level
                changed = True
    problems = [f for f in starts if f not in dead and not satisfies(guaranteed[f], needed[f])]
    if problems:
        print(f"{len(problems)} functions hold instructions above what their callers guarantee:")
        for f in problems[:40]:
            print(f"  {names[f]}: needs {NAMES[needed[f]]} ('{culprit.get(f, '')}'), "
                  f"guaranteed {NAMES[guaranteed[f]]}")
        return 1
    keyed = sum(1 for f in starts if key_level(names[f]) is not None)
    variant = sum(1 for f in starts if object_level(f) != BASELINE)
    print(f"{len(starts)} functions checked ({keyed} in ISA-keyed namespaces, {variant} from objects "
          f"above the baseline, {len(dead)} shared ones unreachable): none needs more than it is guaranteed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
