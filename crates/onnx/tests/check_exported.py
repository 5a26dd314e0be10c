"""Checks models exported by pannc-onnx (called by tests/roundtrip.rs).

Reads a manifest of `exported<TAB>original<TAB>test_data_dir_or_-` lines. Each exported model
must pass onnx.checker.check_model(full_check=True), load in onnxruntime, and compute the
same outputs as the original model in onnxruntime (or, where onnxruntime cannot run the
original, as the conformance test's expected outputs).
"""

import glob
import os
import re
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def index(p):
    return int(re.search(r"_(\d+)\.pb$", p).group(1))


def load_pbs(d, kind):
    files = sorted(glob.glob(os.path.join(d, f"{kind}_*.pb")), key=index)
    out = []
    for f in files:
        t = onnx.TensorProto()
        with open(f, "rb") as fh:
            t.ParseFromString(fh.read())
        out.append(numpy_helper.to_array(t))
    return out


NP = {1: np.float32, 11: np.float64, 7: np.int64}


def random_feeds(model, rng):
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else 1 for d in tt.shape.dim]
        dt = NP[tt.elem_type]
        if dt is np.int64:
            feeds[vi.name] = rng.integers(0, 2, size=shape).astype(dt)
        else:
            feeds[vi.name] = rng.standard_normal(shape).astype(dt)
    return feeds


def orig_opset(path):
    m = onnx.load(path, load_external_data=False)
    return next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))


def session(path):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def main():
    rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
    failures = []
    skipped = []
    compared_ref = compared_data = 0
    for exported, original, data in rows:
        tag = os.path.basename(exported)
        try:
            onnx.checker.check_model(onnx.load(exported), full_check=True)
        except Exception as e:  # noqa: BLE001
            failures.append(f"{tag}: checker: {e}")
            continue
        try:
            sess = session(exported)
        except Exception as e:  # noqa: BLE001
            try:
                session(original)
            except Exception:  # noqa: BLE001
                if os.path.basename(exported).endswith(f"@{orig_opset(original)}.onnx"):
                    skipped.append(f"{tag}: onnxruntime loads neither it nor the original ({str(e)[:80]})")
                    continue
            failures.append(f"{tag}: onnxruntime cannot load it: {e}")
            continue
        orig = onnx.load(original)
        inits = {t.name for t in orig.graph.initializer}
        in_names = [vi.name for vi in orig.graph.input if vi.name not in inits]
        out_names = [vi.name for vi in orig.graph.output]
        expected = None
        if data != "-":
            feeds = dict(zip(in_names, load_pbs(data, "input")))
            expected = load_pbs(data, "output")
        else:
            feeds = random_feeds(orig, np.random.default_rng(0))
        try:
            got = sess.run(out_names, feeds)
        except Exception as e:  # noqa: BLE001
            failures.append(f"{tag}: onnxruntime run failed: {e}")
            continue
        try:
            ref = session(original).run(out_names, feeds)
            compared_ref += 1
            tol = dict(rtol=1e-5, atol=1e-6)
        except Exception:  # noqa: BLE001  (e.g. opset 6 models onnxruntime no longer runs)
            if expected is None:
                failures.append(f"{tag}: onnxruntime cannot run the original and there are no expected outputs")
                continue
            ref = expected
            compared_data += 1
            tol = dict(rtol=1e-3, atol=1e-5)
        for name, g, r in zip(out_names, got, ref):
            r = np.asarray(r)
            if g.shape != r.shape or not np.allclose(g, r, equal_nan=True, **tol):
                diff = np.max(np.abs(g.astype(np.float64) - r.astype(np.float64))) if g.shape == r.shape else "shape"
                failures.append(f"{tag}: output {name}: differs ({g.shape} vs {r.shape}, max diff {diff})")
    for f in skipped:
        print("SKIP", f)
    for f in failures:
        print("FAIL", f)
    print(
        f"checked {len(rows)} models: {len(rows) - len(failures) - len(skipped)} ok, {len(failures)} failed, "
        f"{len(skipped)} skipped "
        f"({compared_ref} compared with the original in onnxruntime, {compared_data} with expected outputs)"
    )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
