#!/usr/bin/env bash
# KiTS23's three nested regions at CPU scale (issue 13): BoundaryTrainer vs baseline nnU-Net on CT phantoms
# (with cysts) synthesized around 64 real KiTS23 label maps (every second case, case_00400 ... case_00526) at
# 4 mm; the last 12 are the held-out test set, the other 52 train (5-fold splits; fold 0 trains on 41).
# Plans: template kits19_4mm (4 mm, patch 32^3, batch 2; boundary network 16-128, baseline nnU-Net's 32-256);
# both trainers get the same 1,500 steps (Budget4mm: BaselineTrainer_4mm, BoundaryTrainer_4mm), fold 0, and
# predict the test cases as a single model without TTA. Restartable: finished trainings, predictions and
# evaluations are skipped, an interrupted training resumes (--c). The analysis (Dice and Surface Dice per
# region at the official tolerances, NSD@2mm, HD95; paired bootstrap against the baseline) writes RESULTS.md
# and results.json here.
#   [KITS23_MASKS=../shared/kits23/dataset] bash benchmarks/kits23_phantom_cpu/run.sh [WORK_DIR]
# (default WORK_DIR /tmp/k23)
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../phantom_dataset.sh"
work="${1:-/tmp/k23}"
EDITION=kits23 prepare_phantom_dataset "$work" 923 12 kits19_4mm \
    $(python -c "print(' '.join('case_%05d' % (400 + 2 * i) for i in range(64)))")
export nnUNet_extTrainer="$(python -c 'from nnunet_boundary.environment import TRAINER_DIR; print(TRAINER_DIR)')"
raw="$nnUNet_raw/Dataset923_KiTS23"
for row in BaselineTrainer_4mm:3d_fullres_baseline BoundaryTrainer_4mm:3d_fullres; do
    trainer=${row%%:*} configuration=${row##*:}
    fold="$nnUNet_results/Dataset923_KiTS23/${trainer}__nnUNetBoundaryPlans__$configuration/fold_0"
    [ -f "$fold/checkpoint_final.pth" ] || nnUNetv2_train 923 "$configuration" 0 -tr "$trainer" \
        -p nnUNetBoundaryPlans -device cpu --c
    out="$work/predictions/$trainer"
    nnUNetv2_predict -i "$raw/imagesTs" -o "$out" -d 923 -c "$configuration" -tr "$trainer" -p nnUNetBoundaryPlans \
        -f 0 --disable_tta -device cpu -npp 1 -nps 1 --continue_prediction --disable_progress_bar
    [ -f "$out/metrics.json" ] || nb evaluate "$out" "$raw/labelsTs" --kits23 -o "$out/metrics.json"
done
python -m nnunet_boundary.benchmark.kits23_comparison --out "$here" \
    --baseline "BaselineTrainer_4mm=$work/predictions/BaselineTrainer_4mm/metrics.json" \
    --model "BoundaryTrainer_4mm=$work/predictions/BoundaryTrainer_4mm/metrics.json"
