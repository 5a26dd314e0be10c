#!/usr/bin/env python3
"""Tables of scripts/paper_claims.sh (python3 standard library only).

    python3 scripts/paper_claims.py need-more EVAL.json   # technique sets not within 1 point by α=7
    python3 scripts/paper_claims.py tables DIR            # markdown tables from DIR/*.json
"""

import glob
import json
import math
import os
import statistics
import sys

RECIPES = ["wd5e-4", "wd0_mixup", "wd0_mixup_negnoise"]
TECH = ["baseline", "shape+bias"]
WITHIN = 0.01  # "within 1 point" of the backbone's top-1


def pct(x):
    return f"{100 * x:.2f}"


def ci(c):
    return f"[{100 * c[0]:.2f}, {100 * c[1]:.2f}]"


def e3(x):
    """A float in %.3e; JSON has no infinity or NaN (serde writes null): shown as 'inf/NaN'."""
    return "inf/NaN" if x is None else f"{x:.3e}"


def load(p):
    with open(p) as f:
        return json.load(f)


def results(d, name):
    """All eval results of one model: the α=5..7 run plus the higher-α runs, by (technique, α)."""
    out = {}
    for p in [os.path.join(d, f"{name}.eval.json")] + sorted(glob.glob(os.path.join(d, f"{name}.eval-*.json"))):
        if os.path.isfile(p):
            j = load(p)
            for r in j["results"]:
                out[(r["techniques"], r["alpha"])] = r
    return out


def smallest_within(res, backbone, tech):
    alphas = sorted(a for (t, a) in res if t == tech)
    for a in alphas:
        if backbone - res[(tech, a)]["top1"] <= WITHIN:
            return a
    return None


def need_more(path):
    j = load(path)
    b = j["backbone_top1"]
    res = {(r["techniques"], r["alpha"]): r for r in j["results"]}
    for t in TECH:
        if smallest_within(res, b, t) is None:
            print(t)


def mean_sd(v):
    v = [x for x in v if x is not None]
    if not v:
        return "–"
    if len(v) == 1:
        return f"{v[0]:.2f} (1 seed)"
    return f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}"


def seeds_table(d):
    lines = []
    head = ("| recipe | seed | backbone top-1 % [95% CI] | smallest α within 1 pt: baseline | shape+bias "
            "| α=5 baseline | α=5 shape+bias | α=6 baseline | α=6 shape+bias | Σ‖W‖∞ (BN folded) | log2 Σ_r D_r·B_r |")
    lines += [head, "|" + "---|" * 11]
    per = {r: [] for r in RECIPES}
    for recipe in RECIPES:
        for seed in (0, 1, 2):
            name = f"{recipe}_s{seed}"
            p = os.path.join(d, f"{name}.eval.json")
            if not os.path.isfile(p):
                continue
            j = load(p)
            b = j["backbone_top1"]
            res = results(d, name)
            nrm = os.path.join(d, f"{name}.norms.json")
            nr = load(nrm) if os.path.isfile(nrm) else None
            cells = [recipe, str(seed), f"{pct(b)} {ci(j['backbone_top1_ci'])}"]
            row = {"backbone": 100 * b}
            for t in TECH:
                a = smallest_within(res, b, t)
                top = max(a for (tt, a) in res if tt == t)
                cells.append(str(a) if a is not None else f"> {top}")
                row[f"amin {t}"] = a
            for a in (5, 6):
                for t in TECH:
                    r = res.get((t, a))
                    if r is None:
                        cells.append("–")
                        continue
                    cells.append(f"{pct(r['top1'])} {ci(r['top1_ci'])}")
                    row[f"{a} {t}"] = 100 * r["top1"]
            if nr:
                cells.append(f"{nr['inf_norm_sum']:.1f}")
                cells.append(f"{math.log2(nr['amplification_calibrated']):.2f}")
                row["sum"] = nr["inf_norm_sum"]
                row["amp"] = math.log2(nr["amplification_calibrated"])
            else:
                cells += ["–", "–"]
            per[recipe].append(row)
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Mean ± sample standard deviation over seeds (the spread between seeds, not the test-set interval):")
    lines.append("")
    keys = ["backbone", "amin baseline", "amin shape+bias", "5 baseline", "5 shape+bias", "6 baseline",
            "6 shape+bias", "sum", "amp"]
    lines.append("| recipe | seeds | backbone top-1 % | smallest α: baseline | shape+bias | α=5 baseline | "
                 "α=5 shape+bias | α=6 baseline | α=6 shape+bias | Σ‖W‖∞ | log2 Σ D·B |")
    lines.append("|" + "---|" * 11)
    for recipe in RECIPES:
        rows = per[recipe]
        if not rows:
            continue
        cells = [recipe, str(len(rows))] + [mean_sd([r.get(k) for r in rows]) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sens_tables(d):
    lines = []
    for p in sorted(glob.glob(os.path.join(d, "resnet_fmnist.*.json"))):
        j = load(p)
        tag = os.path.basename(p)[len("resnet_fmnist."):-len(".json")]
        lines.append(f"### `{tag}`")
        lines.append("")
        what = j["noise"] + (f" ({j['techniques']})" if j.get("techniques") else "")
        if j.get("sign") is not None:
            what += f", sign {'+' if j['sign'] > 0 else '−'}"
        lines.append(f"α={j['alpha']}, {what}, layers: {j['layers']}; {j['samples']} test images; "
                     f"backbone {pct(j['backbone_top1'])}% {ci(j['backbone_top1_ci'])}.")
        if j.get("pann_top1") is not None:
            lines.append(f"Compiled PANN (simulated): {pct(j['pann_top1'])}% {ci(j['pann_top1_ci'])}, "
                         f"drop {pct(j['backbone_top1'] - j['pann_top1'])} points {ci(j['pann_drop_ci'])}.")
        lines.append("")
        lines.append("| perturbed | side | share of inputs | top-1 % [95% CI] | drop (points) [95% paired CI] |")
        lines.append("|---|---|---|---|---|")
        for r in j["rows"]:
            lines.append(f"| {r['node']} | {r['side']} | {100 * r['fraction']:.1f}% | {pct(r['top1'])} {ci(r['top1_ci'])} "
                         f"| {pct(r['drop'])} {ci(r['drop_ci'])} |")
        lines.append("")
        acts = j["activations"]
        if any(a.get("pann_error") for a in acts):
            inj = {}
            for r in j["rows"]:
                for i in r.get("injected", []):
                    inj[(i["node"], r["side"])] = i
            lines.append("Per activation: negative share of inputs (calibration / test), and the error p(x) − f(x) "
                         "injected (all layers, same side) vs measured in the compiled PANN: mean, mean |e|, max |e|; "
                         "'wild' counts the values with |e| > 1024 (a polynomial far outside its interval), which "
                         "are in max |e| but not in the means.")
            lines.append("")
            lines.append("| activation | negative (calib / test) | side | injected mean | PANN mean | injected mean abs "
                         "| PANN mean abs | injected max abs | PANN max abs | wild injected / PANN |")
            lines.append("|" + "---|" * 10)
            for a in acts:
                pe = a.get("pann_error")
                if not pe:
                    continue
                for side in ("negative", "positive", "both"):
                    i = inj.get((a["node"], side))
                    if i is None:
                        continue
                    o = pe[side]
                    lines.append(f"| {a['node']} | {100 * a['negative_share_calib']:.1f}% / {100 * a['negative_share_test']:.1f}% "
                                 f"| {side} | {e3(i['mean'])} | {e3(o['mean'])} | {e3(i['mean_abs'])} | {e3(o['mean_abs'])} "
                                 f"| {e3(i['max_abs'])} | {e3(o['max_abs'])} | {i.get('wild', 0)} / {o.get('wild', 0)} |")
            lines.append("")
    return "\n".join(lines)


def main(argv):
    if len(argv) == 3 and argv[1] == "need-more":
        need_more(argv[2])
    elif len(argv) == 3 and argv[1] == "tables":
        print("<!-- generated by scripts/paper_claims.sh (scripts/paper_claims.py tables); do not edit -->")
        print()
        print("## Training recipes × seeds (full test set, 10 000 images)")
        print()
        print(seeds_table(argv[2]))
        print()
        print("## Sensitivity of resnet_fmnist (full test set)")
        print()
        print(sens_tables(argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
