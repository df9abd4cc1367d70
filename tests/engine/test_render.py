"""The engine's contract: shapes, determinism, errors, and a model left exactly as found."""

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lucent.modelzoo import inceptionv1
from torch import Tensor, nn

from rendering.engine import layer_names, render_layer, render_units, unit_activation
from rendering.engine.lrn import local_response_norm
from rendering.engine.relu_gradient import redirected_relu

SMALL: dict[str, Any] = dict(size=32, steps=4, preprocess=lambda x: x * 255 - 117)


@pytest.fixture(scope="module")
def inception() -> nn.Module:
    torch.manual_seed(0)
    return inceptionv1(pretrained=False)


class TinyNet(nn.Module):
    """Nested modules (dotted names) and a linear head whose output is (N, C)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.block = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.block(self.pool(self.stem(x))))


class _SignWithStraightThrough(torch.autograd.Function):
    """Forward sign(x), backward identity: FX keeps the forward and loses this backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return torch.sign(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad


class StraightThroughNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.out = nn.Conv2d(4, 6, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(_SignWithStraightThrough.apply(self.conv(x)))


class BranchingNet(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.out = nn.Conv2d(4, 6, 3)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(x)
        if h.mean() > 0:
            h = h * 2
        return self.out(torch.relu(h))


def _snapshot(model: nn.Module) -> dict[str, Any]:
    return {
        "training": {name: m.training for name, m in model.named_modules()},
        "requires_grad": {name: p.requires_grad for name, p in model.named_parameters()},
        "state": {k: v.clone() for k, v in model.state_dict().items()},
    }


def _hooks(model: nn.Module) -> list[str]:
    return [
        name
        for name, m in model.named_modules()
        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
    ]


def test_render_units_returns_one_uint8_rgb_image_per_unit(inception: nn.Module) -> None:
    result = render_units(inception, "mixed3a", [0, 5], **SMALL)
    assert result.images.shape == (2, 32, 32, 3)
    assert result.images.dtype == np.uint8
    assert result.units == [0, 5]
    assert len(result.objective) == 2
    assert all(np.isfinite(result.objective))


def test_metrics_describe_the_render(inception: nn.Module) -> None:
    metrics = render_units(inception, "mixed3a", [1], seed=3, **SMALL).metrics
    assert {
        "steps",
        "seed",
        "size",
        "technique",
        "transforms",
        "lr",
        "versions",
        "device",
        "dtype",
        "wall_time_s",
    } <= metrics.keys()
    assert (metrics["steps"], metrics["seed"], metrics["size"]) == (4, 3, 32)
    assert metrics["technique"] == "channel"
    assert metrics["lr"] == 0.05
    assert metrics["device"] == "cpu"
    assert metrics["dtype"] == "float32"
    assert "jitter" in metrics["transforms"]
    assert metrics["versions"]["torch"] == torch.__version__.split("+")[0]
    assert metrics["versions"]["lucent"] == "0.1.8"
    assert metrics["forward"] == "traced"
    assert metrics["wall_time_s"] > 0


def test_same_inputs_and_seed_give_the_same_images(inception: nn.Module) -> None:
    first = render_units(inception, "mixed3a", [2, 7], seed=11, **SMALL)
    second = render_units(inception, "mixed3a", [2, 7], seed=11, **SMALL)
    other = render_units(inception, "mixed3a", [2, 7], seed=12, **SMALL)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_allclose(first.objective, second.objective, rtol=1e-6)
    assert not np.array_equal(first.images, other.images)


def test_a_units_starting_image_does_not_depend_on_its_batch(inception: nn.Module) -> None:
    kwargs = dict(SMALL, steps=0)
    together = render_units(inception, "mixed3a", [3, 4, 9], **kwargs)
    chunked = render_units(inception, "mixed3a", [3, 4, 9], batch_size=2, **kwargs)
    alone = render_units(inception, "mixed3a", [9], **kwargs)
    np.testing.assert_array_equal(together.images, chunked.images)
    np.testing.assert_array_equal(together.images[2:], alone.images)
    assert chunked.metrics["batches"] == 2


def test_rendering_leaves_no_hooks_and_restores_modes_grads_and_weights(
    inception: nn.Module,
) -> None:
    inception.train()
    inception.get_submodule("mixed3a_1x1_pre_relu_conv").eval()  # .train(flag) would lose this
    inception.get_parameter("conv2d0_pre_relu_conv.weight").requires_grad_(False)
    before = _snapshot(inception)
    try:
        render_units(inception, "mixed3b", [0, 1], **SMALL)
        render_units(inception, "mixed3b", [2], technique="diversity", diversity=2, **SMALL)
        render_layer(inception, "mixed3a", **SMALL)
        after = _snapshot(inception)
        assert _hooks(inception) == []
        assert after["training"] == before["training"]
        assert after["requires_grad"] == before["requires_grad"]
        for key, value in before["state"].items():
            assert torch.equal(after["state"][key], value), key
        assert all(p.grad is None for p in inception.parameters())
    finally:
        inception.eval()
        inception.requires_grad_(True)


@pytest.mark.parametrize("model_cls", [BranchingNet, StraightThroughNet])
def test_models_that_do_not_trace_faithfully_render_through_a_removed_hook(
    model_cls: type[nn.Module],
) -> None:
    torch.manual_seed(0)
    model = model_cls()
    before = _snapshot(model)
    for _ in range(3):
        result = render_units(model, "out", [0, 5], size=16, steps=3)
    assert result.metrics["forward"] == "hook"
    assert _hooks(model) == []
    assert _snapshot(model)["training"] == before["training"]
    assert _snapshot(model)["requires_grad"] == before["requires_grad"]


def test_the_trace_is_checked_in_full_precision_and_the_settings_are_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On CUDA, TF32 (cuDNN's default) made the traced and eager InceptionV1 differ by 3.6e-4
    # (tolerance 1e-4), so every GPU render ran on the slow hook path: measured on an H200.
    from rendering.engine import truncation

    seen: list[tuple[bool, bool]] = []
    check = truncation._faithful

    def spy(*args: Any) -> bool:
        seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
        return check(*args)

    monkeypatch.setattr(truncation, "_faithful", spy)
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        torch.manual_seed(0)
        result = render_units(TinyNet(), "block", [0], size=16, steps=1)
        assert result.metrics["forward"] == "traced"
        assert seen == [(False, False)]
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_straight_through_gradient_survives_the_hook_fallback() -> None:
    torch.manual_seed(0)
    model = StraightThroughNet()
    initial = render_units(model, "out", [1], size=16, steps=0, transforms=False)
    rendered = render_units(model, "out", [1], size=16, steps=20, transforms=False)
    # Through the traced sign() the gradient is zero and the image could not move at all.
    assert not np.array_equal(rendered.images, initial.images)
    assert rendered.objective[0] > initial.objective[0]


def test_unknown_layer_names_say_how_to_list_the_valid_ones(inception: nn.Module) -> None:
    with pytest.raises(ValueError, match=r"layer_names\(model\).*'conv2d0_pre_relu_conv'"):
        render_units(inception, "mixed9z", [0], **SMALL)
    with pytest.raises(ValueError, match="unknown layer"):
        unit_activation(inception, "nope", np.zeros((1, 8, 8, 3), np.uint8), [0])


def test_out_of_range_units_are_rejected(inception: nn.Module) -> None:
    with pytest.raises(ValueError, match=r"out of range.*256 channels"):
        render_units(inception, "mixed3a", [0, 256], **SMALL)
    with pytest.raises(ValueError, match="out of range"):
        render_units(inception, "mixed3a", [-1], **SMALL)
    with pytest.raises(ValueError, match="integers"):
        render_units(inception, "mixed3a", [1.5], **SMALL)  # type: ignore[list-item]


def test_bad_arguments_are_rejected(inception: nn.Module) -> None:
    with pytest.raises(ValueError, match="technique"):
        render_units(inception, "mixed3a", [0], technique="sideways", **SMALL)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        render_units(inception, "mixed3a", [0], technique="diversity", batch_size=3, **SMALL)
    with pytest.raises(ValueError, match="caricature needs an input image"):
        render_layer(inception, "mixed3a", technique="caricature", **SMALL)
    with pytest.raises(ValueError, match="model is on cpu"):
        render_units(inception, "mixed3a", [0], device="meta", **SMALL)


def test_nested_layer_names_and_lucents_underscore_spelling_both_work() -> None:
    torch.manual_seed(0)
    model = TinyNet()
    assert "block.2" in layer_names(model)
    dotted = render_units(model, "block.2", [3], size=16, steps=2)
    underscored = render_units(model, "block_2", [3], size=16, steps=2)
    np.testing.assert_array_equal(dotted.images, underscored.images)


@pytest.mark.parametrize("technique", ["channel", "neuron"])
def test_linear_layers_render_as_a_single_position(technique: str) -> None:
    torch.manual_seed(0)
    model = TinyNet()
    # Untransformed: a random linear head barely reacts to the grey padding of transforms.
    kwargs: dict[str, Any] = dict(technique=technique, size=16, transforms=False)
    initial = render_units(model, "head.2", [4, 9], steps=0, **kwargs)
    result = render_units(model, "head.2", [4, 9], steps=30, **kwargs)
    assert result.images.shape == (2, 16, 16, 3)
    assert all(np.greater(result.objective, initial.objective))


def test_diversity_orders_images_unit_major(inception: nn.Module) -> None:
    result = render_units(inception, "mixed3a", [1, 2], technique="diversity", diversity=3, **SMALL)
    assert result.images.shape == (6, 32, 32, 3)
    assert len(result.objective) == 6
    assert result.metrics["diversity"] == 3
    # Replica 0 of unit 2 starts where a plain channel render of unit 2 starts.
    start: dict[str, Any] = dict(SMALL, steps=0)
    diverse = render_units(
        inception, "mixed3a", [1, 2], technique="diversity", diversity=3, **start
    )
    plain = render_units(inception, "mixed3a", [2], **start)
    np.testing.assert_array_equal(diverse.images[3], plain.images[0])


def test_progress_reports_every_few_steps_up_to_the_total(inception: nn.Module) -> None:
    calls: list[tuple[int, int]] = []
    render_units(
        inception,
        "mixed3a",
        [0, 1, 2],
        batch_size=2,
        progress=lambda done, total: calls.append((done, total)),
        **dict(SMALL, steps=10),
    )
    assert calls[-1] == (20, 20)
    assert [done for done, _ in calls] == sorted({done for done, _ in calls})
    assert len(calls) >= 3


def test_channel_objective_is_the_unit_activation_of_the_final_image(
    inception: nn.Module,
) -> None:
    result = render_units(inception, "mixed3a", [0, 3], **dict(SMALL, steps=8))
    measured = unit_activation(
        inception, "mixed3a", result.images, result.units, preprocess=SMALL["preprocess"]
    )
    # Only the uint8 rounding of the stored image separates the two.
    np.testing.assert_allclose(measured, result.objective, rtol=0.05, atol=0.02)


def test_unit_activation_accepts_arrays_and_tensors_alike(inception: nn.Module) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
    as_uint8 = unit_activation(inception, "mixed3a", pixels, [0, 1])
    as_float = unit_activation(inception, "mixed3a", pixels / 255.0, [0, 1])
    as_tensor = unit_activation(
        inception, "mixed3a", torch.from_numpy(pixels).permute(0, 3, 1, 2), [0, 1]
    )
    np.testing.assert_allclose(as_uint8, as_float, rtol=1e-5)
    np.testing.assert_allclose(as_uint8, as_tensor, rtol=1e-5)
    with pytest.raises(ValueError, match="one each"):
        unit_activation(inception, "mixed3a", pixels, [0])


def test_deepdream_and_caricature_raise_their_objectives(inception: nn.Module) -> None:
    start: dict[str, Any] = dict(SMALL, steps=0)
    run: dict[str, Any] = dict(SMALL, steps=12)
    dream0 = render_layer(inception, "mixed3a", **start)
    dream = render_layer(inception, "mixed3a", **run)
    assert dream.images.shape == (1, 32, 32, 3)
    assert dream.units == []
    assert dream.objective[0] > dream0.objective[0]

    photo = np.random.default_rng(1).random((40, 40, 3))  # floats in [0, 1], any size
    kwargs: dict[str, Any] = dict(technique="caricature", image=photo, caricature_power=1.0)
    cari0 = render_layer(inception, "mixed3a", **kwargs, **start)
    cari = render_layer(inception, "mixed3a", **kwargs, **run)
    assert cari.images.shape == (1, 32, 32, 3)
    assert cari.metrics["caricature_power"] == 1.0
    assert cari.objective[0] > cari0.objective[0]


def test_lrn_matches_torch_forward_and_backward() -> None:
    x = (torch.randn(2, 11, 5, 4, dtype=torch.float64) * 20).requires_grad_(True)
    for size in (4, 5, 9):
        ours = local_response_norm(x, size, alpha=1e-3, beta=0.75, k=2.0)
        torchs = F.local_response_norm(x, size, alpha=1e-3, beta=0.75, k=2.0)
        torch.testing.assert_close(ours, torchs)
        weights = torch.randn_like(ours)
        (grad_ours,) = torch.autograd.grad((ours * weights).sum(), x)
        (grad_torch,) = torch.autograd.grad((torchs * weights).sum(), x)
        torch.testing.assert_close(grad_ours, grad_torch)


def test_redirected_relu_passes_gradient_only_where_relu_gives_none() -> None:
    x = torch.tensor([[-1.0, 2.0, -3.0], [-1.0, -2.0, -3.0]], requires_grad=True)
    grad = torch.tensor([[1.0, 1.0, -1.0], [1.0, -1.0, -1.0]])
    (result,) = torch.autograd.grad(redirected_relu(x), x, grad)
    # Row 0 has a live unit: plain ReLU gradient. Row 1 is all dead: the gradient passes
    # wherever it pushes the input up (negative loss gradient), and is blocked elsewhere.
    torch.testing.assert_close(result, torch.tensor([[0.0, 1.0, 0.0], [0.0, -1.0, -1.0]]))
    torch.testing.assert_close(redirected_relu(x), x.clamp(min=0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_same_seed_starts_from_the_same_image_on_cpu_and_cuda(inception: nn.Module) -> None:
    cpu = render_units(inception, "mixed3a", [0, 1], **dict(SMALL, steps=0))
    inception.cuda()
    try:
        cuda = render_units(inception, "mixed3a", [0, 1], device="cuda", **dict(SMALL, steps=0))
    finally:
        inception.cpu()
    assert np.abs(cpu.images.astype(int) - cuda.images.astype(int)).max() <= 1
