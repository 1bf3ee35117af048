#!/usr/bin/env bash
# Source this file: it activates a virtual environment with nnunet-boundary and its
# dependencies, building it on first use.
#
# The venv lives outside the clone (NNUNET_BOUNDARY_VENV_ROOT, default
# ~/.cache/nnunet-boundary) under a name derived from requirements.txt, so a fresh clone
# reuses it while the dependency spec is unchanged and builds a new one when it changes.
# Set NNUNET_BOUNDARY_PYTHON=/path/to/python to use an interpreter that already has torch and
# nnU-Net (e.g. your own CUDA build) instead: then only nnunet-boundary itself is installed.
_nb_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${NNUNET_BOUNDARY_PYTHON:-}" ]; then
    _nb_python="$NNUNET_BOUNDARY_PYTHON"
else
    _nb_hash="$(sha256sum "$_nb_repo/requirements.txt" | cut -c1-12)"
    _nb_venv="${NNUNET_BOUNDARY_VENV_ROOT:-$(echo ~)/.cache/nnunet-boundary}/venv-$_nb_hash"
    if [ ! -f "$_nb_venv/.complete" ]; then
        echo "[nnunet-boundary] building the environment in $_nb_venv (first run only, ~10 min)"
        rm -rf "$_nb_venv"
        python3 -m venv "$_nb_venv" \
            && "$_nb_venv/bin/python" -m pip install -q --upgrade pip setuptools wheel \
            && "$_nb_venv/bin/python" -m pip install -q -r "$_nb_repo/requirements.txt" \
            && touch "$_nb_venv/.complete" \
            || { echo "[nnunet-boundary] building the environment failed" >&2; return 1; }
    fi
    _nb_python="$_nb_venv/bin/python"
fi
# Installing the package itself takes seconds; doing it every time points the venv at this clone.
"$_nb_python" -m pip install -qq --no-deps --no-build-isolation -e "$_nb_repo" \
    || { echo "[nnunet-boundary] installing the package failed" >&2; return 1; }
export PATH="$(dirname "$_nb_python"):$PATH"
export VIRTUAL_ENV="$(dirname "$(dirname "$_nb_python")")"
