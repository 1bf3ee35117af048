import math

import pytest
import torch
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper

from helpers import tiny_network
from nnunet_boundary.losses.boundary_aware_loss import BoundaryAwareLoss
from nnunet_boundary.losses.boundary_loss import BetaBalancedBCEWithLogitsLoss, BoundaryLoss
from nnunet_boundary.losses.edges import region_edges


def test_edges_of_a_cube_are_the_two_voxel_band_around_its_surface():
    mask = torch.zeros(1, 1, 12, 12, 12)
    mask[..., 3:9, 3:9, 3:9] = 1
    edges = region_edges(mask)[0, 0]
    expected = torch.zeros(12, 12, 12)
    expected[2:10, 2:10, 2:10] = 1   # dilation
    expected[4:8, 4:8, 4:8] = 0      # minus erosion
    torch.testing.assert_close(edges, expected)


def test_edges_are_per_channel_and_ignore_the_patch_border():
    mask = torch.zeros(2, 2, 6, 6)
    mask[0, 0] = 1                   # region fills the whole patch: no edge anywhere
    mask[1, 1, 2:4, 2:4] = 1
    edges = region_edges(mask)
    assert edges[0].sum() == 0 and edges[1, 0].sum() == 0
    assert edges[1, 1].sum() == 16   # 4x4 dilation, erosion of a 2x2 square is empty


def test_beta_balanced_bce_matches_hand_computation():
    # one sample, one region, 4 voxels, one of them an edge: beta = 3/4
    logits = torch.tensor([2.0, -1.0, 0.5, 0.0]).view(1, 1, 4)
    edges = torch.tensor([1.0, 0.0, 0.0, 0.0]).view(1, 1, 4)
    p = torch.sigmoid(logits).flatten()
    beta = 0.75
    expected = (-beta * math.log(p[0]) - (1 - beta) * (math.log(1 - p[1]) + math.log(1 - p[2])
                                                        + math.log(1 - p[3]))) / 4
    assert BetaBalancedBCEWithLogitsLoss()(logits, edges).item() == pytest.approx(expected, rel=1e-6)


def test_beta_is_per_sample_and_region_and_averaged_over_regions():
    loss = BetaBalancedBCEWithLogitsLoss()
    logits = torch.randn(2, 2, 5, 5)
    edges = (torch.rand(2, 2, 5, 5) > 0.8).float()
    each = [loss(logits[b:b + 1, c:c + 1], edges[b:b + 1, c:c + 1]) for b in range(2) for c in range(2)]
    assert loss(logits, edges).item() == pytest.approx(torch.stack(each).mean().item(), rel=1e-6)


def test_patch_without_edges_gives_zero_bce_and_finite_boundary_loss():
    logits = torch.randn(2, 2, 8, 8, 8, requires_grad=True)
    edges = torch.zeros(2, 2, 8, 8, 8)
    assert BetaBalancedBCEWithLogitsLoss()(logits, edges).item() == 0
    value = BoundaryLoss(batch_dice=False, ddp=False)(logits, edges)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_boundary_loss_is_finite_under_reduced_precision(dtype):
    logits = (torch.randn(2, 2, 8, 8, 8) * 40).to(dtype).requires_grad_()
    edges = region_edges((torch.rand(2, 2, 8, 8, 8) > 0.5).float())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        value = BoundaryLoss(batch_dice=True, ddp=False)(logits, edges)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value) and torch.isfinite(logits.grad.float()).all()


def _boundary_aware_loss(weight=1.0):
    from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
    ds = [1.0, 0.0]
    region = DeepSupervisionWrapper(DC_and_BCE_loss({}, {'batch_dice': False, 'do_bg': True, 'smooth': 1e-5,
                                                         'ddp': False}, dice_class=MemoryEfficientSoftDiceLoss), ds)
    boundary = DeepSupervisionWrapper(BoundaryLoss(batch_dice=False, ddp=False), ds)
    return BoundaryAwareLoss(region, boundary, weight), region, boundary


@pytest.mark.parametrize('target_kind', ['empty', 'no_tumor', 'both'])
def test_total_loss_and_gradients_are_finite_on_empty_patches(target_kind):
    net = tiny_network(3)
    target = torch.zeros(2, 2, 16, 16, 16)
    if target_kind != 'empty':
        target[:, 0, 4:12, 4:12, 4:12] = 1
    if target_kind == 'both':
        target[:, 1, 6:9, 6:9, 6:9] = 1
    targets = [target, target[..., ::2, ::2, ::2]]
    loss, _, _ = _boundary_aware_loss()
    value = loss(net(torch.randn(2, 1, 16, 16, 16)), targets)
    value.backward()
    assert torch.isfinite(value)
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_total_is_region_loss_plus_weighted_boundary_loss_on_derived_edges():
    net = tiny_network(3)
    target = torch.zeros(1, 2, 16, 16, 16)
    target[:, 0, 3:13, 3:13, 3:13] = 1
    target[:, 1, 5:9, 5:9, 5:9] = 1
    targets = [target, target[..., ::2, ::2, ::2]]
    out = net(torch.randn(1, 1, 16, 16, 16))
    loss, region, boundary = _boundary_aware_loss(weight=0.3)
    expected = region(out, targets) + 0.3 * boundary(out.boundary, [region_edges(t) for t in targets])
    assert loss(out, targets).item() == pytest.approx(expected.item(), rel=1e-6)


def test_total_loss_refuses_a_plain_tensor():
    loss, _, _ = _boundary_aware_loss()
    with pytest.raises(TypeError, match='deep supervision'):
        loss(torch.zeros(1, 2, 4, 4, 4), torch.zeros(1, 2, 4, 4, 4))
