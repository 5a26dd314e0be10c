#!/usr/bin/env python3
"""Throughput of pannc's interpreter as a ratio to onnxruntime, same model, same batch, same
machine, same number of threads.

    benches/interp_vs_ort.py [FIXTURE] [--batch N] [--repeats R] [--threads T]

pannc is timed end to end through `pannc run` (process start, model import and clean-up,
.npy read and write included: what a user waits for) with RAYON_NUM_THREADS=T; onnxruntime
in-process on the same array with its default graph optimisations and T intra-op threads.
The runs alternate (pannc, onnxruntime, pannc, ...) so that a busy machine slows both alike,
and the medians of R runs are compared, in wall time and in CPU time (user + system: on a
machine shared with other jobs, the steadier of the two). The batch is the fixture's test
subset tiled to N images.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixture", nargs="?", default="resnet_fmnist")
    ap.add_argument("--batch", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pannc", default=os.path.join(ROOT, "target", "release", "pannc"))
    a = ap.parse_args()
    fx = os.path.join(ROOT, "fixtures", a.fixture)
    model = os.path.join(fx, "model.onnx")
    x = np.load(os.path.join(fx, "test_x.npy"))
    reps = -(-a.batch // x.shape[0])
    x = np.ascontiguousarray(np.concatenate([x] * reps)[: a.batch])
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    y_ort = sess.run(None, {name: x})[0]
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    pw, pc, ow, oc = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        xp = os.path.join(tmp, "x.npy")
        yp = os.path.join(tmp, "y.npy")
        np.save(xp, x)
        for _ in range(a.repeats):
            c0, t = children_cpu(), time.perf_counter()
            subprocess.run([a.pannc, "run", model, "--input", xp, "--output", yp], check=True, env=env)
            pw.append(time.perf_counter() - t)
            pc.append(children_cpu() - c0)
            c0, t = time.process_time(), time.perf_counter()
            sess.run(None, {name: x})
            ow.append(time.perf_counter() - t)
            oc.append(time.process_time() - c0)
        y_pannc = np.load(yp)
    diff = float(np.abs(y_pannc - y_ort).max())
    med = statistics.median
    print(f"model {a.fixture}, batch {a.batch}, {a.threads} thread(s) each, {os.cpu_count()} cores, "
          f"median of {a.repeats} alternating runs")
    print(f"{'':28}{'wall':>9}{'images/s':>10}{'cpu':>9}")
    print(f"{'pannc run (end to end)':28}{med(pw):8.3f}s{a.batch / med(pw):10.0f}{med(pc):8.3f}s")
    print(f"{'onnxruntime (in-process)':28}{med(ow):8.3f}s{a.batch / med(ow):10.0f}{med(oc):8.3f}s")
    print(f"ratio pannc/onnxruntime (throughput): wall {med(ow) / med(pw):.2f}x, "
          f"cpu {med(oc) / med(pc):.2f}x   (max |logit diff| {diff:.1e})")


if __name__ == "__main__":
    sys.exit(main())
