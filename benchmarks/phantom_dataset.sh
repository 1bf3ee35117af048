# Sourced by the phantom benchmarks' run.sh: the environment and one phantom dataset, each step skipping
# what an earlier run finished.
#   prepare_phantom_dataset WORK_DIR DATASET_ID NUM_TEST TEMPLATE CASE...
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
export nnUNet_compile=false
# our console scripts, called through their modules (a concurrent `pip install -e` may be rewriting bin/)
nb() { local name="$1"; shift; python -c "import sys; from nnunet_boundary.cli.$name import main; main(sys.argv[1:])" "$@"; }

prepare_phantom_dataset() {
    local work="$1" id="$2" num_test="$3" template="$4"; shift 4
    export nnUNet_raw="$work/nnunet/raw" nnUNet_preprocessed="$work/nnunet/pre" nnUNet_results="$work/nnunet/res"
    nb phantoms "${KITS19_MASKS:-$(dirname "${BASH_SOURCE[0]}")/../../shared/kits19/data}" "$work/phantoms_4mm" \
        --spacing 4 --cases "$@"
    nb convert_kits19 "$work/phantoms_4mm" -d "$id" --num-test "$num_test"
    [ -f "$nnUNet_preprocessed/Dataset${id}_KiTS19/nnUNetBoundaryPlans.json" ] \
        || nb plan_and_preprocess -d "$id" --template "$template" -np 2
}
