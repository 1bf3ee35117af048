#!/usr/bin/env bash
# The boundary claim where tumors are learned (issue 11): CPU benchmark on CT phantoms around 80 real
# KiTS19 masks (every second case, case_00000 ... case_00158) at 4 mm; the last 16 are the held-out test
# set (imagesTs/labelsTs), 64 train (5-fold splits; fold 0 trains on 51, validates on 13).
# Plans: template kits19_4mm (4 mm, patch 32^3, batch 2; boundary network 16-128, baseline nnU-Net's 32-256).
# Every row trains fold 0 for the same 1,500 steps (Budget4mm). Rows run one after another, in ROWS order;
# finished trainings, predictions and evaluations are skipped on a rerun, so the script resumes where it
# stopped. After each row the analysis (paired bootstrap against the baseline, nnU-Net's postprocessing)
# rewrites RESULTS.md, results.json and differences.png here, and saves every run's per-case metrics in
# runs.json here: runs saved there are not trained again, so a lost WORK_DIR (/tmp is cleared on reboot) costs
# only the rows not yet saved.
#   [ROWS="..."] [STEPS=3000] [PATCH=48] [KITS19_MASKS=../shared/kits19/data] \
#       bash benchmarks/kits19_phantom_4mm/run.sh [WORK_DIR]
# (default WORK_DIR /tmp/b4). STEPS=3000: the 3,000-step set-up (Budget4mm3000; every row's variant named
# <row>_3000steps, the second baseline run BaselineTrainer_4mm_run2_3000steps), results in 3000_steps/ here.
# PATCH=48: the same phantoms and split as dataset 915 planned with template kits19_4mm_48 (patch 48^3; same rows
# and budgets), results in 48_patch/ (48_patch_3000_steps/ with STEPS=3000).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../phantom_dataset.sh"
work="${1:-/tmp/b4}"
choose_patch 914 915
prepare_phantom_dataset "$work" $dataset 16 $template \
    $(python -c "print(' '.join('case_%05d' % (2 * i) for i in range(80)))")
suffix=${STEPS:+_${STEPS}steps}
setup=$(echo $patch_tag ${STEPS:+${STEPS}_steps} | tr ' ' _)
results="$here${setup:+/$setup}"
work_benchmark="$work/benchmark$suffix${patch_tag:+_$patch_tag}"
baseline=BaselineTrainer_4mm$suffix
# Default order: the boundary stream on nnU-Net's own network (the product's claim without the paper's network,
# which loses to nnU-Net's), its second seed and the baseline's, the boundary loss on nnU-Net's network without
# the stream (what the stream itself adds; the final row by validation at 48^3 / 3,000 steps) and its second
# seed, then the rows that tell the network, the boundary loss and the crop sampler apart
# (the paper's network without and with the boundary loss, with the paper's tumor-weighted sampler, the default
# when the benchmark began), the supervision fixes on the final row (two seeds), then the rows issue 11 asks for
# that are still missing (the fixes together, the paper recipe, the sampler on the plain network, the fixes on
# nnU-Net's crops, the fixes one by one, second seeds of fix 2 alone and of the row it fixes), the slow control
# rows (the paper's network at the baseline's widths and second seeds), third seeds of the final row and the
# baseline, the baseline and the final row in bfloat16 mixed precision (CpuMixedPrecision: what the precision
# costs before the rows move to it; never chosen as the final row) and their second and third seeds, and last
# the equal-width row with the sampler.
rows=${ROWS:-"BoundaryTrainer_4mm_nnUNetNetwork BoundaryTrainer_4mm_nnUNetNetwork_run2 BaselineTrainer_4mm_run2
    BoundaryTrainer_4mm_nnUNetNetwork_noStream BoundaryTrainer_4mm_nnUNetNetwork_noStream_run2
    BoundaryTrainer_4mm_architectureOnly BoundaryTrainer_4mm_nnUNetCrops BoundaryTrainer_4mm
    BoundaryTrainer_4mm_nnUNetNetwork_noStream_fixed BoundaryTrainer_4mm_nnUNetNetwork_noStream_fixed_run2
    BoundaryTrainer_4mm_fixed BoundaryTrainer_Paper_4mm BaselineTumorSampler_4mm BoundaryTrainer_4mm_nnUNetCrops_fixed
    BoundaryTrainer_4mm_edgeFreeCrops BoundaryTrainer_4mm_pooledEdges BoundaryTrainer_4mm_fullResBoundary
    BoundaryTrainer_4mm_run2 BoundaryTrainer_4mm_pooledEdges_run2
    BoundaryTrainer_4mm_equalWidths_nnUNetCrops BoundaryTrainer_4mm_nnUNetCrops_run2
    BoundaryTrainer_4mm_equalWidths_nnUNetCrops_run2 BoundaryTrainer_4mm_nnUNetNetwork_noStream_run3
    BaselineTrainer_4mm_run3 BaselineTrainer_4mm_bf16
    BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16 BaselineTrainer_4mm_bf16_run2
    BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16_run2 BaselineTrainer_4mm_bf16_run3
    BoundaryTrainer_4mm_nnUNetNetwork_noStream_bf16_run3 BoundaryTrainer_4mm_equalWidths"}
[ -n "${ROWS:-}" ] || rows=$(for row in $rows; do echo "$row$suffix"; done)   # STEPS=3000: the rows' 3,000-step variants
done_rows="$baseline"
for row in $rows; do
    # The baseline and the rows so far, less the runs saved in runs.json; the benchmark re-reads finished ones.
    # ROWS=$baseline: the baseline alone
    [ "$row" = "$baseline" ] || done_rows="$done_rows $row"
    saved=$(python -m nnunet_boundary.benchmark.saved_runs "$results/runs.json")
    to_run=$(for trainer in $done_rows; do grep -qx "$trainer" <<< "$saved" || echo "$trainer"; done)
    [ -n "$to_run" ] || continue
    nb benchmark -d $dataset --folds 0 --trainers $to_run --out "$work_benchmark" --device cpu -np 2 --no-speed \
        --settings single
    python -m nnunet_boundary.benchmark.ablation "$work_benchmark" --baseline $baseline --out "$results" \
        --command "${PATCH:+PATCH=$PATCH }${STEPS:+STEPS=$STEPS }${ROWS:+ROWS=\"$ROWS\" }bash benchmarks/kits19_phantom_4mm/run.sh" \
        || echo "run.sh: the analysis failed; training goes on with the next row" >&2
done
