import pytest
import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from helpers import tiny_network
from nnunet_boundary.network.boundary_aware_unet import BoundaryAwareOutput
from nnunet_boundary.planning.templates import load_template


@pytest.mark.parametrize('n_stages, strides, patch', [
    (2, None, (8, 8, 8)),
    (3, None, (16, 16, 16)),
    (4, [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]], (8, 16, 24)),
])
def test_deep_supervision_output_contract(n_stages, strides, patch):
    net = tiny_network(n_stages, strides=strides)
    out = net(torch.randn(2, 1, *patch))
    assert isinstance(out, BoundaryAwareOutput) and isinstance(out, list)
    assert len(out) == len(out.boundary) == n_stages - 1
    scale = torch.ones(3, dtype=torch.long)
    for s, (region, boundary) in enumerate(zip(out, out.boundary)):
        if s > 0:
            scale *= torch.tensor(net.strides[s])
        expected = (2, 2, *(p // int(f) for p, f in zip(patch, scale)))
        assert region.shape == boundary.shape == expected


def test_inference_mode_returns_one_full_resolution_tensor():
    net = tiny_network(3, deep_supervision=False)
    out = net(torch.randn(1, 1, 16, 16, 16))
    assert isinstance(out, torch.Tensor) and not isinstance(out, list)
    assert out.shape == (1, 2, 16, 16, 16)


def test_two_dimensional_configuration():
    out = tiny_network(3, dim=2)(torch.randn(2, 1, 16, 32))
    assert [o.shape for o in out] == [(2, 2, 16, 32), (2, 2, 8, 16)]


def test_toggle_matches_and_state_dict_loads_strictly_across_modes():
    trained = tiny_network(3, deep_supervision=True)
    inference = tiny_network(3, deep_supervision=False)
    inference.load_state_dict(trained.state_dict(), strict=True)
    x = torch.randn(1, 1, 16, 16, 16)
    trained.eval(), inference.eval()
    with torch.no_grad():
        full_resolution = trained(x)[0]
        trained.decoder.deep_supervision = False
        torch.testing.assert_close(trained(x), full_resolution)
        torch.testing.assert_close(inference(x), full_resolution)


def test_gradients_reach_the_boundary_stream_from_both_heads():
    net = tiny_network(3)
    x = torch.randn(2, 1, 16, 16, 16)
    stream_params = list(net.boundary_stream.parameters())
    for pick in (lambda o: o[0], lambda o: o.boundary[0]):
        net.zero_grad()
        pick(net(x)).square().mean().backward()
        grads = [p.grad for p in stream_params]
        assert all(g is not None for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0
    # the attention gates take the encoder's features: gradients flow back into the encoder too
    assert net.encoder.stem.weight.grad.abs().sum() > 0


def test_rejects_strided_stem_and_mismatched_lengths():
    with pytest.raises(ValueError, match='strides\\[0\\]'):
        tiny_network(3, strides=[[2, 2, 2], [2, 2, 2], [2, 2, 2]])
    with pytest.raises(ValueError, match='features_per_stage'):
        tiny_network(3, features=[4, 8])


def test_paper_template_builds_through_nnunet_and_fits_176():
    arch = load_template('kits19_176')['architecture']
    net = get_network_from_plans(arch['network_class_name'], arch['arch_kwargs'], arch['_kw_requires_import'],
                                 1, 2, deep_supervision=True)
    assert net.encoder.stem.out_channels == 16
    assert len(net.encoder.stages[-1].blocks) == 4
    assert [s.blocks[0].conv1.conv.out_channels for s in net.encoder.stages] == [16, 32, 64, 128, 256]
    # 176 = 16 * 11: four stride-2 levels leave 11^3 at the bottom; check on the meta device (no memory)
    with torch.device('meta'):
        meta = get_network_from_plans(arch['network_class_name'], arch['arch_kwargs'], arch['_kw_requires_import'],
                                      1, 2, allow_init=False, deep_supervision=True)
        out = meta(torch.empty(1, 1, 176, 176, 176))
    assert [tuple(o.shape[2:]) for o in out] == [(176,) * 3, (88,) * 3, (44,) * 3, (22,) * 3]


def _conv_weights(net):
    return [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv3d)]


def test_cpu_weights_are_channels_last_and_give_the_same_values():
    net = tiny_network(3)
    assert all(w.is_contiguous(memory_format=torch.channels_last_3d) for w in _conv_weights(net))
    reference = tiny_network(3)
    reference.load_state_dict(net.state_dict(), strict=True)
    for w in _conv_weights(reference):  # the same weights in PyTorch's default layout
        w.data = w.data.contiguous()
    x = torch.randn(2, 1, 16, 16, 16)
    out, expected = net(x), reference(x)
    for a, b in zip(list(out) + out.boundary, list(expected) + expected.boundary):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    target = torch.randn_like(out[0])
    (out[0] - target).square().mean().backward(), (expected[0] - target).square().mean().backward()
    for a, b in zip(_conv_weights(net), _conv_weights(reference)):
        if b.grad is not None:  # the boundary heads get none from this loss
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-3, atol=1e-3 * b.grad.abs().max().item())


def test_every_move_sets_the_layout_of_the_target_device():
    net = tiny_network(3)
    for w in _conv_weights(net):
        w.data = w.data.contiguous()
    net.to(torch.device('cpu'))
    assert all(w.is_contiguous(memory_format=torch.channels_last_3d) for w in _conv_weights(net))
    net.to(torch.device('meta'))  # any device but the CPU
    assert all(w.device.type == 'meta' and w.is_contiguous() for w in _conv_weights(net))
