import math

import pytest
import torch
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper

from helpers import tiny_network
from nnunet_boundary.losses.boundary_aware_loss import BoundaryAwareLoss
from nnunet_boundary.losses.boundary_loss import BetaBalancedBCEWithLogitsLoss, BoundaryLoss
from nnunet_boundary.losses.edges import edges_per_scale, region_edges


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


def _edge_logit_gradient(loss, edges: torch.Tensor) -> float:
    """Summed |gradient| on the edge logits of one crop, at an untrained network's output (logits 0)."""
    logits = torch.zeros_like(edges, requires_grad=True)
    loss(logits, edges).backward()
    return logits.grad.abs().sum().item()


def _tumor_crop_edges(with_tumor: bool) -> torch.Tensor:
    """Edges of a 32^3 crop's regions (kidney+tumor, tumor), batch 1, with or without a small tumor."""
    regions = torch.zeros(1, 2, 32, 32, 32)
    regions[:, 0, 4:28, 6:26, 8:24] = 1
    if with_tumor:
        regions[:, 1, 10:16, 10:16, 10:16] = 1
    return region_edges(regions)[:, 1:]  # the tumor channel


def test_crop_without_edges_teaches_no_edge_with_a_gradient_of_the_same_order():
    """Eq. 2 alone gives an edge-free crop (beta = 1) no gradient; min_edge_fraction restores it."""
    with_edges, edge_free = _tumor_crop_edges(True), _tumor_crop_edges(False)
    assert edge_free.sum() == 0 and with_edges.sum() > 0
    paper = BoundaryLoss(batch_dice=False, ddp=False)
    assert _edge_logit_gradient(paper, edge_free) < 1e-4 * _edge_logit_gradient(paper, with_edges)
    fixed = BoundaryLoss(batch_dice=False, ddp=False, min_edge_fraction=0.01)
    ratio = _edge_logit_gradient(fixed, edge_free) / _edge_logit_gradient(fixed, with_edges)
    assert 0.1 < ratio < 10


def test_min_edge_fraction_leaves_crops_with_more_edges_unchanged():
    logits = torch.randn(1, 1, 8, 8, 8)
    edges = (torch.rand(1, 1, 8, 8, 8) > 0.7).float()  # ~30 % edges
    assert BetaBalancedBCEWithLogitsLoss(0.01)(logits, edges).item() == pytest.approx(
        BetaBalancedBCEWithLogitsLoss()(logits, edges).item(), rel=1e-6)


def _nnunet_downsampled(regions: torch.Tensor, factor: int) -> torch.Tensor:
    """nnU-Net's deep-supervision targets: nearest-neighbour downsampling of the region masks."""
    return torch.nn.functional.interpolate(regions, scale_factor=1 / factor, mode='nearest-exact')


def test_pooled_edges_at_every_scale_agree_with_the_full_resolution_edges():
    regions = torch.zeros(1, 2, 32, 32, 32)
    grid = torch.stack(torch.meshgrid(*[torch.arange(32.)] * 3, indexing='ij'))
    regions[:, 0] = ((grid - 16).square().sum(0) < 11 ** 2).float()
    regions[:, 1] = ((grid - torch.tensor([16., 20., 16.]).view(3, 1, 1, 1)).square().sum(0) < 3.5 ** 2).float()
    targets = [_nnunet_downsampled(regions, f) for f in (1, 2, 4, 8)]
    full = region_edges(regions)
    pooled = edges_per_scale(targets, from_full_resolution=True)
    for factor, coarse in zip((1, 2, 4, 8), pooled):
        torch.testing.assert_close(coarse, torch.nn.functional.max_pool3d(full, factor))
    own_scale = edges_per_scale(targets, from_full_resolution=False)
    assert own_scale[3][:, 1].sum() == 0 < pooled[3][:, 1].sum()  # at 1/8 the small tumor's edge vanished
