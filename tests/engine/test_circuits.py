import math

import numpy as np
import pytest
import torch
from lucent.modelzoo import inceptionv1
from torch import Tensor, nn
from torchvision.models import alexnet

from rendering.engine import circuits
from rendering.engine.circuits import Connections, expanded_weights, top_connections


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


@pytest.mark.parametrize("backward", [False, True], ids=["impulses", "backward"])
def test_alexnet_kernels_across_a_max_pool_are_the_pooled_convolution(
    backward: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both ways of measuring kernels must give them exactly: force one, then the other.
    monkeypatch.setattr(circuits, "BACKWARD_ADVANTAGE", math.inf if backward else 0.0)
    measured: list[Tensor | None] = []
    measure_backward = circuits._measure_backward

    def recording(*args: object) -> Tensor | None:
        measured.append(measure_backward(*args))  # type: ignore[arg-type]
        return measured[-1]

    monkeypatch.setattr(circuits, "_measure_backward", recording)
    torch.manual_seed(0)
    model = alexnet(weights=None)
    connections = expanded_weights(model, "features.1", "features.4", input_size=224)
    if backward:  # and the backward's kernels are the ones returned, not a fallback's
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
