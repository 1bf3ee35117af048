#!/usr/bin/env bash
# bfloat16 mixed precision on the CPU (CpuMixedPrecision) against float32: the train step of the 4 mm ablation
# benchmark's baseline and final row (nnU-Net's PlainConvUNet 32-256, edge heads beside it), on the same
# phantoms and 48^3 plans (dataset 915), each model in fresh processes in ABBA order (scripts/speed_memory.py;
# "boundary" there is the bfloat16 trainer, "baseline" the float32 one, so its ratios are bfloat16 / float32).
# Prediction runs in float32 in both (the mixin changes training only). Writes <pair>.json here.
#   [ROWS="BaselineTrainer_4mm ..."] [KITS19_MASKS=../shared/kits19/data] bash benchmarks/cpu_mixed_precision/run.sh [WORK_DIR]
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../phantom_dataset.sh"
work="${1:-/tmp/b4}"
PATCH=48 choose_patch 914 915
prepare_phantom_dataset "$work" $dataset 16 $template \
    $(python -c "print(' '.join('case_%05d' % (2 * i) for i in range(80)))")
for row in ${ROWS:-BaselineTrainer_4mm BoundaryTrainer_4mm_nnUNetNetwork_noStream}; do
    python "$here/../../scripts/speed_memory.py" -d $dataset --device cpu --rounds 2 --steps 10 \
        --trainers ${row}_bf16_3000steps ${row}_3000steps --out "$here/$row.json"
done
