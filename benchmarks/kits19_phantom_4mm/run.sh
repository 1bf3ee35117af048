#!/usr/bin/env bash
# The boundary claim where tumors are learned (issue 11): CPU benchmark on CT phantoms around 80 real
# KiTS19 masks (every second case, case_00000 ... case_00158) at 4 mm; the last 16 are the held-out test
# set (imagesTs/labelsTs), 64 train (5-fold splits; fold 0 trains on 51, validates on 13).
# Set-ups (PATCH, STEPS): the patch's plans template (kits19_4mm: 32^3, dataset 914; kits19_4mm_48: 48^3, dataset
# 915 = the same phantoms and split; batch 2; boundary network 16-128, baseline nnU-Net's 32-256) and the budget
# every row trains fold 0 for (1,500 steps = Budget4mm, rows named <row>; 3,000 = Budget4mm3000, <row>_3000steps).
# The default, PATCH=48 STEPS=3000, is the set-up the verdict rests on: the first where nnU-Net's baseline learns
# tumors (held-out tumor Dice >= 0.25). Rows run one after another, in ROWS order;
# finished trainings, predictions and evaluations are skipped on a rerun, so the script resumes where it
# stopped. After each row the analysis (paired bootstrap against the baseline, nnU-Net's postprocessing)
# rewrites RESULTS.md, results.json and differences.png in the set-up's folder here (<PATCH>_patch_<STEPS>_steps/),
# and saves every run's per-case metrics in its runs.json: runs saved there are not trained again, so a lost
# WORK_DIR (/tmp is cleared on reboot) costs only the rows not yet saved. Then RESULTS.md and results.json here,
# the index, are rewritten from the set-ups' folders (nnunet_boundary.benchmark.setup_index): VERDICT.md here, a
# table of the set-ups, and the main set-up's headline.
#   [ROWS="..."] [PATCH=48|32] [STEPS=3000|1500] [KITS19_MASKS=../shared/kits19/data] \
#       bash benchmarks/kits19_phantom_4mm/run.sh [WORK_DIR]
# (default WORK_DIR /tmp/b4). With ROWS, the baseline and those rows only (names as trained, e.g.
# ROWS="BoundaryTrainer_4mm_fixed_3000steps").
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../phantom_dataset.sh"
work="${1:-/tmp/b4}"
PATCH=${PATCH:-48} STEPS=${STEPS:-3000}
case "$STEPS" in
    1500) suffix="" ;;
    3000) suffix=_3000steps ;;
    *) echo "run.sh: STEPS must be 1500 or 3000, not '$STEPS'" >&2; exit 2 ;;
esac
choose_patch 914 915
prepare_phantom_dataset "$work" $dataset 16 $template \
    $(python -c "print(' '.join('case_%05d' % (2 * i) for i in range(80)))")
main_setup=48_patch_3000_steps
results="$here/${PATCH}_patch_${STEPS}_steps"
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
[ -n "${ROWS:-}" ] || rows=$(for row in $rows; do echo "$row$suffix"; done)   # the budget's variants of the rows
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
        --command "PATCH=$PATCH STEPS=$STEPS ${ROWS:+ROWS=\"$ROWS\" }bash benchmarks/kits19_phantom_4mm/run.sh" \
        || echo "run.sh: the analysis failed; training goes on with the next row" >&2
    python -m nnunet_boundary.benchmark.setup_index "$here" --main $main_setup \
        || echo "run.sh: the index ($here/RESULTS.md) was not rewritten; training goes on" >&2
done
