#!/usr/bin/env python3
"""Side by side on OpenFHE: pannc's planned circuit vs EvalChebyshevFunction.

ReLU on [-1, 1] at degrees 15, 27, 59, 119 (default). For each degree:
  * pannc: the circuit emitted by `cargo run -p pannc-fhe --example
    cheb_circuit` from the coefficients (see COEFFS below), executed op by op
    on OpenFHE by scripts/openfhe_run.py, in a CKKS context whose
    multiplicative depth is exactly the planned depth;
  * OpenFHE: cc.EvalChebyshevFunction(relu, ct, -1, 1, degree) (Chebyshev
    interpolation + OpenFHE's Paterson–Stockmeyer), context depth planned + 3.
Both run with the same parameters (ring dim 2^14, 50-bit scale, 60-bit first
prime, HEStd_NotSet) and the same 8192 inputs (a uniform grid over [-1, 1]
including -1, 0 and 1). Levels are measured on the output ciphertext:
GetLevel() + GetNoiseScaleDeg() - 1 (= GetLevel() under FIXEDMANUAL, where
every ciphertext is rescaled right after its multiplication). Errors are max
|decrypted − ReLU(x)| over the grid.

A last column evaluates pannc at OpenFHE's level budget: the degree 2^L − 1
polynomial where L is the number of levels OpenFHE consumed at that degree.

COEFFS (--coeffs): `minimax` (default) = the degree-d minimax ReLU on [-1, 1]
from crates/approx (Remez, `--relu-minimax d` of the example); `interp` =
Chebyshev interpolation at the Chebyshev points of the first kind, the same
construction EvalChebyshevFunction uses (then equal-degree errors differ only
by evaluation noise and the gain is in levels only).

A second table runs whole composite ReLUs x(1+s(x))/2 for α in --composite
(default 9,13), with approx's composite-sign stages (degrees chosen by its
dynamic program), on OpenFHE: levels consumed and max error vs ReLU.

Usage:
    /work/fhe-venv/bin/python benches/openfhe_side_by_side.py [--degrees 15,27,59,119]
        [--scaling flexibleauto|fixedmanual] [--json out.json]
Environment: CARGO (default "cargo"), CARGO_TARGET_DIR respected.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import openfhe_run as runner  # noqa: E402


def relu(v):
    return max(v, 0.0)


def emit_circuit(args, path):
    cargo = os.environ.get("CARGO", "cargo")
    cmd = [cargo, "run", "-q", "-p", "pannc-fhe", "--example", "cheb_circuit", "--"] + args + ["--out", path]
    subprocess.run(cmd, cwd=ROOT, check=True, stderr=subprocess.DEVNULL)
    return runner.load_circuit(path)


def run_pannc(emit_args, x, scaling, tmp):
    name = "_".join(a.strip("-") for a in emit_args)
    c = emit_circuit(emit_args, os.path.join(tmp, f"{name}.json"))
    cc, keys = runner.make_context(c["depth"], scaling=scaling)
    res = runner.run_circuit(cc, keys, c, [x], scaling)
    y = res["outputs"][0]
    plain = runner.plain_eval(c, [x])[c["outputs"][0]["value"]]
    return {
        "planned": c["depth"],
        "levels": res["output_levels"][0],
        "mismatches": len(res["level_mismatches"]),
        "ct_mults": sum(1 for op in c["ops"] if op["op"] == "mul"),
        "err": float(np.max(np.abs(y - np.maximum(x, 0)))),
        "err_plain": float(np.max(np.abs(y - plain))),
        "name": c["name"],
        "seconds": res["seconds"],
    }


def run_openfhe(degree, x, scaling, depth):
    cc, keys = runner.make_context(depth, scaling=scaling)
    ct = runner.encrypt(cc, keys, x)
    t0 = time.time()
    r = cc.EvalChebyshevFunction(relu, ct, -1.0, 1.0, degree)
    sec = time.time() - t0
    y = runner.decrypt(cc, keys, r, len(x))
    return {
        "levels": runner.consumed(r, scaling),
        "err": float(np.max(np.abs(y - np.maximum(x, 0)))),
        "seconds": sec,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--degrees", default="15,27,59,119")
    ap.add_argument("--scaling", choices=["flexibleauto", "fixedmanual"], default="flexibleauto")
    ap.add_argument("--samples", type=int, default=8192)
    ap.add_argument("--coeffs", choices=["minimax", "interp"], default="minimax")
    ap.add_argument("--composite", default="9,13", help="alphas of composite ReLUs to run (empty: none)")
    ap.add_argument("--json")
    a = ap.parse_args()
    degrees = [int(d) for d in a.degrees.split(",")]
    x = np.linspace(-1.0, 1.0, a.samples)
    x[a.samples // 2] = 0.0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for d in degrees:
            flag = "--relu-minimax" if a.coeffs == "minimax" else "--relu-interp"
            p = run_pannc([flag, str(d)], x, a.scaling, tmp)
            o = run_openfhe(d, x, a.scaling, p["planned"] + 3)
            budget_deg = 2 ** o["levels"] - 1
            pb = run_pannc([flag, str(budget_deg)], x, a.scaling, tmp)
            rows.append({"degree": d, "pannc": p, "openfhe": o, "pannc_at_openfhe_levels": dict(pb, degree=budget_deg)})
            print(f"degree {d} done", file=sys.stderr)
        comps = []
        for alpha in [int(v) for v in a.composite.split(",") if v]:
            comps.append(dict(run_pannc(["--relu-composite", str(alpha)], x, a.scaling, tmp), alpha=alpha))
            print(f"composite alpha {alpha} done", file=sys.stderr)
    source = "minimax (crates/approx Remez)" if a.coeffs == "minimax" else "Chebyshev interpolation"
    print(f"ReLU on [-1,1], pannc coefficients: {source}; OpenFHE EvalChebyshevFunction (interpolation); "
          f"{a.scaling}, ring 2^14, scale 2^50, {a.samples} points\n")
    print("| degree | pannc levels (planned / on OpenFHE) | pannc ct×ct | pannc max err | pannc vs plaintext "
          "| OpenFHE EvalChebyshevFunction levels | OpenFHE max err | pannc at OpenFHE's levels: degree, levels, max err |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        p, o, b = r["pannc"], r["openfhe"], r["pannc_at_openfhe_levels"]
        print(f"| {r['degree']} | {p['planned']} / {p['levels']} | {p['ct_mults']} | {p['err']:.2e} | {p['err_plain']:.1e} "
              f"| {o['levels']} | {o['err']:.2e} | {b['degree']}, {b['levels']}, {b['err']:.2e} |")
    if comps:
        print("\n| composite ReLU | circuit | levels (planned / on OpenFHE) | ct×ct | max err vs ReLU | vs plaintext |")
        print("|---|---|---|---|---|---|")
        for c in comps:
            print(f"| α={c['alpha']} | {c['name']} | {c['planned']} / {c['levels']} | {c['ct_mults']} | {c['err']:.2e} "
                  f"| {c['err_plain']:.1e} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"degrees": rows, "composite": comps}, f, indent=2)
    bad = [r["degree"] for r in rows if r["pannc"]["levels"] != r["pannc"]["planned"] or r["pannc"]["mismatches"]]
    bad += [c["name"] for c in comps if c["levels"] != c["planned"] or c["mismatches"]]
    if bad:
        print(f"\nlevel mismatch at degrees {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
