"""Three nested regions (KiTS23: kidney_and_mass ⊃ mass ⊃ tumor) through the trainer, nnU-Net's CLI and the
prediction: one region head and one boundary head per region, labels 0-3 back in the label map."""
import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunet_boundary.data.synthetic import write_synthetic_dataset
from nnunet_boundary.losses.boundary_aware_loss import BoundaryAwareLoss
from nnunet_boundary.regions import KITS23_DATASET_JSON
from nnunet_boundary.training.variants import BoundaryTrainer_smoke
from test_trainers import plans  # noqa: F401 -- the fixture
from tiny_nnunet import nnunet_env, run, train_and_predict

KITS23 = dict(KITS23_DATASET_JSON, numTraining=4)


def test_trainer_builds_three_region_and_three_boundary_heads_and_a_loss_over_all(plans):  # noqa: F811
    trainer = BoundaryTrainer_smoke(dict(plans, continue_training=False), '3d_fullres', 0, KITS23,
                                    device=torch.device('cpu'))
    assert trainer.regions == ((1, 2, 3), (2, 3), 2)
    assert trainer.label_manager.num_segmentation_heads == 3
    network = trainer.build_network_architecture(trainer.plans_manager, trainer.configuration_manager, 1, 3, True)
    output = network(torch.randn(1, 1, *trainer.configuration_manager.patch_size))
    assert [o.shape[1] for o in output] == [3] * len(output)
    assert [b.shape[1] for b in output.boundary] == [3] * len(output)
    trainer.network = network
    loss = trainer._build_loss()
    assert isinstance(loss, BoundaryAwareLoss)
    targets = [(torch.rand(1, 3, *o.shape[2:]) > 0.5).float() for o in output]
    targets = [torch.cumprod(t, dim=1) for t in targets]  # nested: each channel inside the previous
    value = loss(output, targets)
    value.backward()
    assert torch.isfinite(value)
    assert network.boundary_heads[0].weight.grad[2].abs().sum() > 0  # the innermost region's boundary head learns


@pytest.fixture(scope='module')
def kits23_like(tmp_path_factory):
    root = tmp_path_factory.mktemp('kits23')
    env = nnunet_env(root)
    write_synthetic_dataset(root / 'raw' / 'Dataset923_TinyCysts', num_train=6, num_test=2, shape=(32, 48, 48),
                            spacing_zyx=(2.5, 2.5, 2.5), cysts=True)
    run(['nnunet_boundary_plan_and_preprocess', '-d', 923, '--template', 'cpu_smoke', '-np', 1], env)
    return root, env


def test_three_nested_regions_train_and_predict_through_the_nnunet_cli(kits23_like):
    root, env = kits23_like
    out = train_and_predict(env, 923, root / 'raw' / 'Dataset923_TinyCysts' / 'imagesTs', root / 'pred')
    for case in ('case_00006', 'case_00007'):
        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(out / f'{case}.nii.gz')))
        gt = sitk.GetArrayFromImage(sitk.ReadImage(str(root / 'raw' / 'Dataset923_TinyCysts' / 'labelsTs' /
                                                       f'{case}.nii.gz')))
        assert set(np.unique(gt)) == {0, 1, 2, 3}
        assert set(np.unique(pred)) <= {0, 1, 2, 3}
        kidney_and_mass = 2 * np.logical_and(pred > 0, gt > 0).sum() / ((pred > 0).sum() + (gt > 0).sum())
        assert kidney_and_mass > 0.3  # 150 iterations learn the outermost region well beyond chance
