import copy
import hashlib

import pytest
import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from helpers import tiny_network
from nnunet_boundary.network.attention_gate import AttentionGate
from nnunet_boundary.network.boundary_aware_unet import (AdditiveDecoder, BoundaryAwareOutput, BoundaryAwareUNet,
                                                         BoundaryStream, SegResEncoder)
from nnunet_boundary.network.onednn_convolution import OneDNNConv3d, traceable_mkldnn_convolution
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


def _meta_network(arch: dict) -> torch.nn.Module:
    """The plans' network through nnU-Net, on the meta device (no memory)."""
    with torch.device('meta'):
        return get_network_from_plans(arch['network_class_name'], arch['arch_kwargs'], arch['_kw_requires_import'],
                                      1, 2, allow_init=False, deep_supervision=True)


def _parameters(network: torch.nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


def test_paper_template_builds_through_nnunet_and_fits_176():
    arch = load_template('kits19_176')['architecture']
    net = _meta_network(arch)
    assert net.encoder.output_channels == [16, 32, 64, 128, 256]
    # four residual blocks at the bottom: three more than one, each two 3^3 convolutions (with bias) and two
    # affine norms at width 256
    one_block = copy.deepcopy(arch)
    one_block['arch_kwargs']['n_blocks_per_stage'][-1] = 1
    block = 2 * (256 * 256 * 27 + 256) + 2 * 2 * 256
    assert _parameters(net) - _parameters(_meta_network(one_block)) == 3 * block
    # 176 = 16 * 11: four stride-2 levels leave 11^3 at the bottom
    out = net(torch.empty(1, 1, 176, 176, 176, device='meta'))
    assert [tuple(o.shape[2:]) for o in out] == [(176,) * 3, (88,) * 3, (44,) * 3, (22,) * 3]


def _slow_kernel_calls(network, x) -> dict:
    """Calls of PyTorch's slow native 3D convolution and of oneDNN's in one forward pass."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        network(x)
    names = [event.name for event in profile.events()]
    return {'slow_conv3d': sum('slow_conv3d' in n for n in names),
            'mkldnn_convolution': sum(n == 'aten::mkldnn_convolution' for n in names)}


def test_batch_one_narrow_small_window_runs_onednn_not_slow_conv3d():
    """nnU-Net's sliding window runs batch 1; PyTorch's heuristic would take slow_conv3d here."""
    net = tiny_network(3).eval()
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.inference_mode():
        calls = _slow_kernel_calls(net, x)
        with torch.backends.mkldnn.flags(enabled=False):  # the same network through PyTorch's own choice
            fallback = _slow_kernel_calls(net, x)
    assert calls['slow_conv3d'] == 0
    assert calls['mkldnn_convolution'] == sum(isinstance(m, torch.nn.Conv3d) for m in net.modules())
    assert fallback['slow_conv3d'] > 0  # the test would notice if the fast path were lost


@pytest.mark.parametrize('batch, channels, kernel, stride, patch', [
    (1, 4, 3, 1, (10, 12, 14)), (2, 4, 3, 2, (9, 8, 8)), (1, 6, 1, 1, (5, 6, 7)),
    (1, 3, (1, 3, 3), (1, 2, 2), (4, 8, 8)),
])
def test_onednn_convolution_equals_nn_conv3d_in_values_and_gradients(batch, channels, kernel, stride, patch):
    torch.manual_seed(0)
    reference = torch.nn.Conv3d(channels, 5, kernel, stride, padding=0 if kernel == 1 else (0, 1, 1) if
                                isinstance(kernel, tuple) else 1)
    fast = OneDNNConv3d(channels, 5, kernel, stride, padding=reference.padding)
    fast.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(batch, channels, *patch, requires_grad=True)
    x_fast = x.detach().clone().requires_grad_(True)
    with torch.backends.mkldnn.flags(enabled=False):
        expected = reference(x)
    out = fast(x_fast)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    target = torch.randn_like(out)
    (out * target).sum().backward()
    (expected * target).sum().backward()
    torch.testing.assert_close(x_fast.grad, x.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.weight.grad, reference.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.bias.grad, reference.bias.grad, rtol=1e-4, atol=1e-4)
    assert fast.weight.is_contiguous()  # stored in the default layout: device moves and checkpoints as usual


def test_network_gives_the_same_outputs_through_onednn_and_pytorchs_own_kernels():
    net = tiny_network(3)
    x = torch.randn(1, 1, 16, 16, 16)
    out = net(x)
    with torch.backends.mkldnn.flags(enabled=False):
        expected = net(x)
    for a, b in zip(list(out) + out.boundary, list(expected) + expected.boundary):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_traceable_convolution_passes_pytorchs_custom_op_checks():
    """Shape function, autograd and schema of the op torch.compile traces (torch.library.opcheck)."""
    x = torch.randn(1, 3, 6, 7, 8, requires_grad=True)
    weight = torch.randn(4, 3, 3, 3, 3).contiguous(memory_format=torch.channels_last_3d).requires_grad_(True)
    bias = torch.randn(4, requires_grad=True)
    torch.library.opcheck(traceable_mkldnn_convolution, (x, weight, bias, [1, 1, 1], [2, 1, 1], [1, 1, 1], 1))


def test_compiled_network_matches_eager_forward_and_backward():
    """nnUNet_compile: the network traces as one graph on the CPU and computes what eager mode does."""
    net = tiny_network(2)
    x = torch.randn(1, 1, 8, 8, 8)
    compiled = torch.compile(net, fullgraph=True)
    out, expected = compiled(x), net(x)
    for a, b in zip(list(out) + out.boundary, list(expected) + expected.boundary):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    out[0].square().mean().backward()
    gradients = [p.grad.clone() for p in net.parameters() if p.grad is not None]
    net.zero_grad(set_to_none=True)
    expected[0].square().mean().backward()
    for a, b in zip(gradients, [p.grad for p in net.parameters() if p.grad is not None]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


#: sorted ``key:shape`` lists of the state dicts built before issue 14's refactoring (recorded then, with the
#: code of commit 78b5ab1): number of entries and sha256 (16 hex digits) of the lines joined by newlines. Trained
#: checkpoints load into the network only while these stay as they are.
STATE_DICTS_BEFORE_ISSUE_14 = {
    'kits19_176': (271, 'd8e13b4d4741fc9d'),
    'kits19_4mm': (225, '6e20344501dcf78d'),
    'kits19_cpu': (193, '1d7d6187c946df4b'),
    'cpu_smoke': (193, '1d7d6187c946df4b'),
    'anisotropic_three_regions': (147, '27a3ae07239ea993'),
}
#: the entries of 'anisotropic_three_regions' outside d-n-a's residual blocks, for a readable difference
OWN_MODULES_BEFORE_ISSUE_14 = [
    'boundary_heads.0.bias:3', 'boundary_heads.0.weight:3x4x1x1x1', 'boundary_heads.1.bias:3',
    'boundary_heads.1.weight:3x8x1x1x1', 'boundary_stream.gates.0.encoder_conv.bias:4',
    'boundary_stream.gates.0.encoder_conv.weight:4x4x1x3x3', 'boundary_stream.gates.0.stream_conv.bias:4',
    'boundary_stream.gates.0.stream_conv.weight:4x4x1x3x3', 'boundary_stream.gates.0.to_map.bias:1',
    'boundary_stream.gates.0.to_map.weight:1x4x1x1x1', 'boundary_stream.gates.1.encoder_conv.bias:8',
    'boundary_stream.gates.1.encoder_conv.weight:8x8x3x3x3', 'boundary_stream.gates.1.stream_conv.bias:8',
    'boundary_stream.gates.1.stream_conv.weight:8x8x3x3x3', 'boundary_stream.gates.1.to_map.bias:1',
    'boundary_stream.gates.1.to_map.weight:1x8x1x1x1', 'boundary_stream.upsamples.0.project.weight:4x8x1x1x1',
    'decoder.upsamples.0.project.weight:4x8x1x1x1', 'decoder.upsamples.1.project.weight:8x16x1x1x1',
    'encoder.downsamples.0.bias:8', 'encoder.downsamples.0.weight:8x4x3x3x3', 'encoder.downsamples.1.bias:16',
    'encoder.downsamples.1.weight:16x8x3x3x3', 'encoder.stem.bias:4', 'encoder.stem.weight:4x1x1x3x3',
    'region_heads.0.bias:3', 'region_heads.0.weight:3x8x1x1x1', 'region_heads.1.bias:3',
    'region_heads.1.weight:3x16x1x1x1']


def _anisotropic_three_regions(**kwargs) -> BoundaryAwareUNet:
    return BoundaryAwareUNet(1, 3, 3, [4, 8, 16], torch.nn.Conv3d, [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
                             [[1, 1, 1], [1, 2, 2], [2, 2, 2]], [1, 1, 2], norm_op=torch.nn.InstanceNorm3d,
                             norm_op_kwargs={'affine': True}, nonlin=torch.nn.ReLU, nonlin_kwargs={'inplace': True},
                             deep_supervision=True, **kwargs)


def _recorded_network(name: str) -> torch.nn.Module:
    if name == 'anisotropic_three_regions':
        return _anisotropic_three_regions()
    return _meta_network(load_template(name)['architecture'])


def _keys_and_shapes(network: torch.nn.Module) -> list:
    return sorted(f"{k}:{'x'.join(map(str, v.shape))}" for k, v in network.state_dict().items())


@pytest.mark.parametrize('name', list(STATE_DICTS_BEFORE_ISSUE_14))
def test_checkpoints_of_earlier_versions_load_strictly(name):
    """The refactoring (encoder interface, decoders built from the encoder) kept every key and shape."""
    entries = _keys_and_shapes(_recorded_network(name))
    if name == 'anisotropic_three_regions':
        assert [e for e in entries if '.blocks.' not in e] == OWN_MODULES_BEFORE_ISSUE_14
    digest = hashlib.sha256('\n'.join(entries).encode()).hexdigest()[:16]
    assert (len(entries), digest) == STATE_DICTS_BEFORE_ISSUE_14[name]


def test_encoder_has_dnas_interface_and_the_decoders_read_it():
    net = _anisotropic_three_regions()
    encoder = net.encoder
    assert isinstance(encoder, SegResEncoder) and type(encoder).__name__ != 'ResidualEncoder'
    assert encoder.output_channels == [4, 8, 16]
    assert encoder.strides == [[1, 1, 1], [1, 2, 2], [2, 2, 2]]
    assert encoder.kernel_sizes == [[1, 3, 3], [3, 3, 3], [3, 3, 3]]
    assert (encoder.norm_op, encoder.nonlin, encoder.conv_bias) == (torch.nn.InstanceNorm3d, torch.nn.ReLU, True)
    # built from the encoder alone, the decoders have the network's shapes
    decoder, stream = AdditiveDecoder(encoder, deep_supervision=True), BoundaryStream(encoder)
    for built, part in ((decoder, net.decoder), (stream, net.boundary_stream)):
        assert _keys_and_shapes(built) == _keys_and_shapes(part)
    assert stream.gates[0].encoder_conv.kernel_size == (1, 3, 3)
    # the encoder is read, not owned: no second copy of its weights under the decoders
    assert not any(k.startswith('encoder.') for k in list(decoder.state_dict()) + list(stream.state_dict()))


@pytest.mark.parametrize('nonlin, nonlin_kwargs, expected', [
    (torch.nn.ReLU, {'inplace': True}, torch.nn.ReLU),
    (torch.nn.LeakyReLU, {'negative_slope': 0.1}, torch.nn.LeakyReLU),
    (None, None, torch.nn.Identity),
])
def test_attention_gates_take_the_networks_nonlinearity(nonlin, nonlin_kwargs, expected):
    net = BoundaryAwareUNet(1, 2, 3, [4, 8, 16], torch.nn.Conv3d, 3, [[1, 1, 1], [2, 2, 2], [2, 2, 2]], [1, 1, 2],
                            norm_op=torch.nn.InstanceNorm3d, nonlin=nonlin, nonlin_kwargs=nonlin_kwargs)
    gates = [g for g in net.modules() if isinstance(g, AttentionGate)]
    assert len(gates) == 2 and all(type(g.nonlin) is expected for g in gates)
    if nonlin is torch.nn.LeakyReLU:
        assert gates[0].nonlin.negative_slope == 0.1
    assert net(torch.randn(1, 1, 16, 16, 16)).shape == (1, 2, 16, 16, 16)


def _plain_kwargs(kernel_sizes=3) -> dict:
    """A small PlainConvUNet as nnU-Net plans it (conv bias, instance norm, leaky ReLU, two convs per stage)."""
    return dict(input_channels=1, n_stages=3, features_per_stage=[4, 8, 16], conv_op=torch.nn.Conv3d,
                kernel_sizes=kernel_sizes, strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2]], n_conv_per_stage=2,
                num_classes=2, n_conv_per_stage_decoder=2, conv_bias=True, norm_op=torch.nn.InstanceNorm3d,
                norm_op_kwargs={'eps': 1e-5, 'affine': True}, nonlin=torch.nn.LeakyReLU,
                nonlin_kwargs={'inplace': True})


@pytest.mark.parametrize('kernel_sizes', [3, [[3, 3, 3], [3, 3, 3], [1, 3, 3]]])
def test_nnunet_network_with_stream_is_plainconvunet_plus_the_streams_projection(kernel_sizes):
    """Its PlainConvUNet part loads nnU-Net's network strictly and computes it exactly when the stream's
    projection is zero; the stream moves the region logits once the projection is not."""
    from dynamic_network_architectures.architectures.unet import PlainConvUNet
    from nnunet_boundary.network.plain_conv_boundary_unet import PlainConvUNetWithBoundaryStream
    kwargs = _plain_kwargs(kernel_sizes)
    with_stream, plain = PlainConvUNetWithBoundaryStream(**kwargs), PlainConvUNet(**kwargs)
    with_stream.load_state_dict(plain.state_dict(), strict=False)
    extra = set(with_stream.state_dict()) - set(plain.state_dict())
    assert extra and all(k.split('.')[0] in ('boundary_stream', 'stream_region_heads', 'boundary_heads') for k in extra)
    x = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        for head in with_stream.stream_region_heads:
            head.weight.normal_()
        moved = with_stream.eval()(x)
        for head in with_stream.stream_region_heads:
            head.weight.zero_()
        torch.testing.assert_close(with_stream(x), plain.eval()(x))
    assert not torch.allclose(moved, plain(x))


def test_nnunet_network_with_stream_keeps_the_output_contract_across_modes():
    from nnunet_boundary.network.plain_conv_boundary_unet import PlainConvUNetWithBoundaryStream
    trained = PlainConvUNetWithBoundaryStream(**_plain_kwargs(), deep_supervision=True)
    inference = PlainConvUNetWithBoundaryStream(**_plain_kwargs(), deep_supervision=False)
    inference.load_state_dict(trained.state_dict(), strict=True)
    x = torch.randn(2, 1, 16, 16, 16)
    out = trained(x)
    assert isinstance(out, BoundaryAwareOutput) and len(out) == len(out.boundary) == 2
    assert [o.shape for o in out] == [b.shape for b in out.boundary] == [(2, 2, 16, 16, 16), (2, 2, 8, 8, 8)]
    out[0].square().mean().backward()
    assert all(p.grad is not None for p in trained.boundary_stream.parameters())  # the stream feeds the regions
    with torch.no_grad():
        torch.testing.assert_close(inference.eval()(x), trained.eval()(x)[0])
    assert any(isinstance(m, OneDNNConv3d) for m in trained.modules())


def test_nnunet_network_with_edge_heads_computes_plainconvunet_and_trains_its_features_through_the_edges():
    """Its region logits are PlainConvUNet's (same parameters, every scale, training and inference mode); the
    edge logits come at the same scales, and a loss on them reaches the shared encoder but no region head."""
    from dynamic_network_architectures.architectures.unet import PlainConvUNet
    from nnunet_boundary.network.plain_conv_edge_heads import PlainConvUNetWithEdgeHeads
    with_edges = PlainConvUNetWithEdgeHeads(**_plain_kwargs(), deep_supervision=True)
    plain = PlainConvUNet(**_plain_kwargs(), deep_supervision=True)
    plain.load_state_dict({k.replace('.region.', '.'): v for k, v in with_edges.state_dict().items()
                           if '.edge.' not in k}, strict=True)
    x = torch.randn(2, 1, 16, 16, 16)
    out = with_edges(x)
    assert isinstance(out, BoundaryAwareOutput)
    assert [o.shape for o in out] == [b.shape for b in out.boundary] == [(2, 2, 16, 16, 16), (2, 2, 8, 8, 8)]
    with torch.no_grad():
        for regions, reference in zip(out, plain(x)):
            torch.testing.assert_close(regions, reference)
        with_edges.decoder.deep_supervision = plain.decoder.deep_supervision = False
        torch.testing.assert_close(with_edges(x), plain(x))
    out.boundary[0].square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in with_edges.encoder.parameters())
    assert all(head.region.weight.grad is None for head in with_edges.decoder.seg_layers)
    assert any(isinstance(m, OneDNNConv3d) for m in with_edges.modules())
