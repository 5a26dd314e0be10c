"""Command line: `python -m pannc_openfhe {run,validate,circuit} ...`.

    python -m pannc_openfhe run DIR --input X.npy --output Y.npy [--ring-dim N] [--insecure]
        [--threads T] [--report R.json] [--plaintext] [--samples K] [--no-trace] [--tol E]
    python -m pannc_openfhe validate DIR
    python -m pannc_openfhe circuit CIRCUIT.json ...   (slot-per-sample circuits, versions 1-2)

`run` validates DIR (docs/packed-format.md) before anything else, then either evaluates it in
plaintext (`--plaintext`, numpy only) or generates keys and runs every sample encrypted, one
sample per run of the program. Exit status: 0 success; 1 an invalid program or input (one line
`error: ...` on stderr), a level mismatch, or an error above `--tol`; 2 usage.
"""

import argparse
import json
import os
import platform
import re
import sys
import time

import numpy as np

from . import __version__
from . import plain
from .program import ProgramError, load


def _die(msg):
    print(f"error: {msg}", file=sys.stderr)
    return 1


def _named(items, names, what):
    """`--input X.npy` or `--input NAME=X.npy` (repeated) -> {name: path}."""
    out = {}
    for s in items:
        if "=" in s and s.split("=", 1)[0] in names:
            n, p = s.split("=", 1)
        elif len(names) == 1:
            n, p = names[0], s
        else:
            raise ValueError(f"the program has {len(names)} {what}s ({', '.join(names)}): pass --{what} NAME=FILE.npy for each")
        out[n] = p
    return out


def _samples(x, shape, name):
    """An array of one sample (`shape`) or of N samples ([N, *shape] or [N, numel]) -> [N, *shape]."""
    shape = list(shape)
    numel = int(np.prod(shape))
    if list(x.shape) == shape:
        return x.reshape([1] + shape)
    if x.ndim >= 1 and x.size == x.shape[0] * numel and x.shape[0] >= 1:
        return x.reshape([x.shape[0]] + shape)
    raise ValueError(f"input {name}: array of shape {list(x.shape)} is neither one sample {shape} nor [N, {', '.join(map(str, shape))}]")


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    return err, (err / scale if scale > 0 else err)


def cmd_validate(a):
    try:
        prog = load(a.dir)
    except ProgramError as e:
        return _die(e)
    c = prog.counts()
    print(f"{a.dir}: valid packed program '{prog.name}': {len(prog.ops)} ops, slots {prog.slots}, depth {prog.depth}, "
          f"{len(prog.rotations)} rotation keys, {c['bootstraps']} bootstrapped ciphertexts, {c['rotations']} rotations per sample")
    return 0


def cmd_run(a):
    t_start = time.time()
    log = (lambda s: None) if a.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    try:
        prog = load(a.dir)
    except ProgramError as e:
        return _die(e)
    in_names = [inp.get("name", f"input{i}") for i, inp in enumerate(prog.inputs)]
    out_names = [o.get("name", f"output{i}") for i, o in enumerate(prog.outputs)]
    try:
        ins = _named(a.input, in_names, "input")
        missing = [n for n in in_names if n not in ins]
        if missing:
            raise ValueError(f"no --input for program input {missing[0]}")
        outs_to = _named(a.output, out_names, "output") if a.output else {}
        xs = []
        for i, n in enumerate(in_names):
            try:
                x = np.load(ins[n], allow_pickle=False)
            except (OSError, ValueError) as e:
                raise ValueError(f"--input {ins[n]}: cannot read it as .npy ({e})")
            if not np.issubdtype(x.dtype, np.number):
                raise ValueError(f"--input {ins[n]}: dtype {x.dtype} is not numeric")
            x = _samples(x.astype(np.float64), prog.values[i]["shape"], n)
            if not np.all(np.isfinite(x)):
                raise ValueError(f"--input {ins[n]}: non-finite values")
            xs.append(x)
        N = xs[0].shape[0]
        if any(x.shape[0] != N for x in xs):
            raise ValueError("inputs have different numbers of samples")
        if a.samples:
            N = min(N, a.samples)
        params = None
        if not a.plaintext:
            from .ckks import Params

            params = Params(prog, ring_dim=a.ring_dim, insecure=a.insecure, scale_bits=a.scale_bits,
                            first_mod_bits=a.first_mod_bits, secret=a.secret)
    except ValueError as e:
        return _die(e)

    report = {
        "tool": f"pannc_openfhe {__version__}",
        "program": os.path.abspath(a.dir),
        "name": prog.name,
        "mode": "plaintext" if a.plaintext else "ckks",
        "samples": N,
        "slots": prog.slots,
        "depth": prog.depth,
        "program_stats": prog.doc.get("stats"),
        "counts_per_sample": prog.counts(),
        "python": platform.python_version(),
        "host": {"cpus": os.cpu_count(), "loadavg_start": list(os.getloadavg())},
    }
    t = time.time()
    refs = []
    for s in range(N):
        refs.append(plain.run(prog, [x[s] for x in xs]))
    report["plaintext_seconds"] = round(time.time() - t, 3)
    bound = float(((prog.ckks.get("bootstrap") or {}).get("input_bound", 1.0)))
    worst_boot = 0.0
    for _, vals in refs:
        for op in prog.bootstrap_ops():
            m = plain.used_mask(prog, op["in"])
            worst_boot = max(worst_boot, float(np.max(np.abs(vals[op["in"]][m]))))
    if prog.bootstrap_ops():
        report["bootstrap_input_max_abs_plaintext"] = worst_boot
        report["bootstrap_input_bound"] = bound
        if worst_boot > bound:
            log(f"warning: in plaintext a bootstrap input reaches |x| = {worst_boot:.3g} > ckks.bootstrap.input_bound {bound:g}; "
                "OpenFHE's bootstrap loses precision on large inputs")

    if a.plaintext:
        results = [r[0] for r in refs]
        log(f"plaintext evaluation of {N} sample(s): {report['plaintext_seconds']:.2f} s")
        ok = True
    else:
        from .ckks import Runner, peak_rss_mb

        if a.insecure:
            log("WARNING: INSECURE parameters (HEStd_NotSet, ring dimension %s): for tests and measurements only, NOT 128-bit secure"
                % (params.ring_dim or "chosen by OpenFHE"))
        stage = {}

        def on_stage(st):
            # Rewrite the report as setup advances: an allocation failure inside OpenFHE
            # (std::bad_alloc) aborts the process, and this record is what remains.
            if a.report:
                partial = dict(report, status=f"setup: {st['stage']}", setup_stage=st["stage"],
                               setup_rss_mb_entering=st.get("rss_mb_entering"),
                               setup_seconds={k: round(v, 3) for k, v in st.get("times", {}).items()},
                               wall_seconds=round(time.time() - t_start, 3))
                with open(a.report, "w") as f:
                    json.dump(partial, f, indent=1)

        try:
            runner = Runner(prog, params, log=log, trace=not a.no_trace, stage=stage, on_stage=on_stage)
        except (RuntimeError, ValueError, MemoryError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            msg = re.sub(r"^\S+\.(?:cpp|h):l\.\d+:", "", msg)  # OpenFHE's source location
            if stage.get("stage") == "context" and a.ring_dim and not a.insecure:
                msg += f" (ring dimension {a.ring_dim} is not 128-bit secure at this depth: --insecure for test sizes)"
            if a.report:  # what was measured up to the failure
                report.update({"error": f"OpenFHE setup failed during {stage.get('stage')}: {type(e).__name__}: {msg}",
                               "peak_rss_mb": round(peak_rss_mb(), 1), "setup_seconds": stage.get("times"),
                               "wall_seconds": round(time.time() - t_start, 3)})
                with open(a.report, "w") as f:
                    json.dump(report, f, indent=1)
            return _die(f"OpenFHE setup failed during {stage.get('stage')}: {type(e).__name__}: {msg}")
        report.update({
            "security": "INSECURE: HEStd_NotSet (test parameters)" if a.insecure else "HEStd_128_classic",
            "insecure": bool(a.insecure),
            "ring_dim": runner.ring_dim,
            "sparse_packing": runner.ring_dim > 2 * prog.slots,
            "context_depth": runner.depth,
            "bootstrap_depth": runner.boot_depth,
            "encrypt_level": runner.base,
            "log2_q": runner.log_q,
            "params": params.describe(),
            "threads": os.environ.get("OMP_NUM_THREADS"),
            "keys": runner.key_counts,
            "self_check": runner.self_check,
            "setup_seconds": {k: round(v, 3) for k, v in runner.times.items()},
            "setup_cpu_seconds": round(time.process_time(), 3),
            "rss_mb": dict(runner.rss_keys),
            "randomness": "OpenFHE's own (not seedable from Python); no other randomness in the runner",
        })
        results, per_sample = [], []
        ok = True
        for s in range(N):
            log(f"sample {s + 1}/{N}")
            outs, rec = runner.run([x[s] for x in xs], ref_vals=refs[s][1], progress=not a.quiet)
            errs = [_rel(y, r) for y, r in zip(outs, refs[s][0])]
            rec["output_max_abs_err"] = [e[0] for e in errs]
            rec["output_rel_err"] = [e[1] for e in errs]
            rec["argmax_agree"] = [bool(np.argmax(y) == np.argmax(r)) for y, r in zip(outs, refs[s][0])]
            rec["seconds_total"] = round(sum(rec["seconds"][k] for k in ("encrypt", "ops", "decrypt")), 3)
            per_sample.append(rec)
            results.append(outs)
            if rec["level_mismatches"]:
                ok = False
                m = rec["level_mismatches"][0]
                log(f"error: level mismatch at {m['what']}: planned {m['planned']}, OpenFHE {m['openfhe']} "
                    f"({len(rec['level_mismatches'])} mismatches)")
            log(f"sample {s + 1}: {rec['seconds_total']:.1f} s wall, {rec['cpu_seconds']:.1f} s CPU (all threads), outputs vs plaintext: max |err| "
                f"{max(e[0] for e in errs):.2e}, relative {max(e[1] for e in errs):.2e}, argmax agree {all(rec['argmax_agree'])}, "
                f"{rec['counts']['bootstraps']} bootstraps, {rec['counts']['baby_rotations'] + rec['counts']['giant_rotations'] + rec['counts']['rotate_ops']} rotations")
            if a.tol is not None and max(e[1] for e in errs) > a.tol:
                ok = False
                log(f"error: relative output error {max(e[1] for e in errs):.2e} above --tol {a.tol:g}")
        report["per_sample"] = per_sample
        report["peak_rss_mb"] = round(peak_rss_mb(), 1)
        if a.insecure:
            log("WARNING: this run used INSECURE parameters (HEStd_NotSet)")
    for k, name in enumerate(out_names):
        y = np.stack([r[k] for r in results])
        if name in outs_to:
            np.save(outs_to[name], y)
    report["wall_seconds"] = round(time.time() - t_start, 3)
    report["status"] = "done" if ok else "failed checks"
    report["host"]["loadavg_end"] = list(os.getloadavg())
    if a.report:
        with open(a.report, "w") as f:
            json.dump(report, f, indent=1)
    return 0 if ok else 1


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "circuit":
        from .circuit import main as circuit_main

        return circuit_main(argv[1:], prog="python -m pannc_openfhe circuit")
    ap = argparse.ArgumentParser(prog="python -m pannc_openfhe", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a packed program (docs/packed-format.md) on inputs")
    r.add_argument("dir", help="program directory (program.json, weights.npz)")
    r.add_argument("--input", action="append", default=[], required=True, metavar="[NAME=]X.npy",
                   help="one sample ([*shape]) or N samples ([N, *shape]); repeat with NAME= for several inputs")
    r.add_argument("--output", action="append", default=[], metavar="[NAME=]Y.npy", help="decrypted outputs, [N, *shape]")
    r.add_argument("--plaintext", action="store_true", help="evaluate the plaintext semantics with numpy (no OpenFHE)")
    r.add_argument("--ring-dim", type=int, help="ring dimension (default: OpenFHE's choice for 128-bit security; with --insecure 2*slots)")
    r.add_argument("--insecure", action="store_true", help="HEStd_NotSet: test-size rings, NOT secure")
    r.add_argument("--threads", type=int, help="OpenMP threads for OpenFHE")
    r.add_argument("--samples", type=int, help="run only the first K samples")
    r.add_argument("--scale-bits", type=int, help="override ckks.scale_bits (default the program's, else 59)")
    r.add_argument("--first-mod-bits", type=int, help="override ckks.first_mod_bits (default the program's, else 60)")
    r.add_argument("--secret", choices=["uniform_ternary", "sparse_ternary"], help="override ckks.bootstrap.secret")
    r.add_argument("--no-trace", action="store_true", help="skip the per-op comparison with the plaintext evaluation")
    r.add_argument("--tol", type=float, help="fail when an output's error relative to its largest plaintext value exceeds this")
    r.add_argument("--report", help="write a JSON report here")
    r.add_argument("--quiet", action="store_true", help="no progress on stderr")
    v = sub.add_parser("validate", help="check a packed program against the spec's Validity rules")
    v.add_argument("dir")
    sub.add_parser("circuit", help="run a slot-per-sample circuit (versions 1-2): see `circuit --help`")
    a = ap.parse_args(argv)
    if a.cmd == "validate":
        return cmd_validate(a)
    if getattr(a, "threads", None):
        os.environ["OMP_NUM_THREADS"] = str(a.threads)
    return cmd_run(a)
