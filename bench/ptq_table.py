#!/usr/bin/env python3
"""Integer vs minifloat PTQ tables from an exploration store (docs/ptq-results.md).

  bench/ptq_table.py splits STORE            best minifloat split per width and specials policy (round-to-nearest)
  bench/ptq_table.py space STORE BASE OUT    BASE space with its formats replaced by int + the best splits
  bench/ptq_table.py table STORE             markdown: top-1 per width, family and technique (the
                                             points evaluated on the most images)
  bench/ptq_table.py grid STORE              markdown: every weight x activation split per width (round-to-nearest,
                                             the points evaluated on the fewest images: the split search)

A point's width pair is read from its formats: int8 x int8 is W8A8, e2m1 x e4m3 is W4A8.
"""
import json
import re
import sqlite3
import sys

WIDTHS = [(8, 8), (6, 6), (4, 8), (4, 4), (3, 8)]


def bits(fmt):
    if fmt == "float":
        return None
    m = re.match(r"u?int(\d+)", fmt)
    if m:
        return int(m.group(1))
    m = re.match(r"u?e(\d+)m(\d+)", fmt)
    if m:
        return int(m.group(1)) + int(m.group(2)) + (0 if fmt.startswith("u") else 1)
    m = re.match(r"float(\d+)_", fmt)
    if m:
        return int(m.group(1))
    return None


def family(fmt):
    if fmt == "float":
        return "float"
    if re.match(r"u?int", fmt):
        return "int"
    m = re.search(r"specials=(\w+)", fmt)
    if m:
        return "mf " + m.group(1)
    return "mf fn" if fmt.startswith("float8_e4m3fn") else "mf ieee"


def split(fmt):
    m = re.match(r"(e\d+m\d+)", fmt)
    return m.group(1) if m else ("e4m3" if fmt.startswith("float8_e4m3") else fmt)


def rows(store):
    db = sqlite3.connect(store)
    out = []
    for w, a, tech, top1, images, lut in db.execute(
            "select weight_format, activation_format, technique, top1, images, lut from points"):
        out.append(dict(w=w, a=a, tech=tech, top1=top1, images=images, lut=lut,
                        width=(bits(w), bits(a)), fam=family(w) if family(w) == family(a) else "mixed"))
    return out


def best_splits(store):
    """{(W, A): {family: (weights, activations, top1)}} over the split search: the round-to-nearest
    points evaluated on the fewest images (a store can also hold step 2's points on more images)."""
    best = {}
    rs = [r for r in rows(store) if r["tech"] == "rtn"]
    if not rs:
        return best  # no split search in this store
    images = min(r["images"] for r in rs)
    for r in rs:
        if r["images"] != images or r["width"] not in WIDTHS or r["fam"] in ("float", "mixed"):
            continue
        cur = best.setdefault(r["width"], {}).get(r["fam"])
        if cur is None or r["top1"] > cur[2]:
            best[r["width"]][r["fam"]] = (r["w"], r["a"], r["top1"])
    return best


def cmd_splits(store):
    for wa in WIDTHS:
        for fam, (w, a, t) in sorted(best_splits(store).get(wa, {}).items()):
            print(f"W{wa[0]}A{wa[1]}  {fam:8}  {w:22} x {a:22} {t:6.2f}")


def cmd_space(store, base, out, families=("int", "mf none", "mf fn")):
    space = json.load(open(base))
    blocks = [{"weights": ["float"], "activations": ["float"]}]
    best = best_splits(store)
    for wa in WIDTHS:
        for fam in families:
            if fam in best.get(wa, {}):
                w, a, _ = best[wa][fam]
                blocks.append({"weights": [w], "activations": [a]})
    space["formats"] = blocks
    text = "{\n" + ",\n".join(
        ' "formats": [\n' + ",\n".join("  " + json.dumps(b) for b in blocks) + "\n ]" if k == "formats"
        else f" {json.dumps(k)}: {json.dumps(v)}" for k, v in space.items()) + "\n}\n"
    open(out, "w").write(text)


def fp32_line(rs, images):
    fp32 = [r["top1"] for r in rs if r["fam"] == "float" and r["images"] == images]
    return f"fp32 top-1 {fp32[0]:.2f} % on {images} images" if fp32 else f"no fp32 point on {images} images"


def cmd_table(store):
    rs = rows(store)
    images = max(r["images"] for r in rs)
    rs = [r for r in rs if r["images"] == images]
    techs = []
    for r in rs:
        if r["tech"] not in techs and r["fam"] != "float":
            techs.append(r["tech"])
    print(fp32_line(rs, images))
    print()
    print("| W/A | family | weights | activations | " + " | ".join(techs) + " |")
    print("|---|---|---|---|" + "---:|" * len(techs))
    for wa in WIDTHS:
        groups = {}
        for r in rs:
            if r["width"] == wa and r["fam"] not in ("float", "mixed"):
                groups.setdefault((r["fam"], r["w"], r["a"]), {})[r["tech"]] = r["top1"]
        for (fam, w, a), by_tech in sorted(groups.items(), key=lambda kv: (kv[0][0] != "int", kv[0])):
            if len(by_tech) == 1 and len(techs) > 1:
                continue  # a split-search point, not one of the best splits
            best = max(by_tech.values())
            cells = [(f"**{by_tech[t]:.2f}**" if by_tech[t] == best else f"{by_tech[t]:.2f}") if t in by_tech else ""
                     for t in techs]
            print(f"| W{wa[0]}A{wa[1]} | {fam} | {split(w) if fam != 'int' else w} | {split(a) if fam != 'int' else a} | "
                  + " | ".join(cells) + " |")


def cmd_grid(store):
    rs = rows(store)
    images = min(r["images"] for r in rs)
    rs = [r for r in rs if r["images"] == images and r["tech"] == "rtn"]
    print(fp32_line(rs, images))
    for wa in WIDTHS:
        ints = [r for r in rs if r["width"] == wa and r["fam"] == "int"]
        for fam in ("mf none", "mf fn"):
            cell = {(split(r["w"]), split(r["a"])): r["top1"] for r in rs if r["width"] == wa and r["fam"] == fam}
            if not cell:
                continue
            ws = sorted({k[0] for k in cell}, key=lambda e: int(e[1:e.index("m")]))
            acts = sorted({k[1] for k in cell}, key=lambda e: int(e[1:e.index("m")]))
            best = max(cell.values())
            print()
            print(f"**W{wa[0]}A{wa[1]}, specials={fam[3:]}**" + (f" (integers: {ints[0]['top1']:.2f})" if ints else ""))
            print()
            print("| weights \\ activations | " + " | ".join(acts) + " |")
            print("|---|" + "---:|" * len(acts))
            for w in ws:
                print(f"| {w} | " + " | ".join(
                    (f"**{cell[(w, a)]:.2f}**" if cell[(w, a)] == best else f"{cell[(w, a)]:.2f}") if (w, a) in cell else ""
                    for a in acts) + " |")


if __name__ == "__main__":
    commands = {"splits": cmd_splits, "space": cmd_space, "table": cmd_table, "grid": cmd_grid}
    if len(sys.argv) < 3 or sys.argv[1] not in commands:
        sys.exit("usage: bench/ptq_table.py {splits|space|table|grid} STORE [ARGS...] (see the comment at the top)")
    commands[sys.argv[1]](*sys.argv[2:])
