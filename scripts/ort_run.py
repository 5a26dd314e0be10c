#!/usr/bin/env python3
"""Reference runs for pannc's tests: onnxruntime and the ONNX checker.

  ort_run.py run MODEL.onnx OUT_DIR IN0.npy [IN1.npy ...]   -> OUT_DIR/output_<i>.npy
                                                             (tensor outputs only; a model whose
                                                             batch is fixed at 1 runs per sample)
  ort_run.py check MODEL.onnx                              -> onnx.checker full_check
  ort_run.py bench MODEL.onnx X.npy REPEATS                -> prints images/s of onnxruntime

onnxruntime runs single-threaded-per-op defaults with all graph optimisations disabled for
`run` (so the reference is the model as written) and enabled for `bench`.
"""
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort


def session(path, optimize):
    so = ort.SessionOptions()
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def main():
    cmd = sys.argv[1]
    if cmd == "check":
        onnx.checker.check_model(onnx.load(sys.argv[2]), full_check=True)
        print("ok")
    elif cmd == "run":
        model, out_dir, inputs = sys.argv[2], sys.argv[3], sys.argv[4:]
        sess = session(model, optimize=False)
        feeds = {i.name: np.load(p) for i, p in zip(sess.get_inputs(), inputs)}
        first = sess.get_inputs()[0]
        n = next(iter(feeds.values())).shape[0] if feeds else 0
        if first.shape and first.shape[0] == 1 and n > 1:
            # Exported with batch 1 (the default of both PyTorch exporters): one run per sample.
            runs = [sess.run(None, {k: v[i : i + 1] for k, v in feeds.items()}) for i in range(n)]
            outs = [np.concatenate([r[k] for r in runs]) if isinstance(runs[0][k], np.ndarray) else None
                    for k in range(len(runs[0]))]
        else:
            outs = sess.run(None, feeds)
        os.makedirs(out_dir, exist_ok=True)
        for k, o in enumerate(outs):
            if not isinstance(o, np.ndarray):
                break  # sequences/maps (scikit-learn's ZipMap): not tensors
            np.save(os.path.join(out_dir, f"output_{k}.npy"), np.ascontiguousarray(o))
    elif cmd == "bench":
        model, x, repeats = sys.argv[2], np.load(sys.argv[3]), int(sys.argv[4])
        threads = int(os.environ.get("ORT_THREADS", "2"))
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        sess.run(None, {name: x})
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            sess.run(None, {name: x})
            best = min(best, time.perf_counter() - t)
        print(f"{x.shape[0] / best:.1f}")
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
