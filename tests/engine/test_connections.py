import math

import numpy as np
import pytest
import torch
from lucent.modelzoo import inceptionv1
from torch import Tensor, nn
from torchvision.models import alexnet
from torchvision.models.inception import InceptionB, InceptionC
from torchvision.models.resnet import BasicBlock

from rendering.engine import connections as engine_connections
from rendering.engine import connections_measured, conv_map, linearize
from rendering.engine.connections import Connections, expanded_weights, top_connections


class TinyCircuit(nn.Module):
    """conv -> [a] -> 1x1 conv -> (3x3 conv | 1x1 conv) -> concat -> 3x3 conv -> [b]."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.a = nn.ReLU()
        self.reduce = nn.Conv2d(4, 3, 1)
        self.reduce_relu = nn.ReLU(inplace=True)
        self.wide = nn.Conv2d(3, 2, 3, padding=1)
        self.narrow = nn.Conv2d(3, 2, 1)
        self.mixed_relu = nn.ReLU()
        self.out = nn.Conv2d(4, 5, 3, padding=1)
        self.b = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        h = self.reduce_relu(self.reduce(self.a(self.stem(x))))
        mixed = self.mixed_relu(torch.cat([self.wide(h), torch.relu(self.narrow(h))], dim=1))
        return self.b(self.out(mixed))


@pytest.fixture(scope="module")
def tiny() -> TinyCircuit:
    torch.manual_seed(3)
    return TinyCircuit().eval()


def analytic_tiny_kernels(net: TinyCircuit) -> np.ndarray:
    """B's centre pre-activation over A positions at offsets -2..2, by explicit loops."""
    w1 = net.reduce.weight[:, :, 0, 0].detach().double()  # (3, 4)
    w2 = net.wide.weight.detach().double()  # (2, 3, 3, 3)
    w3 = net.narrow.weight[:, :, 0, 0].detach().double()  # (2, 3)
    w4 = net.out.weight.detach().double()  # (5, 4, 3, 3)
    kernels = torch.zeros(5, 4, 5, 5, dtype=torch.float64)
    for i in range(3):
        for j in range(3):
            # out's tap (i, j) reads mixed at offset (i - 1, j - 1) from the centre.
            for u in range(3):
                for v in range(3):
                    # wide's tap (u, v) reads h at a further (u - 1, v - 1): A offset sum.
                    y, x = i + u, j + v  # (offset + 2) in the 5x5 box
                    kernels[:, :, y, x] += torch.einsum(
                        "bc,ck,ka->ba", w4[:, :2, i, j], w2[:, :, u, v], w1
                    )
            kernels[:, :, i + 1, j + 1] += torch.einsum("bc,ck,ka->ba", w4[:, 2:, i, j], w3, w1)
    return kernels.float().numpy()


def test_expanded_weights_of_a_tiny_network_equal_the_analytic_product(tiny: TinyCircuit) -> None:
    connections = expanded_weights(tiny, "a", "b", input_size=16)
    expected = analytic_tiny_kernels(tiny)
    assert isinstance(connections, Connections)
    assert (connections.source, connections.target) == ("a", "b")
    assert connections.method == "expanded"
    assert connections.kernels.dtype == np.float32
    assert connections.kernels.shape == (5, 4, 5, 5)
    np.testing.assert_allclose(connections.kernels, expected, atol=1e-6, rtol=1e-5)

    norm = np.sqrt((expected.astype(np.float64) ** 2).sum(axis=(2, 3)))
    signed = np.where(expected.sum(axis=(2, 3)) < 0, -norm, norm)
    np.testing.assert_allclose(connections.strength, signed, rtol=1e-5)
    assert (connections.strength < 0).any() and (connections.strength > 0).any()

    incoming, outgoing = top_connections(connections, top=3)
    assert incoming.shape == (5, 3) and outgoing.shape == (4, 3)
    np.testing.assert_array_equal(incoming, np.argsort(-np.abs(signed), axis=1)[:, :3])
    np.testing.assert_array_equal(outgoing, np.argsort(-np.abs(signed.T), axis=1)[:, :3])


def test_top_connections_break_ties_in_channel_order() -> None:
    strength = np.array([[1.0, -2.0, 2.0, 0.5]], dtype=np.float32)
    connections = Connections("a", "b", np.zeros((1, 4, 1, 1), np.float32), strength, "direct")
    incoming, outgoing = top_connections(connections, top=10)
    np.testing.assert_array_equal(incoming, [[1, 2, 0, 3]])
    np.testing.assert_array_equal(outgoing, [[0], [0], [0], [0]])


def test_unknown_layers_and_reversed_layers_raise_value_errors(tiny: TinyCircuit) -> None:
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        expanded_weights(tiny, "nope", "b", input_size=16)
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        expanded_weights(tiny, "a", "nope", input_size=16)
    with pytest.raises(ValueError, match="source 'b' must run before target 'a'"):
        expanded_weights(tiny, "b", "a", input_size=16)
    with pytest.raises(ValueError, match="both 'a'"):
        expanded_weights(tiny, "a", "a", input_size=16)


class Residual(nn.Module):
    """b adds a tensor computed before a: impulses injected at a cannot pass the addition."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.a = nn.ReLU()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        skip = self.stem(x)
        return self.b(self.conv(self.a(skip)) + skip)


def test_a_skip_connection_from_before_the_source_raises_a_clear_error() -> None:
    with pytest.raises(ValueError, match="skip connection"):
        expanded_weights(Residual(), "a", "b", input_size=32)


@pytest.fixture(scope="module")
def inception() -> nn.Module:
    torch.manual_seed(0)
    return inceptionv1(pretrained=False)


def test_one_convolution_between_layers_gives_its_weights_as_direct(inception: nn.Module) -> None:
    connections = expanded_weights(inception, "conv2d1", "conv2d2", input_size=224)
    weight = inception.conv2d2_pre_relu_conv.weight.detach().numpy()
    assert connections.method == "direct"
    assert connections.kernels.shape == (192, 64, 3, 3)
    np.testing.assert_array_equal(connections.kernels, weight)


def _linearized_gradient(model: nn.Module, source: str, target: str, channel: int) -> Tensor:
    """d B[channel]'s centre / d A on the full 224 px map, cropped to where it is not zero."""
    seen: dict[str, Tensor] = {}

    def on_source(_m: nn.Module, _i: object, out: Tensor) -> Tensor:
        seen["a"] = out.detach().requires_grad_(True)
        return seen["a"]

    def on_target(_m: nn.Module, _i: object, out: Tensor) -> None:
        seen["b"] = out

    handles = [
        model.get_submodule(source).register_forward_hook(on_source),
        model.get_submodule(target).register_forward_hook(on_target),
    ]
    try:
        with linearize.Linearized():
            model(torch.zeros(1, 3, 224, 224))
    finally:
        for handle in handles:
            handle.remove()
    b = seen["b"]
    (grad,) = torch.autograd.grad(b[0, channel, b.shape[2] // 2, b.shape[3] // 2], seen["a"])
    rows = grad[0].abs().amax(dim=(0, 2)).nonzero().flatten()
    cols = grad[0].abs().amax(dim=(0, 1)).nonzero().flatten()
    return grad[0, :, int(rows[0]) : int(rows[-1]) + 1, int(cols[0]) : int(cols[-1]) + 1]


def test_inception_v1_kernels_across_a_max_pool_are_composed_and_equal_the_gradient(
    inception: nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_connections, "measured_kernels", _forbidden)
    connections = expanded_weights(inception, "conv2d2", "mixed3a", input_size=224)
    assert connections.kernels.shape == (256, 192, 11, 11)
    # Plain ReLUs: lucent's RedirectedReLU would scale the gradient through negative inputs.
    plain = inceptionv1(pretrained=False, redirected_ReLU=False).eval()
    plain.load_state_dict(inception.state_dict())
    for channel in (200, 223):  # the 5x5 branch: its kernels fill the whole 11 x 11 box
        gradient = _linearized_gradient(plain, "conv2d2", "mixed3a", channel)
        np.testing.assert_allclose(
            connections.kernels[channel], gradient.numpy(), atol=1e-6, rtol=1e-4
        )


class RealPrefix(nn.Module):
    """Reads a number off its input before a: that part cannot run on the meta device."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.a = nn.ReLU()
        self.conv = nn.Conv2d(4, 5, 3, padding=1)
        self.b = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.b(self.conv(self.a(self.stem(x + float(x.mean())))))


def test_a_model_that_cannot_run_on_the_meta_device_is_composed_all_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_connections, "measured_kernels", _forbidden)
    net = RealPrefix().eval()
    connections = expanded_weights(net, "a", "b", input_size=16)
    assert connections.method == "direct"
    np.testing.assert_array_equal(connections.kernels, net.conv.weight.detach().numpy())


def test_mixed_layers_across_a_max_pool_leave_the_model_unchanged(inception: nn.Module) -> None:
    before = {k: v.clone() for k, v in inception.state_dict().items()}
    inception.train()
    inception.mixed4a_1x1_pre_relu_conv.eval()  # a mixed mode must survive too
    modes = [m.training for m in inception.modules()]
    grads = [p.requires_grad for p in inception.parameters()]

    connections = expanded_weights(inception, "mixed3b", "mixed4a", input_size=224)

    assert connections.kernels.shape == (508, 480, 11, 11)
    assert connections.strength.shape == (508, 480)
    assert connections.method == "expanded"
    assert np.isfinite(connections.kernels).all() and np.abs(connections.kernels).max() > 0
    after = inception.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [m.training for m in inception.modules()] == modes
    assert [p.requires_grad for p in inception.parameters()] == grads
    for module in inception.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    assert torch.overrides._get_current_function_mode_stack() == []


@pytest.mark.parametrize("way", ["composed", "impulses", "backward"])
def test_alexnet_kernels_across_a_max_pool_are_the_pooled_convolution(
    way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every way of computing kernels must give them exactly: force each in turn.
    monkeypatch.setattr(
        connections_measured, "BACKWARD_ADVANTAGE", math.inf if way == "backward" else 0.0
    )
    if way == "composed":
        monkeypatch.setattr(engine_connections, "measured_kernels", _forbidden)
    else:
        monkeypatch.setattr(engine_connections, "composed_kernels", lambda *args: None)
    measured: list[Tensor | None] = []
    measure_backward = connections_measured._measure_backward

    def recording(*args: object) -> Tensor | None:
        measured.append(measure_backward(*args))  # type: ignore[arg-type]
        return measured[-1]

    monkeypatch.setattr(connections_measured, "_measure_backward", recording)
    torch.manual_seed(0)
    model = alexnet(weights=None)
    connections = expanded_weights(model, "features.1", "features.4", input_size=224)
    if way == "backward":  # and the backward's kernels are the ones returned, not a fallback's
        assert measured and measured[-1] is not None
        np.testing.assert_array_equal(connections.kernels, measured[-1].numpy())
    else:
        assert not measured
    # Linearized: average pool 3x3 stride 2, then conv 5x5, so in A's grid each conv tap
    # (u, v) spreads weight / 9 over the 3x3 pool window at (2u, 2v).
    weight = model.features[3].weight.detach().double()
    expected = torch.zeros(192, 64, 11, 11, dtype=torch.float64)
    for i in range(3):
        for j in range(3):
            expected[:, :, i : i + 9 : 2, j : j + 9 : 2] += weight / 9
    assert connections.method == "expanded"
    np.testing.assert_allclose(connections.kernels, expected.numpy(), atol=1e-6, rtol=1e-4)


def _forbidden(*args: object) -> None:
    raise AssertionError("the kernels were measured, not composed")


def _measured_too(
    monkeypatch: pytest.MonkeyPatch, model: nn.Module, *args: object, **kwargs: object
) -> tuple[Connections, Connections]:
    """The connections composed (measuring forbidden), then measured (composing disabled)."""
    with monkeypatch.context() as patch:
        patch.setattr(engine_connections, "measured_kernels", _forbidden)
        composed = expanded_weights(model, *args, **kwargs)  # type: ignore[arg-type]
    with monkeypatch.context() as patch:
        patch.setattr(engine_connections, "composed_kernels", lambda *args: None)
        measured = expanded_weights(model, *args, **kwargs)  # type: ignore[arg-type]
    return composed, measured


def test_the_tiny_networks_kernels_are_composed_even_from_a_map_smaller_than_them(
    tiny: TinyCircuit, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 4 px A's map cannot hold a B unit's 5x5 kernel: the check needs a larger map.
    monkeypatch.setattr(engine_connections, "measured_kernels", _forbidden)
    connections = expanded_weights(tiny, "a", "b", input_size=4)
    np.testing.assert_allclose(
        connections.kernels, analytic_tiny_kernels(tiny), atol=1e-6, rtol=1e-5
    )


class Shuffled(nn.Module):
    """A channel permutation by indexing between a and b: linear, but nothing compose knows."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.a = nn.ReLU()
        self.conv = nn.Conv2d(4, 5, 3, padding=1)
        self.b = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.b(self.conv(self.a(self.stem(x))[:, [2, 0, 3, 1]]))


def test_an_operation_compose_does_not_know_falls_back_to_measuring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(1)
    net = Shuffled().eval()
    measured = engine_connections.measured_kernels
    calls: list[str] = []

    def recording(*args: object) -> Tensor:
        calls.append("measured")
        return measured(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_connections, "measured_kernels", recording)
    connections = expanded_weights(net, "a", "b", input_size=16)
    assert calls == ["measured"]
    expected = torch.zeros_like(net.conv.weight)
    expected[:, [2, 0, 3, 1]] = net.conv.weight.detach()
    np.testing.assert_allclose(connections.kernels, expected.numpy(), atol=1e-6, rtol=1e-5)


def test_composed_kernels_that_do_not_reproduce_the_network_are_never_returned(
    tiny: TinyCircuit, monkeypatch: pytest.MonkeyPatch
) -> None:
    dense = conv_map.ConvMap.dense

    def wrong(self: conv_map.ConvMap) -> tuple[conv_map.Stack, tuple[int, int], tuple[int, int]]:
        stack, stride, origin = dense(self)
        upside_down = tuple((kernel.flip(0), offset) for kernel, offset in stack.parts)
        return conv_map.Stack(upside_down, stack.size), stride, origin

    monkeypatch.setattr(conv_map.ConvMap, "dense", wrong)
    connections = expanded_weights(tiny, "a", "b", input_size=16)
    np.testing.assert_allclose(
        connections.kernels, analytic_tiny_kernels(tiny), atol=1e-6, rtol=1e-5
    )


def _randomized_batch_norms(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(-2, 2)
    return model.eval()


class ResidualBlocks(nn.Module):
    """a -> a strided ResNet block (batch norm, a 1x1 strided shortcut) -> a plain one -> b."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.a = nn.ReLU()
        shortcut = nn.Sequential(nn.Conv2d(4, 6, 1, stride=2, bias=False), nn.BatchNorm2d(6))
        self.down = BasicBlock(4, 6, stride=2, downsample=shortcut)
        self.b = BasicBlock(6, 6)

    def forward(self, x: Tensor) -> Tensor:
        return self.b(self.down(self.a(self.stem(x))))


def test_residual_blocks_with_batch_norm_compose_to_the_measured_kernels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(2)
    net = _randomized_batch_norms(ResidualBlocks())
    composed, measured = _measured_too(monkeypatch, net, "a", "b", input_size=32)
    assert composed.kernels.shape == measured.kernels.shape == (6, 4, 15, 15)
    np.testing.assert_allclose(composed.kernels, measured.kernels, atol=1e-5, rtol=1e-4)


class InceptionV3Blocks(nn.Module):
    """a -> a grid reduction (strided branches, a max pool) -> 1x7 / 7x1 factorized branches
    with an average pool -> b."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.a = nn.ReLU()
        self.reduce = InceptionB(4)
        self.b = InceptionC(484, channels_7x7=4)

    def forward(self, x: Tensor) -> Tensor:
        return self.b(self.reduce(self.a(self.stem(x))))


def test_inception_v3_blocks_compose_to_the_measured_kernels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(3)
    net = _randomized_batch_norms(InceptionV3Blocks())
    composed, measured = _measured_too(monkeypatch, net, "a", "b", input_size=48)
    assert composed.kernels.shape == measured.kernels.shape
    assert composed.kernels.shape[:2] == (768, 4)
    np.testing.assert_allclose(composed.kernels, measured.kernels, atol=1e-5, rtol=1e-4)
