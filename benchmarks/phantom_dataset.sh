# Sourced by the phantom benchmarks' run.sh: the environment and one phantom dataset, each step skipping
# what an earlier run finished.
#   [PATCH=32|48] choose_patch DATASET_ID_32 DATASET_ID_48   -> sets dataset, template, patch_tag
#   [EDITION=kits23] prepare_phantom_dataset WORK_DIR DATASET_ID NUM_TEST TEMPLATE CASE...
# Masks from ../shared/kits19/data (KITS19_MASKS) or, with EDITION=kits23, ../shared/kits23/dataset (KITS23_MASKS).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
export nnUNet_compile=false
# our console scripts, called through their modules (a concurrent `pip install -e` may be rewriting bin/)
nb() { local name="$1"; shift; python -c "import sys; from nnunet_boundary.cli.$name import main; main(sys.argv[1:])" "$@"; }

# The patch's dataset (the same phantoms and split planned per patch), plans template and results tag.
choose_patch() {
    case "${PATCH:-32}" in
        32) dataset=$1 template=kits19_4mm patch_tag="" ;;
        48) dataset=$2 template=kits19_4mm_48 patch_tag=48_patch ;;
        *) echo "run.sh: PATCH must be 32 or 48, not '$PATCH'" >&2; exit 2 ;;
    esac
}

prepare_phantom_dataset() {
    local work="$1" id="$2" num_test="$3" template="$4" edition="${EDITION:-kits19}"; shift 4
    local shared="$(dirname "${BASH_SOURCE[0]}")/../../shared" masks
    masks=$([ "$edition" = kits23 ] && echo "${KITS23_MASKS:-$shared/kits23/dataset}" \
                                    || echo "${KITS19_MASKS:-$shared/kits19/data}")
    export nnUNet_raw="$work/nnunet/raw" nnUNet_preprocessed="$work/nnunet/pre" nnUNet_results="$work/nnunet/res"
    nb phantoms "$masks" "$work/phantoms_4mm" --spacing 4 --cases "$@"
    nb "convert_$edition" "$work/phantoms_4mm" -d "$id" --num-test "$num_test"
    [ -f "$nnUNet_preprocessed/Dataset${id}_${edition/kits/KiTS}/nnUNetBoundaryPlans.json" ] \
        || nb plan_and_preprocess -d "$id" --template "$template" -np 2
}
