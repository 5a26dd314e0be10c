#!/usr/bin/env bash
# Regenerates docs/experiments/fixtures.md (linked from docs/experiments.md) and its data and plots (docs/experiments/): for every fixture,
# `pannc eval` over α = 5..10 with each accuracy technique, `pannc sensitivity` at α = 6 with
# uniform and constant noise, then scripts/experiments_report.py writes the markdown.
# Uses the fixtures' committed test subsets (1 000 images) so it runs anywhere in ~30 min on
# 2 cores. Optional: FULL_X/FULL_Y (.npy, e.g. the full Fashion-MNIST test set made by
# fixtures/scripts/full_testset.py) adds the timed 10 000-image × 6-precision run.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=docs/experiments
mkdir -p "$OUT"
cargo build -q --release -p pannc-cli
P=target/release/pannc
for f in resnet_fmnist resnet_fmnist_mixup maxpool_mnist gelu_digits; do
  d=fixtures/$f
  args=("$d/model.onnx" --data "$d/test_x.npy" --labels "$d/test_y.npy" --calib "$d/calib_x.npy" -q)
  echo "== $f: eval" >&2
  "$P" eval "${args[@]}" --alpha 5..10 --techniques baseline,shape,bias,shape+bias,alloc,all \
    --budget 0.5% --json --plot "$OUT/$f.svg" > "$OUT/$f.eval.json"
  for noise in uniform constant; do
    echo "== $f: sensitivity ($noise)" >&2
    "$P" sensitivity "${args[@]}" --alpha 6 --noise "$noise" --json > "$OUT/$f.sensitivity-$noise.json"
  done
done
if [ -n "${FULL_X:-}" ] && [ -n "${FULL_Y:-}" ]; then
  f=resnet_fmnist
  echo "== $f: timed run on $(basename "$FULL_X")" >&2
  start=$(date +%s.%N)
  "$P" eval fixtures/$f/model.onnx --data "$FULL_X" --labels "$FULL_Y" --calib fixtures/$f/calib_x.npy \
    --alpha 5..10 --techniques shape+bias -q --json > "$OUT/$f.full.eval.json"
  end=$(date +%s.%N)
  python3 -c "import json,sys; p=sys.argv[1]; d=json.load(open(p)); d['wall_seconds']=round(float(sys.argv[3])-float(sys.argv[2]),1); d['cores']=int(sys.argv[4]); json.dump(d,open(p,'w'),indent=2)" \
    "$OUT/$f.full.eval.json" "$start" "$end" "$(nproc)"
fi
python3 scripts/experiments_report.py
