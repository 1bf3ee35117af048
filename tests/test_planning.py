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
from nnunet_boundary.regions import nested_regions


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


def test_apply_template_names_plans_and_data_after_the_plans_name():
    plans = apply_template(nnunet_like_plans(), load_template('cpu_smoke'), plans_name='MyPlans')
    assert plans['plans_name'] == 'MyPlans'
    assert PlansManager(plans).get_configuration(BASELINE_CONFIGURATION).data_identifier == 'MyPlans_3d_fullres'


def test_both_networks_of_the_cpu_template_run_on_its_patch():
    plans = apply_template(nnunet_like_plans(), load_template('cpu_smoke'))
    manager = PlansManager(plans)
    for name in ('3d_fullres', BASELINE_CONFIGURATION):
        c = manager.get_configuration(name)
        net = get_network_from_plans(c.network_arch_class_name, c.network_arch_init_kwargs,
                                     c.network_arch_init_kwargs_req_import, 1, 2, deep_supervision=False)
        assert net(torch.zeros(1, 1, *c.patch_size)).shape == (1, 2, *c.patch_size)


@pytest.mark.parametrize('dataset_json, message', [
    ({'labels': {'background': 0, 'kidney': 1, 'tumor': 2}}, 'must be a list of labels'),
    ({'labels': {'background': 0}}, 'no foreground region'),
    ({'labels': {'background': 0, 'kidney': [1, 2], 'tumor': 2}}, 'regions_class_order'),
    ({'labels': {'background': 0, 'kidney': [1, 2], 'tumor': 2}, 'regions_class_order': [1]}, '2 entries'),
    ({'labels': {'background': 0, 'kidney': [1, 2], 'tumor': 3}, 'regions_class_order': [1, 2]}, 'strictly inside'),
    ({'labels': {'background': 0, 'kidney_and_mass': [1, 2, 3], 'mass': [2, 3], 'cyst': 3, 'tumor': 2},
      'regions_class_order': [1, 2, 3, 2]}, "'tumor' 2 must lie strictly inside"),
    ({'labels': {'background': 0, 'a': [1, 2, 3], 'b': 3}, 'regions_class_order': [1, 3]}, 'several labels'),
])
def test_dataset_json_without_nested_regions_is_rejected(dataset_json, message):
    with pytest.raises(NnUNetBoundaryError, match=message):
        nested_regions(dataset_json)


@pytest.mark.parametrize('labels, order, regions', [
    ({'kidney': [1, 2], 'tumor': 2}, [1, 2], ((1, 2), 2)),
    ({'kidney_and_mass': [1, 2, 3], 'mass': [2, 3], 'tumor': 2}, [1, 3, 2], ((1, 2, 3), (2, 3), 2)),
    ({'whole_tumor': [1, 2, 3], 'tumor_core': [2, 3], 'enhancing_tumor': [3]}, [1, 2, 3], ((1, 2, 3), (2, 3), (3,))),
    ({'kidney': [1]}, [1], ((1,),)),
])
def test_nested_regions_are_returned_outermost_first_as_nnunet_keys_them(labels, order, regions):
    assert nested_regions({'labels': {'background': 0, **labels}, 'regions_class_order': order}) == regions


def test_kits23_order_against_the_nesting_is_refused_naming_the_right_one():
    """[1, 2, 3] would write cyst (3) where nnU-Net predicts tumor and tumor where it predicts a cyst."""
    kits23 = {'background': 0, 'kidney_and_mass': [1, 2, 3], 'mass': [2, 3], 'tumor': 2}
    with pytest.raises(NnUNetBoundaryError, match=r'Use "regions_class_order": \[1, 3, 2\]'):
        nested_regions({'labels': kits23, 'regions_class_order': [1, 2, 3]})


@pytest.mark.parametrize('planning', [['--template', 'cpu_smoke'], []], ids=['template', 'planner'])
def test_cli_reports_a_missing_environment_variable_cleanly(monkeypatch, capsys, planning):
    monkeypatch.delenv('nnUNet_raw', raising=False)
    with pytest.raises(SystemExit) as exit_info:
        plan_main(['-d', '1', *planning])
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
