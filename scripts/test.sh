#!/usr/bin/env bash
# Set up the environment (first run only) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python -m pytest -q "$@"
