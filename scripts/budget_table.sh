#!/bin/bash
# Levels vs top-1 of `compile --budget` against uniform single-polynomial settings (issue #14),
# on each fixture's 1000 committed test images (calibration: its 256 training images).
# Prints the markdown rows of docs/experiments.md's "compile --budget" table. ~5 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PANNC=${PANNC:-target/release/pannc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
row() { # fixture, label, args...
  local f=$1 label=$2; shift 2
  local out
  out=$("$PANNC" compile fixtures/$f/model.onnx --calib fixtures/$f/calib_x.npy -o "$tmp/p.onnx" \
        --check fixtures/$f/test_x.npy --labels fixtures/$f/test_y.npy "$@" 2>&1)
  local levels top
  levels=$(grep -o "network [0-9]* levels" <<<"$out" | head -1 | grep -o "[0-9]*")
  top=$(grep -o "top-1: backbone [0-9.]*%, PANN [0-9.]*% ([-+0-9.]* points)" <<<"$out" | head -1)
  echo "| $f | $label | $levels | $top |"
}
echo "| fixture | setting | network levels | top-1 on 1000 test images |"
echo "|---|---|---|---|"
for f in resnet_fmnist resnet_fmnist_mixup; do
  row $f "uniform composite α=6, bias" --alpha 6 --techniques bias
  row $f "uniform minimax:31, bias" --relu minimax:31 --techniques bias
  row $f "uniform fit:15, bias" --relu fit:15 --techniques bias
  row $f "\`--budget 0.5%\`" --budget 0.5%
done
