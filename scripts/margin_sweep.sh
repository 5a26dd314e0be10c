#!/usr/bin/env bash
# Top-1 of the PANN vs the range margin (B = margin · max|x| on the calibration data), at α = 7
# and 9, on the full test sets prepared by scripts/accuracy_table.sh (run that first).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PANNC_PYTHON:-.venv/bin/python}
OUT=target/accuracy
echo "| fixture | α | margin 1.0 | 1.1 | 1.3 | 1.6 | 2.0 |"
echo "|---|---|---|---|---|---|---|"
for f in resnet_fmnist maxpool_mnist; do
  for a in 7 9; do
    row="| $f | $a |"
    for m in 1.0 1.1 1.3 1.6 2.0; do
      target/release/pannc compile "fixtures/$f/model.onnx" --calib "fixtures/$f/calib_x.npy" --alpha "$a" --margin "$m" \
        --check "$OUT/$f-x.npy" --labels "$OUT/$f-y.npy" --report "$OUT/margin-$f-$a-$m.json" 2>/dev/null
      cell=$("$PY" -c "import json,sys; c=json.load(open(sys.argv[1]))['check']; n=sum(o['outside'] for o in c['out_of_range']); print('%.2f%% (%d out)' % (100*c['pann_top1'], n))" "$OUT/margin-$f-$a-$m.json")
      row="$row $cell |"
    done
    echo "$row"
  done
done
