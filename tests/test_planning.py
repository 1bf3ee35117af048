import copy
import json

import pytest
import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_boundary.cli.plan_and_preprocess import main as plan_main
from nnunet_boundary.errors import NnUNetBoundaryError
from nnunet_boundary.planning.reference_plans import nnunet_ct_plans
from nnunet_boundary.planning.templates import (BASELINE_CONFIGURATION, apply_template, available_templates,
                                                load_template, validate_template)
from nnunet_boundary.regions import kidney_tumor_regions


def nnunet_like_plans():
    """nnU-Net's plans for an anisotropic CT (3 x 0.8 x 0.8 mm, median 100 x 400 x 400 voxels)."""
    return nnunet_ct_plans(spacing=(3.0, 0.8, 0.8), median_shape=(100, 400, 400), batch_dice=False,
                           dataset_name='Dataset001_X')


def test_shipped_templates_are_valid():
    assert {'kits19_176', 'cpu_smoke'} <= set(available_templates())
    for name in available_templates():
        load_template(name)


@pytest.mark.parametrize('change, message', [
    (lambda t: t.update(patch_size=[176, 176, 170]), 'axis 2 is not divisible .*16'),
    (lambda t: t['architecture']['arch_kwargs']['strides'].__setitem__(0, [2, 2, 2]), 'strides\\[0\\]'),
    (lambda t: t['architecture']['arch_kwargs'].update(n_blocks_per_stage=[1, 4]), 'n_blocks_per_stage'),
    (lambda t: t.pop('batch_size'), 'missing'),
    (lambda t: t.update(spacing=[1.0, 1.0]), 'spacing'),
])
def test_inconsistent_templates_are_rejected_with_the_reason(change, message):
    template = copy.deepcopy(load_template('kits19_176'))
    change(template)
    with pytest.raises(NnUNetBoundaryError, match=message):
        validate_template(template)


def test_176_with_five_stride_two_levels_is_rejected():
    template = copy.deepcopy(load_template('kits19_176'))
    kwargs = template['architecture']['arch_kwargs']
    kwargs.update(n_stages=6, strides=kwargs['strides'] + [[2, 2, 2]], kernel_sizes=kwargs['kernel_sizes'] * 2)
    kwargs['kernel_sizes'] = kwargs['kernel_sizes'][:6]
    kwargs.update(features_per_stage=[16, 32, 64, 128, 256, 512], n_blocks_per_stage=[1, 1, 1, 1, 1, 4])
    with pytest.raises(NnUNetBoundaryError, match='divisible by the product of the strides on that axis \\(32'):
        validate_template(template)


def test_apply_template_builds_boundary_and_baseline_on_the_same_data():
    template = load_template('kits19_176')
    plans = apply_template(nnunet_like_plans(), template)
    manager = PlansManager(plans)
    assert manager.plans_name == 'nnUNetBoundaryPlans'
    boundary, baseline = manager.get_configuration('3d_fullres'), manager.get_configuration(BASELINE_CONFIGURATION)
    assert boundary.network_arch_class_name.endswith('BoundaryAwareUNet')
    assert baseline.network_arch_class_name.endswith('PlainConvUNet')
    for attribute in ('data_identifier', 'patch_size', 'spacing', 'batch_size', 'normalization_schemes'):
        assert getattr(boundary, attribute) == getattr(baseline, attribute)
    assert boundary.patch_size == [176, 176, 176] and boundary.spacing == [1.0, 1.0, 1.0]
    assert boundary.median_image_size_in_voxels == [300, 320, 320]
    assert baseline.pool_op_kernel_sizes == boundary.pool_op_kernel_sizes
    assert baseline.network_arch_init_kwargs['features_per_stage'] == [32, 64, 128, 256, 320]
    # the baseline's deep supervision scales equal the boundary network's, so targets match
    json.dumps(plans)  # serialisable as written to disk


def test_both_networks_of_the_cpu_template_run_on_its_patch():
    plans = apply_template(nnunet_like_plans(), load_template('cpu_smoke'))
    manager = PlansManager(plans)
    for name in ('3d_fullres', BASELINE_CONFIGURATION):
        c = manager.get_configuration(name)
        net = get_network_from_plans(c.network_arch_class_name, c.network_arch_init_kwargs,
                                     c.network_arch_init_kwargs_req_import, 1, 2, deep_supervision=False)
        assert net(torch.zeros(1, 1, *c.patch_size)).shape == (1, 2, *c.patch_size)


@pytest.mark.parametrize('dataset_json, message', [
    ({'labels': {'background': 0, 'kidney': 1, 'tumor': 2}}, 'combine several labels'),
    ({'labels': {'background': 0, 'kidney': [1, 2], 'tumor': 2}}, 'regions_class_order'),
    ({'labels': {'background': 0, 'kidney': [1, 2]}, 'regions_class_order': [1]}, 'exactly two regions'),
    ({'labels': {'background': 0, 'kidney': [1, 2], 'tumor': 3}, 'regions_class_order': [1, 2]}, 'inside'),
])
def test_dataset_json_without_the_two_nested_regions_is_rejected(dataset_json, message):
    with pytest.raises(NnUNetBoundaryError, match=message):
        kidney_tumor_regions(dataset_json)


def test_kits_regions_are_returned_as_nnunet_keys_them():
    assert kidney_tumor_regions({'labels': {'background': 0, 'kidney': [1, 2], 'tumor': 2},
                                 'regions_class_order': [1, 2]}) == ((1, 2), 2)


def test_cli_reports_a_missing_environment_variable_cleanly(monkeypatch, capsys):
    monkeypatch.delenv('nnUNet_raw', raising=False)
    with pytest.raises(SystemExit) as exit_info:
        plan_main(['-d', '1', '--template', 'cpu_smoke'])
    assert exit_info.value.code == 2
    assert 'export nnUNet_raw=' in capsys.readouterr().err


def test_cli_reports_a_bad_template_cleanly(tmp_path, capsys):
    bad = load_template('cpu_smoke')
    bad['patch_size'] = [30, 32, 32]
    path = tmp_path / 'bad.json'
    path.write_text(json.dumps(bad))
    with pytest.raises(SystemExit):
        plan_main(['-d', '1', '--template', str(path)])
    assert 'patch_size 30 on axis 0 is not divisible' in capsys.readouterr().err
