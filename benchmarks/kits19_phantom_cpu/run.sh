#!/usr/bin/env bash
# CPU-scale benchmark of BoundaryTrainer_cpu vs BaselineTrainer_cpu on CT phantoms synthesized around
# 48 real KiTS19 masks (every third case, case_00000 ... case_00141), at 4 mm; the last 8 are the held-out
# test set (imagesTs/labelsTs). Restartable: every step skips what is already done.
#   [FOLDS="0 1 2 3 4"] [KITS19_MASKS=../shared/kits19/data] bash benchmarks/kits19_phantom_cpu/run.sh [WORK_DIR]
# (default WORK_DIR /tmp/bench3)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../../scripts/env.sh"
work="${1:-/tmp/bench3}"
export nnUNet_raw="$work/nnunet/raw" nnUNet_preprocessed="$work/nnunet/pre" nnUNet_results="$work/nnunet/res"
export nnUNet_compile=false
# our console scripts, called through their modules (a concurrent `pip install -e` may be rewriting bin/)
nb() { local name="$1"; shift; python -c "import sys; from nnunet_boundary.cli.$name import main; main(sys.argv[1:])" "$@"; }
cases=$(python -c "print(' '.join('case_%05d' % (3 * i) for i in range(48)))")
nb phantoms "${KITS19_MASKS:-$here/../../../shared/kits19/data}" "$work/phantoms_4mm" --spacing 4 --cases $cases
nb convert_kits19 "$work/phantoms_4mm" -d 913 --num-test 8
[ -f "$nnUNet_preprocessed/Dataset913_KiTS19/nnUNetBoundaryPlans.json" ] \
    || nb plan_and_preprocess -d 913 --template kits19_cpu -np 2
nb benchmark -d 913 --folds ${FOLDS:-0 1 2 3 4} --trainers BoundaryTrainer_cpu BaselineTrainer_cpu \
    --out "$work/benchmark" --device cpu -np 2
cp "$work/benchmark/RESULTS.md" "$work/benchmark/results.json" "$work/benchmark/benchmark.png" "$here/"
