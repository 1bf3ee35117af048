#!/usr/bin/env bash
# Set up the environment (first run only) and run the main job on the embedded synthetic dataset.
# Usage: bash scripts/demo.sh [--out DIR] [--folds N] [--device cpu|cuda]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
if [[ " $* " != *" --out "* ]]; then set -- --out demo_out "$@"; fi
exec nnunet_boundary_demo "$@"
