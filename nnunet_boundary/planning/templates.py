"""Plans templates: the paper's network, patch and spacing laid over nnU-Net's own plans (the
fixed presets; :mod:`.planner` plans for any dataset and GPU instead).

A template (``plans/*.json``) holds ``patch_size``, ``batch_size``, ``spacing`` (null keeps
nnU-Net's planned spacing), an nnU-Net ``architecture`` block for
:class:`~nnunet_boundary.network.boundary_aware_unet.BoundaryAwareUNet`, and optionally
``baseline_features_per_stage``. :func:`apply_template` turns nnU-Net's plans into
``nnUNetBoundaryPlans`` with two configurations on the same preprocessed data:

* ``3d_fullres`` -- the boundary-aware network;
* ``3d_fullres_baseline`` -- inherits ``3d_fullres`` (same ``data_identifier``, spacing, patch,
  batch) with nnU-Net's default PlainConvUNet fitted to the same strides, so the baseline
  ``nnUNetTrainer`` sees exactly the boundary trainer's data.
"""
import json
from copy import deepcopy
from importlib.resources import files
from pathlib import Path
from typing import List, Sequence

import numpy as np

from nnunet_boundary.errors import NnUNetBoundaryError

PLANS_NAME = 'nnUNetBoundaryPlans'
BASELINE_CONFIGURATION = '3d_fullres_baseline'
_REQUIRED = ('patch_size', 'batch_size', 'architecture')
_PER_STAGE = ('features_per_stage', 'kernel_sizes', 'strides', 'n_blocks_per_stage')


def available_templates() -> List[str]:
    return sorted(p.name[:-len('.json')] for p in files('nnunet_boundary').joinpath('plans').iterdir()
                  if p.name.endswith('.json'))


def load_template(name_or_path: str) -> dict:
    """A template by name (``plans/NAME.json`` shipped with the package) or by path; validated."""
    path = Path(name_or_path)
    if not path.is_file():
        if name_or_path not in available_templates():
            raise NnUNetBoundaryError(f"template '{name_or_path}' is neither a file nor one of the shipped "
                                      f"templates {available_templates()}")
        path = files('nnunet_boundary').joinpath('plans', name_or_path + '.json')
    try:
        template = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise NnUNetBoundaryError(f"template {path} is not valid JSON: {e}") from None
    validate_template(template, str(path))
    return template


def validate_template(template: dict, source: str = 'template') -> None:
    """Check a template before any planning or training: every field there, per-stage lists of one
    length, and a patch that the strides divide on every axis (else the decoder's additions
    cannot line up)."""
    missing = [k for k in _REQUIRED if k not in template]
    if missing:
        raise NnUNetBoundaryError(f"{source}: missing {missing}")
    patch = template['patch_size']
    arch = template['architecture']
    kwargs = arch.get('arch_kwargs', {})
    n_stages = kwargs.get('n_stages')
    for key in _PER_STAGE:
        if not isinstance(kwargs.get(key), list) or len(kwargs[key]) != n_stages:
            raise NnUNetBoundaryError(f"{source}: arch_kwargs.{key} must list one entry per stage "
                                      f"(n_stages={n_stages}), got {kwargs.get(key)!r}")
    strides = np.array(kwargs['strides'])
    if strides.shape != (n_stages, len(patch)):
        raise NnUNetBoundaryError(f"{source}: strides must have one value per axis of patch_size {patch}, "
                                  f"got {kwargs['strides']}")
    if np.any(strides[0] != 1):
        raise NnUNetBoundaryError(f"{source}: strides[0] must be all ones (full-resolution stem), "
                                  f"got {kwargs['strides'][0]}")
    divisor = np.prod(strides, axis=0)
    for axis, (p, d) in enumerate(zip(patch, divisor)):
        if p % d:
            raise NnUNetBoundaryError(
                f"{source}: patch_size {p} on axis {axis} is not divisible by the product of the strides on that "
                f"axis ({d} = {' x '.join(str(s) for s in strides[:, axis])}). Use a multiple of {d} (e.g. "
                f"{int(np.ceil(p / d) * d)}) or fewer stride-2 levels.")
    spacing = template.get('spacing')
    if spacing is not None and (len(spacing) != len(patch) or min(spacing) <= 0):
        raise NnUNetBoundaryError(f"{source}: spacing must be null or {len(patch)} positive values, got {spacing}")
    baseline = template.get('baseline_features_per_stage')
    if baseline is not None and len(baseline) != n_stages:
        raise NnUNetBoundaryError(f"{source}: baseline_features_per_stage needs {n_stages} entries, got {baseline}")


def baseline_architecture(nnunet_architecture: dict, template: dict) -> dict:
    """nnU-Net's default PlainConvUNet (its own norm, nonlin, convs per stage and widths 32 * 2^i
    capped at 320, or the template's ``baseline_features_per_stage``) with the template's
    kernel sizes and strides, so it fits the same patch."""
    kwargs = template['architecture']['arch_kwargs']
    n_stages = kwargs['n_stages']
    arch = deepcopy(nnunet_architecture)
    nn_kwargs = arch['arch_kwargs']
    base, cap = nn_kwargs['features_per_stage'][0], max(nn_kwargs['features_per_stage'])
    nn_kwargs.update(
        n_stages=n_stages,
        features_per_stage=template.get('baseline_features_per_stage') or
        [min(base * 2 ** i, cap) for i in range(n_stages)],
        kernel_sizes=deepcopy(kwargs['kernel_sizes']),
        strides=deepcopy(kwargs['strides']),
        n_conv_per_stage=[nn_kwargs['n_conv_per_stage'][0]] * n_stages,
        n_conv_per_stage_decoder=[nn_kwargs['n_conv_per_stage_decoder'][0]] * (n_stages - 1))
    return arch


def patch_exceeds_image(patch_size: Sequence[int], median_shape: Sequence[float]) -> List[str]:
    """Human-readable notes for axes where the patch is larger than the median image, saying what happens."""
    return [f"axis {a}: patch {p} > median image size {m:.0f} voxels. nnU-Net pads every case smaller than the patch "
            f"on this axis (with zeros after normalisation; padded voxels count as background) for training crops and "
            f"for the sliding window, so training and prediction run but spend compute on padding. To avoid it, use a "
            f"patch of at most {int(m)} on axis {a} that the strides divide."
            for a, (p, m) in enumerate(zip(patch_size, median_shape)) if p > m]


def apply_template(nnunet_plans: dict, template: dict, configuration: str = '3d_fullres',
                   plans_name: str = PLANS_NAME) -> dict:
    """Plans ``plans_name`` from nnU-Net's plans (see the module docstring)."""
    if configuration not in nnunet_plans['configurations']:
        raise NnUNetBoundaryError(f"nnU-Net planned no '{configuration}' configuration for this dataset "
                                  f"(it has {list(nnunet_plans['configurations'])})")
    plans = deepcopy(nnunet_plans)
    base = plans['configurations'][configuration]
    config = deepcopy(base)
    if template.get('spacing') is not None:
        spacing = [float(s) for s in template['spacing']]
        config['median_image_size_in_voxels'] = [
            round(m * s / t) for m, s, t in zip(base['median_image_size_in_voxels'], base['spacing'], spacing)]
        config['spacing'] = spacing
    config.update(data_identifier=f'{plans_name}_{configuration}',
                  patch_size=list(template['patch_size']),
                  batch_size=int(template['batch_size']),
                  architecture=deepcopy(template['architecture']))
    plans['plans_name'] = plans_name
    plans['configurations'] = {
        configuration: config,
        BASELINE_CONFIGURATION: {'inherits_from': configuration,
                                 'architecture': baseline_architecture(base['architecture'], template)},
    }
    return plans
