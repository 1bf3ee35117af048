"""Fingerprint, plan and preprocess a dataset for the boundary-aware network with nnU-Net's own
machinery: plans by :class:`~.planner.BoundaryPlanner`, or a plans template laid over nnU-Net's
default plans (see :mod:`.templates`), with the planner's choice printed for comparison."""
import os
from pathlib import Path
from typing import Optional

from nnunet_boundary.checks.dataset_integrity import check_raw_dataset, load_dataset_json, training_cases
from nnunet_boundary.checks.stale_preprocessing import require_current_splits, stale_fingerprint
from nnunet_boundary.atomic_files import write_json_atomically
from nnunet_boundary.environment import dataset_name, require_nnunet_paths
from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.planning.templates import PLANS_NAME, apply_template, patch_exceeds_image
from nnunet_boundary.regions import nested_regions

CROSS_VALIDATION_FOLDS = 5  # nnU-Net's default split


def check_before_planning(raw_dir: Path, dataset_json: dict, preprocessed_dir: Path, num_processes: int,
                          clean_fingerprint: bool) -> bool:
    """Refuse (one-line errors) what would make nnU-Net's planning fail or silently wrong: regions, the raw
    files, stale splits; warn about fewer cases than folds. Returns whether the fingerprint is stale or
    half-written and must be recomputed. (A half-written plans file needs nothing: the planner writes its
    plans whole, without reading an earlier file.)"""
    nested_regions(dataset_json, str(raw_dir / 'dataset.json'))
    for note in check_raw_dataset(raw_dir, num_processes):
        print(f"NOTE: {note}")
    cases = training_cases(raw_dir, dataset_json)
    if len(cases) < CROSS_VALIDATION_FOLDS:
        print(f"WARNING: {len(cases)} training case(s): nnU-Net's {CROSS_VALIDATION_FOLDS}-fold cross-validation needs "
              f"at least {CROSS_VALIDATION_FOLDS}, so training folds 0-4 would fail; train fold 'all' "
              f"(nnUNetv2_train ID 3d_fullres all ...) or add cases")
    require_current_splits(preprocessed_dir, cases)
    stale = None if clean_fingerprint else stale_fingerprint(preprocessed_dir, len(cases))
    if stale:
        print(f"NOTE: {stale}")
    return bool(stale)


def plan_and_preprocess(dataset_id: int, template: Optional[dict] = None, configuration: str = '3d_fullres',
                        num_processes: int = 2, verify_dataset_integrity: bool = False,
                        clean_fingerprint: bool = False, preprocess: bool = True, gpu_memory_target: float = 8,
                        plans_name: str = PLANS_NAME) -> Path:
    """Plans with :class:`BoundaryPlanner` for ``gpu_memory_target`` GiB, or with ``template`` (then the
    planner's choice is printed for comparison); returns the path of the written plans."""
    if template is None and configuration != '3d_fullres':
        raise NnUNetBoundaryError(f"the planner plans 3d_fullres only; configuration '{configuration}' needs a "
                                  f"template (--template)")
    require_nnunet_paths('nnUNet_raw', 'nnUNet_preprocessed')
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (extract_fingerprint_dataset,
                                                                      plan_experiment_dataset, preprocess_dataset)
    from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw

    from nnunet_boundary.planning.planner import BoundaryPlanner, describe_configuration

    name = dataset_name(dataset_id)
    raw_dir = Path(nnUNet_raw.get()) / name
    dataset_json = load_dataset_json(raw_dir)
    stale = check_before_planning(raw_dir, dataset_json, Path(nnUNet_preprocessed.get()) / name, num_processes,
                                  clean_fingerprint)
    extract_fingerprint_dataset(dataset_id, num_processes=num_processes,
                                check_dataset_integrity=verify_dataset_integrity, clean=clean_fingerprint or stale)
    if os.environ.get('nnUNet_n_proc_DA') == '0':
        # nnU-Net's planner calls torch.set_num_threads(nnUNet_n_proc_DA), which rejects 0
        os.environ['nnUNet_n_proc_DA'] = '1'
    planned, _ = plan_experiment_dataset(dataset_id, BoundaryPlanner, gpu_memory_target,
                                         overwrite_plans_name=plans_name)
    planner_choice = describe_configuration(planned['configurations']['3d_fullres'], dataset_json, gpu_memory_target)
    if template is None:
        plans = planned
        print(f"BoundaryPlanner for {gpu_memory_target:g} GiB: {planner_choice}")
    else:
        nnunet_plans, _ = plan_experiment_dataset(dataset_id, overwrite_plans_name=plans_name)
        plans = apply_template(nnunet_plans, template, configuration, plans_name)
        template_choice = describe_configuration(plans['configurations'][configuration], dataset_json,
                                                 gpu_memory_target)
        print(f"Template: {template_choice}\n"
              f"BoundaryPlanner for {gpu_memory_target:g} GiB would choose (not used): {planner_choice}")
    config = plans['configurations'][configuration]
    for note in patch_exceeds_image(config['patch_size'], config['median_image_size_in_voxels']):
        print(f"WARNING: {note}")
    plans_file = Path(nnUNet_preprocessed.get()) / name / f'{plans_name}.json'
    write_json_atomically(plans, plans_file, indent=4)
    print(f"Wrote {plans_file} (configurations: {', '.join(plans['configurations'])})")
    if preprocess:
        preprocess_dataset(dataset_id, plans_name, (configuration,), (num_processes,))
    return plans_file
