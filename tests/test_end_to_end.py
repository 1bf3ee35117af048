"""One fold through nnU-Net's real command-line tools: plan -> preprocess -> train -> predict."""
import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet_boundary.data.synthetic import write_synthetic_dataset
from tiny_nnunet import nnunet_env as tiny_nnunet_env, run, train_and_predict


@pytest.fixture(scope='module')
def nnunet_env(tmp_path_factory):
    root = tmp_path_factory.mktemp('nnunet')
    env = tiny_nnunet_env(root)
    write_synthetic_dataset(root / 'raw' / 'Dataset901_Tiny', num_train=6, num_test=2, shape=(32, 48, 48),
                            spacing_zyx=(2.5, 2.5, 2.5))
    run(['nnunet_boundary_plan_and_preprocess', '-d', 901, '--template', 'cpu_smoke', '-np', 1], env)
    return root, env


def dice(a, b):
    return 2 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)


def test_train_and_predict_one_fold_through_the_nnunet_cli(nnunet_env):
    root, env = nnunet_env
    out = train_and_predict(env, 901, root / 'raw' / 'Dataset901_Tiny' / 'imagesTs', root / 'pred')
    fold = root / 'res' / 'Dataset901_Tiny' / 'BoundaryTrainer_smoke__nnUNetBoundaryPlans__3d_fullres' / 'fold_0'
    assert (fold / 'checkpoint_final.pth').exists()
    assert (fold / 'validation' / 'summary.json').exists()
    for case in ('case_00006', 'case_00007'):
        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(out / f'{case}.nii.gz')))
        gt = sitk.GetArrayFromImage(sitk.ReadImage(str(root / 'raw' / 'Dataset901_Tiny' / 'labelsTs' /
                                                       f'{case}.nii.gz')))
        assert pred.shape == gt.shape
        assert set(np.unique(pred)) <= {0, 1, 2}
        # 150 iterations learn the kidneys well beyond chance (a random mask would score ~0.05)
        assert dice(pred > 0, gt > 0) > 0.3


def test_boundary_stream_on_nnunets_network_trains_and_predicts_through_the_nnunet_cli(nnunet_env):
    root, env = nnunet_env
    trainer = 'BoundaryTrainer_nnUNetNetwork_smoke'
    out = train_and_predict(env, 901, root / 'raw' / 'Dataset901_Tiny' / 'imagesTs', root / 'pred_nnunet_network',
                            trainer, '3d_fullres_baseline')
    checkpoint = torch.load(root / 'res' / 'Dataset901_Tiny' / f'{trainer}__nnUNetBoundaryPlans__3d_fullres_baseline' /
                            'fold_0' / 'checkpoint_final.pth', map_location='cpu', weights_only=False)
    assert any(k.startswith('boundary_stream.') for k in checkpoint['network_weights'])
    for case in ('case_00006', 'case_00007'):
        assert set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(out / f'{case}.nii.gz'))))) <= {0, 1, 2}


def test_baseline_trains_on_the_same_preprocessed_data(nnunet_env):
    root, env = nnunet_env
    run(['nnUNetv2_train', 901, '3d_fullres_baseline', 0, '-tr', 'BaselineTrainer_smoke', '-p',
         'nnUNetBoundaryPlans', '-device', 'cpu', '--disable_checkpointing'], env)
    preprocessed = root / 'pre' / 'Dataset901_Tiny'
    assert sorted(p.name for p in preprocessed.iterdir() if p.is_dir()) == ['gt_segmentations',
                                                                             'nnUNetBoundaryPlans_3d_fullres']


def test_boundary_trainer_on_plain_nnunet_plans_fails_with_a_clear_message(nnunet_env):
    root, env = nnunet_env
    result = run(['nnUNetv2_train', 901, '3d_fullres_baseline', 0, '-tr', 'BoundaryTrainer_smoke', '-p',
                  'nnUNetBoundaryPlans', '-device', 'cpu'], env, check=False)
    assert result.returncode != 0
    assert 'BoundaryTrainer needs plans whose network is' in result.stderr
