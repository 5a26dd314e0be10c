#!/usr/bin/env python3
"""Packed CKKS (measured) vs the slot-per-sample path (estimated) for one compiled network.

Reads a packed program (docs/packed-format.md) and the JSON report of an encrypted run of it
(`python -m pannc_openfhe run DIR ... --report R.json`), measures OpenFHE's per-operation costs
at the report's ring dimension and depth (scalar products, additions, ct x ct products; the
bootstrap time is the run's own), and prints side by side:

* packed, measured: wall time per image, bootstraps, rotations, keys, peak RSS, decrypted vs
  plaintext logits;
* slot-per-sample (docs/circuit-format.md, one ciphertext per feature, samples in the slots),
  estimated: the ciphertexts and bootstraps that path needs for the same network with the same
  bootstrap points (every feature of a refreshed tensor is its own ciphertext), and its time per
  batch (up to ring_dim/2 images in the slots) from the op counts times the costs measured here;
* bootstraps per image: pannc's count against Orion's compile-time count for the same
  architecture (`--orion`, 26 for the resnet_fmnist architecture: Orion 1.0.2, design notes §7).

The slot-per-sample op counts come from the program itself: a `linear` op's scalar products are
the nonzero diagonal entries in used output slots (= the nonzero entries of its matrix), each a
ciphertext x scalar product plus an addition; a `poly` op runs its circuit once per feature; an
`add` is one addition per feature; a `bootstrap` refreshes one ciphertext per feature; rotations
do not exist in that path (a rotation is a renaming).

Usage:
    .venv-fhe/bin/python benches/packed_vs_slots.py --program DIR --report R.json
        [--orion 26] [--sim SIM.npy --dec Y.npy] [--json out.json] [--reps 50]
"""

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python", "pannc-openfhe"))

from pannc_openfhe import plain, program  # noqa: E402


def slot_counts(prog):
    """Operation counts of the slot-per-sample path for the program's network."""
    c = {"scalar_mults": 0, "additions": 0, "ct_ct_mults": 0, "bootstraps": 0, "features_max": 0,
         "ciphertexts_produced": 0, "input_ciphertexts": 0, "polys_features": 0}
    for i, _ in enumerate(prog.inputs):
        c["input_ciphertexts"] += prog.numel(i)
    n_in = len(prog.inputs)
    for j, op in enumerate(prog.ops):
        out = n_in + j
        feats = prog.numel(out)
        c["features_max"] = max(c["features_max"], feats)
        k = op["op"]
        if k == "linear":
            lin = prog.linear[op["weights"]]
            used = plain.used_mask(prog, out)
            nnz = 0
            for r, (o, _, _) in enumerate(lin.index.tolist()):
                nnz += int(np.count_nonzero(lin.diag[r][used[o]]))
            c["scalar_mults"] += nnz
            c["additions"] += nnz  # the sum of nnz products and the bias: nnz additions
            c["ciphertexts_produced"] += feats
        elif k == "poly":
            ops = op["circuit"]["ops"]
            c["ct_ct_mults"] += feats * sum(1 for e in ops if e["op"] == "mul")
            c["scalar_mults"] += feats * sum(1 for e in ops if e["op"] == "mul_const")
            c["additions"] += feats * sum(1 for e in ops if e["op"] in ("add", "sub", "add_const", "mul_int"))
            c["ciphertexts_produced"] += feats
            c["polys_features"] += feats
        elif k == "add":
            c["additions"] += feats
            c["ciphertexts_produced"] += feats
        elif k == "mul_const":
            c["scalar_mults"] += feats
            c["ciphertexts_produced"] += feats
        elif k == "bootstrap":
            c["bootstraps"] += feats
    return c


def micro(ring_dim, depth, level, reps):
    """CPU seconds per EvalMult(ct, scalar), EvalAdd, EvalMult(ct, ct) (with relinearisation) at
    `level` levels consumed in a depth-`depth` FLEXIBLEAUTO context (insecure ring_dim)."""
    import openfhe as o

    p = o.CCParamsCKKSRNS()
    p.SetMultiplicativeDepth(depth)
    p.SetScalingModSize(59)
    p.SetFirstModSize(60)
    p.SetScalingTechnique(o.FLEXIBLEAUTO)
    p.SetKeySwitchTechnique(o.HYBRID)
    p.SetSecurityLevel(o.HEStd_NotSet)
    p.SetRingDim(ring_dim)
    p.SetBatchSize(ring_dim // 2)
    cc = o.GenCryptoContext(p)
    for f in (o.PKE, o.KEYSWITCH, o.LEVELEDSHE, o.ADVANCEDSHE):
        cc.Enable(f)
    k = cc.KeyGen()
    cc.EvalMultKeyGen(k.secretKey)
    x = np.random.default_rng(0).uniform(-1, 1, ring_dim // 2)
    a = cc.Encrypt(k.publicKey, cc.MakeCKKSPackedPlaintext(x, 1, level))
    b = cc.Encrypt(k.publicKey, cc.MakeCKKSPackedPlaintext(x[::-1].copy(), 1, level))

    def timeit(f):
        # CPU time of this (single-threaded) process: robust to other jobs on shared cores.
        f()
        t = time.process_time()
        for _ in range(reps):
            f()
        return (time.process_time() - t) / reps

    return {
        "scalar_mult": timeit(lambda: cc.EvalMult(a, 0.37)),
        "addition": timeit(lambda: cc.EvalAdd(a, b)),
        "ct_ct_mult": timeit(lambda: cc.EvalMult(a, b)),
        "reps": reps,
        "level": level,
    }


def fmt_s(s):
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.2f} s"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--program", required=True)
    ap.add_argument("--report", required=True, help="JSON report of `python -m pannc_openfhe run` on the program")
    ap.add_argument("--orion", type=int, default=26, help="Orion's compile-time bootstrap count for the architecture")
    ap.add_argument("--sim", help="pannc's simulated logits ([N, 10] .npy) to compare with --dec")
    ap.add_argument("--dec", help="the run's decrypted logits ([N, 10] .npy)")
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    prog = program.load(a.program)
    with open(a.report) as f:
        rep = json.load(f)
    if rep.get("mode") != "ckks":
        sys.exit("error: --report is not from an encrypted run")
    ps = rep["per_sample"]
    wall = [s["seconds_total"] for s in ps]
    cpu = [s.get("cpu_seconds") for s in ps]
    boot_each = [t for s in ps for t in s["seconds"]["bootstrap_each"]]
    bk = ps[0]["by_kind"].get("bootstrap", {})
    if bk.get("cpu_seconds") and rep.get("threads") == "1":
        t_boot = bk["cpu_seconds"] / bk["count"]  # CPU seconds per bootstrap (single thread)
        boot_how = f"CPU time, mean of the run's {bk['count']}"
    else:
        t_boot = float(np.median(boot_each)) if boot_each else None
        boot_how = f"wall time, median of the run's {len(boot_each)}"
    cnt = ps[0]["counts"]
    rotations = cnt["baby_rotations"] + cnt["giant_rotations"] + cnt["rotate_ops"]
    setup = sum(rep["setup_seconds"].values())
    sc = slot_counts(prog)
    ring = rep["ring_dim"]
    m = micro(ring, rep["context_depth"], rep["encrypt_level"], a.reps)
    if t_boot is None:
        sys.exit("error: the run had no bootstrap; its report cannot price one")
    slot_batch = (sc["scalar_mults"] * m["scalar_mult"] + sc["additions"] * m["addition"]
                  + sc["ct_ct_mults"] * m["ct_ct_mult"] + sc["bootstraps"] * t_boot)
    batch = ring // 2
    out = {
        "program": os.path.abspath(a.program),
        "report": os.path.abspath(a.report),
        "ring_dim": ring,
        "security": rep["security"],
        "threads": rep.get("threads"),
        "packed": {
            "images": len(ps),
            "seconds_per_image": wall,
            "cpu_seconds_per_image": cpu,
            "loadavg": [rep["host"].get("loadavg_start"), rep["host"].get("loadavg_end")],
            "setup_seconds": round(setup, 1),
            "bootstraps_per_image": cnt["bootstraps"],
            "bootstrap_seconds_median": t_boot,
            "rotations_per_image": rotations,
            "rotation_keys": rep["keys"]["program_rotation_keys"],
            "automorphism_keys_total": rep["keys"]["automorphism_keys_total"],
            "peak_rss_mb": rep["peak_rss_mb"],
            "output_rel_err_vs_plaintext": [s["output_rel_err"][0] for s in ps],
            "argmax_agree": [s["argmax_agree"][0] for s in ps],
            "by_kind_seconds": ps[0]["by_kind"],
        },
        "slot_per_sample_estimate": dict(sc, seconds_per_batch=slot_batch, batch=batch,
                                         seconds_per_image_amortised=slot_batch / batch, unit_costs=m),
        "bootstraps_vs_orion": {"pannc": cnt["bootstraps"], "orion": a.orion},
    }
    if a.sim and a.dec:
        sim, dec = np.load(a.sim), np.load(a.dec)
        n = min(len(sim), len(dec))
        sim, dec = sim[:n].reshape(n, -1), dec[:n].reshape(n, -1)
        rel = [float(np.max(np.abs(dec[i] - sim[i])) / np.max(np.abs(sim[i]))) for i in range(n)]
        out["packed"]["decrypted_vs_simulated_rel"] = rel
        out["packed"]["classes_agree_with_simulation"] = [bool(np.argmax(dec[i]) == np.argmax(sim[i])) for i in range(n)]

    p = out["packed"]
    s = out["slot_per_sample_estimate"]
    print(f"## {prog.name}: packed (measured) vs slot-per-sample (estimated), ring 2^{ring.bit_length() - 1}, {rep['security']}, "
          f"{rep.get('threads') or 'default'} thread(s)\n")
    print("| | packed (measured) | slot-per-sample (estimated) |")
    print("|---|---|---|")
    print(f"| ciphertexts for one image's input | {sum(prog.cts(i) for i in range(len(prog.inputs)))} | {s['input_ciphertexts']} (one per feature) |")
    print(f"| largest tensor | {max(v['ciphertexts'] for v in prog.values)} ciphertext(s) | {s['features_max']} ciphertexts |")
    print(f"| bootstraps (ciphertexts refreshed) | {p['bootstraps_per_image']} per image | {s['bootstraps']} per batch |")
    print(f"| rotations | {p['rotations_per_image']} per image ({p['rotation_keys']} keys) | 0 |")
    print(f"| ct x scalar products | {ps[0]['counts']['pt_mults']} plaintext products per image | {s['scalar_mults']} per batch |")
    print(f"| ct x ct products | {ps[0]['counts']['ct_ct_mults']} per image | {s['ct_ct_mults']} per batch |")
    cpu_txt = "" if None in cpu else f" wall ({', '.join(fmt_s(c) for c in cpu)} CPU)"
    print(f"| time | {', '.join(fmt_s(w) for w in p['seconds_per_image'])}{cpu_txt} per image (+ {fmt_s(p['setup_seconds'])} keys) | "
          f"{fmt_s(s['seconds_per_batch'])} per batch of up to {batch} images = {fmt_s(s['seconds_per_image_amortised'])} per image amortised |")
    print(f"| latency for one image | {fmt_s(min(p['seconds_per_image']))} | {fmt_s(s['seconds_per_batch'])} |")
    print(f"| peak RSS | {p['peak_rss_mb'] / 1024:.1f} GB | (not measured) |")
    print()
    print(f"Unit costs measured here (ring 2^{ring.bit_length() - 1}, level {m['level']} of {rep['context_depth']}): "
          f"ct x scalar {m['scalar_mult'] * 1e3:.2f} ms, addition {m['addition'] * 1e3:.2f} ms, ct x ct {m['ct_ct_mult'] * 1e3:.1f} ms, "
          f"bootstrap {t_boot:.1f} s ({boot_how}); unit costs are CPU time of one thread.")
    print(f"Load average during the run: {rep['host'].get('loadavg_start')} at start, {rep['host'].get('loadavg_end')} at end "
          f"({os.cpu_count()} cores here).")
    print(f"Bootstraps per image: pannc {cnt['bootstraps']}, Orion (compile-time count, same architecture) {a.orion}.")
    if "decrypted_vs_simulated_rel" in p:
        print(f"Decrypted vs pannc's simulation: max relative error {max(p['decrypted_vs_simulated_rel']):.2e}, "
              f"classes agree {sum(p['classes_agree_with_simulation'])}/{len(p['classes_agree_with_simulation'])}.")
    print(f"Decrypted vs the program's plaintext evaluation: max relative error {max(p['output_rel_err_vs_plaintext']):.2e}, "
          f"classes agree {sum(p['argmax_agree'])}/{len(p['argmax_agree'])}.")
    print("Time by op kind (first image): " + ", ".join(f"{k} {v['count']}x {fmt_s(v['seconds'])}" for k, v in p["by_kind_seconds"].items()))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
