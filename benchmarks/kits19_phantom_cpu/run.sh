#!/usr/bin/env bash
# CPU-scale benchmark of BoundaryTrainer_cpu vs BaselineTrainer_cpu on CT phantoms synthesized around
# 48 real KiTS19 masks (every third case, case_00000 ... case_00141), at 4 mm; the last 8 are the held-out
# test set (imagesTs/labelsTs). Restartable: every step skips what is already done.
#   [FOLDS="0 1 2 3 4"] [KITS19_MASKS=../shared/kits19/data] bash benchmarks/kits19_phantom_cpu/run.sh [WORK_DIR]
# (default WORK_DIR /tmp/bench3)
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../phantom_dataset.sh"
work="${1:-/tmp/bench3}"
prepare_phantom_dataset "$work" 913 8 kits19_cpu $(python -c "print(' '.join('case_%05d' % (3 * i) for i in range(48)))")
nb benchmark -d 913 --folds ${FOLDS:-0 1 2 3 4} --trainers BoundaryTrainer_cpu BaselineTrainer_cpu \
    --out "$work/benchmark" --device cpu -np 2
cp "$work/benchmark/RESULTS.md" "$work/benchmark/results.json" "$work/benchmark/benchmark.png" "$here/"
