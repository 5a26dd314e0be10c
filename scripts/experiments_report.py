#!/usr/bin/env python3
"""Writes docs/experiments/fixtures.md (the per-fixture tables that docs/experiments.md links to) from the JSON that scripts/experiments.sh leaves in docs/experiments/.

Tables are generated from the measurements; the prose in docs/experiments.intro.md and
docs/experiments.conclusions.md is written by people who read those tables (keep it true when the
numbers change). Standard library only.
"""

import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DOCS = os.path.join(ROOT, "docs")
DATA = os.path.join(DOCS, "experiments")
FIXTURES = ["resnet_fmnist", "resnet_fmnist_mixup", "maxpool_mnist", "gelu_digits"]
ORDER = ["baseline", "shape", "bias", "shape+bias", "alloc", "all"]


def load(name):
    p = os.path.join(DATA, name)
    if not os.path.exists(p) or os.path.getsize(p) == 0:
        return None
    return json.load(open(p))


def pct(x):
    return "%.1f" % (100 * x)


def eval_table(e):
    alphas = sorted({r["alpha"] for r in e["results"]})
    sets = [s for s in ORDER if any(r["techniques"] == s for r in e["results"])]
    by = {(r["alpha"], r["techniques"]): r for r in e["results"]}
    out = ["| α | " + " | ".join(sets) + " | levels (uniform) |", "|---" * (len(sets) + 2) + "|"]
    for a in alphas:
        cells = []
        for s in sets:
            r = by.get((a, s))
            if r is None:
                cells.append("")
                continue
            c = pct(r["top1"])
            if s in ("alloc", "all") and r.get("alphas"):
                c += " (%d lv)" % r["levels"]
            cells.append(c)
        lv = by.get((a, "baseline"), by.get((a, sets[0])))["levels"]
        out.append("| %d | %s | %d |" % (a, " | ".join(cells), lv))
    return "\n".join(out)


def gain_line(e):
    by = {(r["alpha"], r["techniques"]): r for r in e["results"]}
    lines = []
    for a in sorted({r["alpha"] for r in e["results"]}):
        b = by.get((a, "baseline"))
        best = max((r for (x, _), r in by.items() if x == a), key=lambda r: r["top1"])
        if b:
            lines.append("α=%d: baseline %s%% → best %s%% (%s, %+.1f points)" % (
                a, pct(b["top1"]), pct(best["top1"]), best["techniques"], 100 * (best["top1"] - b["top1"])))
    return "; ".join(lines)


def alloc_text(e):
    out = []
    for name, al in sorted((e.get("allocations") or {}).items()):
        ua = al.get("uniform_alpha")
        # Held-out accuracy of the allocation at the largest α of the sweep (upper bound).
        top = max(r["alpha"] for r in e["results"])
        r = next((r for r in e["results"] if r["techniques"] == name and r["alpha"] == top), None)
        u = next((r for r in e["results"] if r["techniques"] == ("baseline" if name == "alloc" else "shape+bias")
                  and r["alpha"] == ua), None) if ua else None
        s = ("- `%s` (budget %.2f%%: at most %.2f%% disagreement with the backbone on %d calibration images): "
             "%d levels, %d ct×ct, %d trials") % (
            name, 100 * al["budget"], 50 * al["budget"], e["calib_samples"], al["levels"], al["ct_mults"], al["trials"])
        if ua:
            s += "; smallest uniform α meeting the budget: %d → %d levels" % (ua, al["uniform_levels"])
        if r:
            s += ". Held-out test: allocation %s%% (drop %.2f points)" % (
                pct(r["top1"]), 100 * (e["backbone_top1"] - r["top1"]))
        if u:
            s += ", uniform α=%d %s%% (drop %.2f points)" % (ua, pct(u["top1"]), 100 * (e["backbone_top1"] - u["top1"]))
        s += ". α per activation: " + ", ".join("`%s`=%d" % (k, v) for k, v in sorted(al["alphas"].items())) + "."
        out.append(s)
    return "\n".join(out)


def sens_table(s_u, s_c):
    out = ["| activation | negative share | uniform: drop neg / pos | constant: drop neg / pos |",
           "|---|---|---|---|"]
    rows = {}
    for tag, s in (("u", s_u), ("c", s_c)):
        if not s:
            continue
        for r in s["rows"]:
            rows.setdefault(r["node"], {})[(tag, r["side"])] = r
    for node, d in rows.items():
        share = d.get(("u", "negative"), d.get(("c", "negative")))["fraction"]

        def cell(tag):
            n, p = d.get((tag, "negative")), d.get((tag, "positive"))
            return "%+.1f / %+.1f" % (100 * n["drop"], 100 * p["drop"]) if n and p else ""
        out.append("| %s | %.0f%% | %s | %s |" % (node, 100 * share, cell("u"), cell("c")))
    tot = []
    for tag, s in (("uniform", s_u), ("constant", s_c)):
        if s:
            tot.append("%s noise: Σ drop negative %+.1f, positive %+.1f points" % (
                tag, 100 * s["total_drop_negative"], 100 * s["total_drop_positive"]))
    return "\n".join(out) + "\n\n" + "; ".join(tot) + "."


def norms_line(e):
    ns = e.get("weight_norms") or []
    if not ns:
        return ""
    fro = sum(n["frobenius"] ** 2 for n in ns)
    inf = max(n["inf_norm"] for n in ns)
    return "Σ‖W‖²_F = %.1f, largest ‖W‖∞ = %.2f over %d linear layers (BN not folded)." % (fro, inf, len(ns))


def main():
    parts = []
    intro = os.path.join(DOCS, "experiments", "fixtures.intro.md")
    if os.path.exists(intro):
        parts.append(open(intro).read().rstrip())
    for f in FIXTURES:
        e = load(f + ".eval.json")
        if not e:
            continue
        parts.append("## %s\n" % f)
        parts.append("Backbone top-1 %s%% on %d test images; calibration: %d training images. %s\n" % (
            pct(e["backbone_top1"]), e["samples"], e["calib_samples"], norms_line(e)))
        parts.append("Top-1 (%) by precision α and technique:\n\n" + eval_table(e) + "\n")
        parts.append("![top-1 vs α](%s.svg)\n" % f)
        parts.append(gain_line(e) + "\n")
        a = alloc_text(e)
        if a:
            parts.append("Per-layer allocation:\n\n" + a + "\n")
        su, sc = load(f + ".sensitivity-uniform.json"), load(f + ".sensitivity-constant.json")
        if su or sc:
            parts.append("Sensitivity (backbone, one activation perturbed by 2^-6·B on one side; "
                         "top-1 drop in points):\n\n" + sens_table(su, sc) + "\n")
    full = load("resnet_fmnist.full.eval.json")
    if full:
        parts.append("## Timing\n\n`pannc eval` on resnet_fmnist, %d images × %d precisions (shape+bias): "
                     "%.0f s wall on %d cores.\n" % (full["samples"], len(full["results"]),
                                                    full.get("wall_seconds", float("nan")), full.get("cores", 0)))
    budget = os.path.join(DOCS, "experiments.budget.md")
    if os.path.exists(budget):
        parts.append(open(budget).read().rstrip())
    concl = os.path.join(DOCS, "experiments", "fixtures.conclusions.md")
    if os.path.exists(concl):
        parts.append(open(concl).read().rstrip())
    open(os.path.join(DOCS, "experiments", "fixtures.md"), "w").write("\n\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
