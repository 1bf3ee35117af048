#!/usr/bin/env bash
# The boundary claim where tumors are learned (issue 11): CPU benchmark on CT phantoms around 80 real
# KiTS19 masks (every second case, case_00000 ... case_00158) at 4 mm; the last 16 are the held-out test
# set (imagesTs/labelsTs), 64 train (5-fold splits; fold 0 trains on 51, validates on 13).
# Plans: template kits19_4mm (4 mm, patch 32^3, batch 2; boundary network 16-128, baseline nnU-Net's 32-256).
# Every row trains fold 0 for the same 1,500 steps (Budget4mm). Rows run one after another, in ROWS order;
# each finished training, prediction and evaluation is skipped on a rerun, so the script resumes where it
# stopped. After each row the analysis (paired bootstrap against the baseline, postprocessing) is rewritten.
#   [ROWS="..."] [KITS19_MASKS=../shared/kits19/data] bash benchmarks/kits19_phantom_4mm/run.sh [WORK_DIR]
# (default WORK_DIR /tmp/b4)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../../scripts/env.sh"
work="${1:-/tmp/b4}"
export nnUNet_raw="$work/nnunet/raw" nnUNet_preprocessed="$work/nnunet/pre" nnUNet_results="$work/nnunet/res"
export nnUNet_compile=false
nb() { local name="$1"; shift; python -c "import sys; from nnunet_boundary.cli.$name import main; main(sys.argv[1:])" "$@"; }
cases=$(python -c "print(' '.join('case_%05d' % (2 * i) for i in range(80)))")
nb phantoms "${KITS19_MASKS:-$here/../../../shared/kits19/data}" "$work/phantoms_4mm" --spacing 4 --cases $cases
nb convert_kits19 "$work/phantoms_4mm" -d 914 --num-test 16
[ -f "$nnUNet_preprocessed/Dataset914_KiTS19/nnUNetBoundaryPlans.json" ] \
    || nb plan_and_preprocess -d 914 --template kits19_4mm -np 2
baseline=BaselineTrainer_4mm
rows=${ROWS:-"BoundaryTrainer_4mm BoundaryTrainer_4mm_fixed BoundaryTrainer_4mm_nnUNetCrops BaselineTumorSampler_4mm
    BoundaryTrainer_4mm_architectureOnly BoundaryTrainer_4mm_edgeFreeCrops BoundaryTrainer_4mm_pooledEdges
    BoundaryTrainer_4mm_fullResBoundary BoundaryTrainer_Paper_4mm BaselineTrainer_4mm_run2
    BoundaryTrainer_4mm_equalWidths"}
done_rows="$baseline"
for row in $rows; do
    done_rows="$done_rows $row"
    nb benchmark -d 914 --folds 0 --trainers $done_rows --out "$work/benchmark" --device cpu -np 2 --no-speed --settings single
    python -m nnunet_boundary.benchmark.ablation "$work/benchmark" --baseline $baseline --out "$here" \
        || echo "run.sh: the analysis failed; training goes on with the next row" >&2
done
