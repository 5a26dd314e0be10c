#!/usr/bin/env python3
"""Throughput of pannc's interpreter as a ratio to onnxruntime, same model, same batch, same machine.

    benches/interp_vs_ort.py [FIXTURE] [--batch N] [--repeats R]

pannc is timed end to end through `pannc run` (process start, model import and clean-up,
.npy read and write included: what a user waits for); onnxruntime in-process on the same
array with its default graph optimisations and 2 intra-op threads. Best of R runs each.
The batch is the fixture's test subset tiled to N images.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixture", nargs="?", default="resnet_fmnist")
    ap.add_argument("--batch", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pannc", default=os.path.join(ROOT, "target", "release", "pannc"))
    a = ap.parse_args()
    fx = os.path.join(ROOT, "fixtures", a.fixture)
    model = os.path.join(fx, "model.onnx")
    x = np.load(os.path.join(fx, "test_x.npy"))
    reps = -(-a.batch // x.shape[0])
    x = np.ascontiguousarray(np.concatenate([x] * reps)[: a.batch])
    with tempfile.TemporaryDirectory() as tmp:
        xp = os.path.join(tmp, "x.npy")
        yp = os.path.join(tmp, "y.npy")
        np.save(xp, x)
        best_p = float("inf")
        for _ in range(a.repeats):
            t = time.perf_counter()
            subprocess.run([a.pannc, "run", model, "--input", xp, "--output", yp], check=True)
            best_p = min(best_p, time.perf_counter() - t)
        y_pannc = np.load(yp)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    y_ort = sess.run(None, {name: x})[0]
    best_o = float("inf")
    for _ in range(a.repeats):
        t = time.perf_counter()
        sess.run(None, {name: x})
        best_o = min(best_o, time.perf_counter() - t)
    diff = float(np.abs(y_pannc - y_ort).max())
    print(f"model {a.fixture}, batch {a.batch}, {os.cpu_count()} cores")
    print(f"pannc run (end to end): {best_p:.3f} s  {a.batch / best_p:9.0f} images/s")
    print(f"onnxruntime (in-process): {best_o:.3f} s  {a.batch / best_o:9.0f} images/s")
    print(f"ratio pannc/onnxruntime: {best_o / best_p:.2f}x   (max |logit diff| {diff:.1e})")


if __name__ == "__main__":
    sys.exit(main())
