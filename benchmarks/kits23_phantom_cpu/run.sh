#!/usr/bin/env bash
# KiTS23's three nested regions at CPU scale (issue 13): BoundaryTrainer vs baseline nnU-Net on CT phantoms
# (with cysts) synthesized around 64 real KiTS23 label maps (every second case, case_00400 ... case_00526) at
# 4 mm; the last 12 are the held-out test set, the other 52 train (5-fold splits; fold 0 trains on 41).
# Plans: template kits19_4mm (4 mm, patch 32^3, batch 2; boundary network 16-128, baseline nnU-Net's 32-256);
# both trainers get the same 1,500 steps (Budget4mm: BaselineTrainer_4mm, BoundaryTrainer_4mm), fold 0, and
# predict the test cases as a single model without TTA. The boundary rows: BoundaryTrainer's recipe when each
# budget was first measured -- the paper's tumor-weighted crops at 1,500 steps (BoundaryTrainer_4mm, committed
# then), nnU-Net's crops at 3,000 (BoundaryTrainer_4mm_nnUNetCrops_3000steps: the default since
# benchmarks/kits19_phantom_4mm chose them on validation) -- and at 3,000 steps also that benchmark's final row,
# the boundary loss without the stream on nnU-Net's network (BoundaryTrainer_4mm_nnUNetNetwork_noStream_3000steps).
# Restartable: finished trainings, predictions and evaluations are skipped, an interrupted training resumes
# (--c), and a run whose per-case metrics results.json here holds is not trained again. The analysis (Dice and
# Surface Dice per region at the official tolerances, NSD@2mm, HD95; paired bootstrap against the baseline)
# writes RESULTS.md and results.json here.
#   [PATCH=48] [STEPS=3000] [KITS23_MASKS=../shared/kits23/dataset] bash benchmarks/kits23_phantom_cpu/run.sh [WORK_DIR]
# (default WORK_DIR /tmp/k23). PATCH=48: the same phantoms and split as dataset 924, planned with template
# kits19_4mm_48 (patch 48^3, the context that let the KiTS19 baseline learn kidneys, benchmarks/kits19_phantom_4mm);
# results in 48_patch/ here. STEPS=3000: both trainers' 3,000-step variants (Budget4mm3000, *_3000steps), results
# in 48_patch_3000_steps/ (3000_steps/ at 32^3).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../phantom_dataset.sh"
work="${1:-/tmp/k23}"
choose_patch 923 924
case "${STEPS:-}" in
    ""|3000) ;;
    *) echo "run.sh: STEPS must be 3000 or unset (1,500 steps), not '$STEPS'" >&2; exit 2 ;;
esac
suffix=${STEPS:+_${STEPS}steps}
setup=$(echo $patch_tag ${STEPS:+${STEPS}_steps} | tr ' ' _)
results="$here${setup:+/$setup}" predictions="$work/predictions${setup:+_$setup}"
EDITION=kits23 prepare_phantom_dataset "$work" $dataset 12 $template \
    $(python -c "print(' '.join('case_%05d' % (400 + 2 * i) for i in range(64)))")
export nnUNet_extTrainer="$(python -c 'from nnunet_boundary.environment import TRAINER_DIR; print(TRAINER_DIR)')"
raw="$nnUNet_raw/Dataset${dataset}_KiTS23"
baseline=BaselineTrainer_4mm$suffix
boundary_rows=${STEPS:+"BoundaryTrainer_4mm_nnUNetCrops$suffix:3d_fullres
    BoundaryTrainer_4mm_nnUNetNetwork_noStream$suffix:3d_fullres_baseline"}
boundary_rows=${boundary_rows:-BoundaryTrainer_4mm:3d_fullres}
saved=$(python -c "import sys; from nnunet_boundary.benchmark.kits23_comparison import saved_per_case
print('\n'.join(saved_per_case(sys.argv[1])))" "$results")
for row in $baseline:3d_fullres_baseline $boundary_rows; do
    trainer=${row%%:*} configuration=${row##*:}
    ! grep -qx "$trainer" <<< "$saved" || continue   # its per-case metrics are saved in results.json
    fold="$nnUNet_results/Dataset${dataset}_KiTS23/${trainer}__nnUNetBoundaryPlans__$configuration/fold_0"
    [ -f "$fold/checkpoint_final.pth" ] || nnUNetv2_train $dataset "$configuration" 0 -tr "$trainer" \
        -p nnUNetBoundaryPlans -device cpu --c
    out="$predictions/$trainer"
    nnUNetv2_predict -i "$raw/imagesTs" -o "$out" -d $dataset -c "$configuration" -tr "$trainer" \
        -p nnUNetBoundaryPlans -f 0 --disable_tta -device cpu -npp 1 -nps 1 --continue_prediction --disable_progress_bar
    [ -f "$out/metrics.json" ] || nb evaluate "$out" "$raw/labelsTs" --kits23 -o "$out/metrics.json"
done
python -m nnunet_boundary.benchmark.kits23_comparison --out "$results" \
    --baseline "$baseline=$predictions/$baseline/metrics.json" \
    $(for row in $boundary_rows; do trainer=${row%%:*}
          echo --model "$trainer=$predictions/$trainer/metrics.json"; done) \
    --command "${PATCH:+PATCH=$PATCH }${STEPS:+STEPS=$STEPS }bash benchmarks/kits23_phantom_cpu/run.sh"
