"""Writes the test programs of gen.py (valid and broken) for the Rust side's cross-checks
(tests/fhe_packed_e2e.rs): OUT/<name>/{program.json, weights.npz, x.npy, y.npy} with y the
plaintext evaluation by this package, and OUT/bad_<case>/ with `expect.txt` (the rule broken).

    python tests/emit_examples.py OUT
"""

import copy
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import gen  # noqa: E402
from pannc_openfhe import plain, program  # noqa: E402


def main(out):
    os.makedirs(out, exist_ok=True)
    valid = {
        "small_cnn_s64": gen.small_cnn(64, seed=0),
        "small_cnn_s2048": gen.small_cnn(2048, seed=1),
        "mux_cnn_s64": gen.mux_cnn(64, seed=0),
        "boot_mix_s64": gen.boot_mix(64, seed=0),
    }
    for name, (b, _) in valid.items():
        d = b.write(os.path.join(out, name))
        p = program.load(d)
        x = np.random.default_rng(len(name)).uniform(-1, 1, p.values[0]["shape"])
        y, _ = plain.run(p, [x])
        np.save(os.path.join(d, "x.npy"), x)
        np.save(os.path.join(d, "y.npy"), y[0])
    b, _ = gen.small_cnn(128)
    base, arrays = b.doc(), b.arrays
    bad = {
        "version": (lambda d, a: d.update(version=4), "rule 1"),
        "rotation_key": (lambda d, a: d.update(rotations=d["rotations"][:-1]), "rule 4"),
        "level": (lambda d, a: d["ops"][0].update(level=2), "rule 3"),
        "ciphertexts": (lambda d, a: d["values"][2].update(ciphertexts=1), "rule 2"),  # a poly output
        "short_diag": (lambda d, a: a.update(L0_diag=a["L0_diag"][:-1]), "rule 4"),
        "missing_bias": (lambda d, a: a.pop("L0_bias"), "rule 4"),
        "depth_over_levels": (lambda d, a: d["ckks"].update(levels=4), "rule 3"),
        "undefined_output": (lambda d, a: d["outputs"][0].update(value=99), "rule 6"),
    }
    for name, (mutate, rule) in bad.items():
        d, a = copy.deepcopy(base), dict(arrays)
        mutate(d, a)
        path = b.write(os.path.join(out, "bad_" + name), d, a)
        with open(os.path.join(path, "expect.txt"), "w") as f:
            f.write(rule)
        try:
            program.load(path)
            raise SystemExit(f"bad_{name}: the Python validator accepted it")
        except program.ProgramError as e:
            assert rule in str(e), (name, str(e))


if __name__ == "__main__":
    main(sys.argv[1])
