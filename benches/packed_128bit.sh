#!/usr/bin/env bash
# resnet_fmnist (alpha 7, shape+bias, --max-level 10) encrypted at 128-bit security (HEStd_128_classic,
# OpenFHE picks ring 2^17), one test image. Needs ~65 GB of memory, so it was run on a 16-core,
# 128 GB machine (not this 24 GB one), from the repository root, with everything it needs in .dev/:
#   .dev/pannc          target/release/pannc, stripped
#   .dev/py310.tar.xz   CPython 3.10.13 (pyenv; bin/python3.10, libpython, stdlib without tests)
#   .dev/*.whl          openfhe==1.6.1.0.22.4 and numpy==2.2.6 (cp310) wheels, unpacked as-is
# Output under $OUT: log128.txt (per-op log), r128.json (report), y128.npy (decrypted logits).
# MODE=dry stops after compiling; EXTRA=--insecure compiles test parameters; T=threads (16).
# The run of 2026-12-04 is in benches/results/resnet_fmnist_128bit_{report.json,log.txt}.
set -uo pipefail
D=$PWD/.dev; OUT=${OUT:-/tmp/out}; mkdir -p $OUT /tmp/py /tmp/site
tar -xJf $D/py310.tar.xz -C /tmp/py
for w in $D/*.whl; do python3 -m zipfile -e $w /tmp/site/; done
export PYTHONHOME=/tmp/py LD_LIBRARY_PATH=/tmp/py/lib PYTHONPATH=/tmp/site:$PWD/python/pannc-openfhe PYTHONUNBUFFERED=1
PY=/tmp/py/bin/python3.10
$PY -c 'import sys, numpy, openfhe; print(sys.version.split()[0], numpy.__version__, "openfhe ok")' || exit 3
nproc; free -g | head -2
MODE=${MODE:-full}
S=$(date +%s)
$D/pannc compile fixtures/resnet_fmnist/model.onnx --calib fixtures/resnet_fmnist/calib_x.npy \
  --alpha 7 --techniques shape+bias --emit ckks --max-level 10 -o /tmp/prog ${EXTRA:-} 2>&1 | tail -15 || exit 4
echo "compile: $(( $(date +%s) - S )) s"; du -sh /tmp/prog
$PY -c "import numpy as np; np.save('/tmp/x1.npy', np.load('fixtures/resnet_fmnist/test_x.npy')[:1])"
if [ $MODE = dry ]; then $PY -m pannc_openfhe --help | head -5; exit 0; fi
S=$(date +%s)
$PY -m pannc_openfhe run /tmp/prog --input /tmp/x1.npy --output $OUT/y128.npy --threads ${T:-16} --report $OUT/r128.json ${RUNEXTRA:-} 2>&1 | tee $OUT/log128.txt
echo "runner rc=$? wall $(( $(date +%s) - S )) s"
