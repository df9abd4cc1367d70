import contextlib
import io
import json
from collections.abc import Callable, Sequence

import numpy as np
import pytest
import torch
from lucent.modelzoo import inceptionv1
from torch import Tensor, nn

from rendering.engine.datasets import Batch
from rendering.engine.examples import ExamplesState, collect_examples
from rendering.engine.statistics import HISTOGRAM_EDGES, QUANTILE_LEVELS
from rendering.engine.tracing import OUTPUT, PRE_ACTIVATION
from rendering.engine.zoo import Preprocessing

K = 10
BATCH = 8
PREPROCESS = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


class Cat(nn.Module):
    def forward(self, parts: tuple[Tensor, ...]) -> Tensor:
        return torch.cat(parts, dim=1)


class TinyNet(nn.Module):
    """stem -> ReLU in place [a] -> (1x1 | 3x3) -> ReLUs -> concat [mixed] -> pool -> fc [fc]."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3)  # no padding: a constant image gives a constant map
        self.a = nn.ReLU(inplace=True)
        self.narrow = nn.Conv2d(4, 3, 1)
        self.wide = nn.Conv2d(4, 2, 3, padding=1)
        self.mixed = Cat()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(20, 6)

    def forward(self, x: Tensor) -> Tensor:
        h = self.a(self.stem(x))
        mixed = self.mixed((torch.relu(self.narrow(h)), self.wide(h).clamp(min=0)))
        return self.fc(self.pool(mixed).flatten(1))


class Untraceable(TinyNet):
    """Data-dependent control flow: torch.fx cannot trace it, so hooks must be used."""

    def forward(self, x: Tensor) -> Tensor:
        if x.sum() > 1e9:
            x = x * 0
        return super().forward(x)


LAYERS = ["a", "mixed", "fc"]
# Where each layer's pre-activation is, for the brute force: module outputs, concatenated.
PRE_MODULES = {"a": ["stem"], "mixed": ["narrow", "wide"], "fc": ["fc"]}


def tiny(cls: type[TinyNet] = TinyNet) -> TinyNet:
    torch.manual_seed(0)
    net = cls()
    with torch.no_grad():
        net.narrow.bias.fill_(-0.3)  # many units at zero after ReLU: ties between images
        net.stem.bias[0] = -100.0  # a dead unit: every image ties at 0
        net.narrow.bias[0] = -100.0
    return net.eval()


def dataset_images() -> Tensor:
    """37 images (16 px) with exact ties: duplicates of a strong image 3, constant images."""
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (37, 3, 16, 16), dtype=torch.uint8, generator=generator)
    images[3] = (torch.arange(16).view(1, 16, 1) + torch.arange(16)) % 2 * 255  # checkerboard
    images[20] = images[3]
    images[30] = images[3]
    images[5] = 0
    images[6] = 128
    images[33] = 128
    return images


def as_batches(images: Tensor, size: int = BATCH, start: int = 0) -> list[Batch]:
    return [
        Batch(torch.arange(i, min(i + size, len(images))), images[i : i + size], [])
        for i in range(start, len(images), size)
    ]


class Stop(BaseException):
    """Raised by `stop` to end a pass part-way, as a killed worker would."""


def stop(*_: object) -> None:
    raise Stop


def brute_force(
    model: nn.Module,
    batches: Sequence[Batch],
    layers: Sequence[str],
    pre: dict[str, list[str]],
    stop_after: str | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every activation of every layer (and of its pre-activation modules), stored."""
    modules = sorted({*layers, *(name for names in pre.values() for name in names)})
    stored: dict[str, list[np.ndarray]] = {name: [] for name in modules}

    def keep(name: str) -> Callable[[nn.Module, object, Tensor], None]:
        def hook(_module: nn.Module, _inputs: object, output: Tensor) -> None:
            stored[name].append(output.detach().clone().numpy())

        return hook

    handles = [model.get_submodule(name).register_forward_hook(keep(name)) for name in modules]
    if stop_after:
        handles.append(model.get_submodule(stop_after).register_forward_hook(stop))
    try:
        with torch.no_grad():
            for batch in batches:
                with contextlib.suppress(Stop):
                    model(PREPROCESS(batch.images.float().div(255)))
    finally:
        for handle in handles:
            handle.remove()
    everything = {name: np.concatenate(arrays) for name, arrays in stored.items()}
    outputs = {layer: everything[layer] for layer in layers}
    pres = {layer: np.concatenate([everything[m] for m in pre[layer]], axis=1) for layer in layers}
    return outputs, pres


def spatial(activations: np.ndarray) -> np.ndarray:
    return activations.reshape(*activations.shape[:2], -1)


def ranking(
    activations: np.ndarray, k: int, *, top: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, images, flat positions) per channel (C, k) by sorting everything at the end."""
    flat = spatial(activations)
    values = flat.max(axis=2) if top else flat.min(axis=2)  # (N, C)
    positions = flat.argmax(axis=2) if top else flat.argmin(axis=2)  # numpy: first occurrence
    images = np.arange(len(flat))
    rows = [np.lexsort((images, -v if top else v))[:k] for v in values.T]
    chosen = np.stack(rows)
    channels = np.arange(values.shape[1])[:, None]
    return values.T[channels, chosen], chosen, positions.T[channels, chosen]


def assert_examples_equal(
    state: ExamplesState, layer: str, expected: np.ndarray, *, top: bool
) -> None:
    values, images, positions = ranking(expected, state.k, top=top)
    side = "top" if top else "bottom"
    width = state.layer(layer).map_size[1]
    for unit in range(expected.shape[1]):
        got_values, got_images, ys, xs = state.layer(layer).ranked(unit, side)
        n = min(state.k, len(expected))
        np.testing.assert_array_equal(got_values[:n], values[unit])
        np.testing.assert_array_equal(got_images[:n], images[unit])
        np.testing.assert_array_equal(ys[:n] * width + xs[:n], positions[unit])
        assert (got_images[n:] == -1).all()


def has_ties(activations: np.ndarray, k: int) -> bool:
    """Whether some unit's top k holds equal values of different images (the case to test)."""
    values, _, _ = ranking(activations, k, top=True)
    return bool((np.diff(values, axis=1) == 0).any())


@pytest.fixture(scope="module")
def tiny_pass() -> tuple[TinyNet, list[Batch], ExamplesState, dict, dict]:
    net = tiny()
    batches = as_batches(dataset_images())
    state = collect_examples(net, LAYERS, batches, k=K, preprocess=PREPROCESS)
    outputs, pres = brute_force(net, batches, LAYERS, PRE_MODULES)
    return net, batches, state, outputs, pres


def test_streaming_top_k_equals_sorting_every_activation_including_ties(tiny_pass: tuple) -> None:
    _, _, state, outputs, _ = tiny_pass
    assert has_ties(outputs["a"], K) and has_ties(outputs["mixed"], K)
    for layer in LAYERS:
        assert_examples_equal(state, layer, outputs[layer], top=True)
    # Constant images: every position ties, so the first one (0, 0) is the example's position.
    positive = state.layer("a").positive(0)
    assert all((e.y, e.x) == (0, 0) for e in positive if e.image in (5, 6, 33))


def test_negative_examples_use_the_pre_activation_below_the_final_relus(tiny_pass: tuple) -> None:
    _, _, state, outputs, pres = tiny_pass
    assert state.layer("a").negative_source == PRE_ACTIVATION  # in-place nn.ReLU
    assert state.layer("mixed").negative_source == PRE_ACTIVATION  # concat of relu and clamp
    assert state.layer("fc").negative_source == OUTPUT  # no ReLU at its end
    for layer in ("a", "mixed"):
        assert (pres[layer] < 0).any()
        assert_examples_equal(state, layer, pres[layer], top=False)
    assert_examples_equal(state, "fc", outputs["fc"], top=False)
    assert state.layer("mixed").negative(2)[0].value < 0


def test_statistics_equal_numpy_on_every_activation(tiny_pass: tuple) -> None:
    _, _, state, outputs, _ = tiny_pass
    for layer in LAYERS:
        stats = state.layer(layer).statistics()
        flat = spatial(outputs[layer]).astype(np.float64)
        maxima = flat.max(axis=2)  # (N, C)
        assert stats.count == 37
        np.testing.assert_array_equal(stats.maximum, flat.max(axis=(0, 2)))
        np.testing.assert_array_equal(stats.minimum, flat.min(axis=(0, 2)))
        np.testing.assert_allclose(stats.max_mean, maxima.mean(axis=0), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(stats.max_std, maxima.std(axis=0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(stats.mean, flat.mean(axis=(0, 2)), rtol=1e-6, atol=1e-7)
        bins = np.searchsorted(HISTOGRAM_EDGES, maxima, side="right")
        expected = np.stack([np.bincount(b, minlength=len(HISTOGRAM_EDGES) + 1) for b in bins.T])
        np.testing.assert_array_equal(stats.histogram, expected)
        lower = np.concatenate([[-np.inf], HISTOGRAM_EDGES])
        upper = np.concatenate([HISTOGRAM_EDGES, [np.inf]])
        for column, level in enumerate(QUANTILE_LEVELS):
            exact = np.quantile(maxima, level, axis=0, method="inverted_cdf")
            where = np.searchsorted(HISTOGRAM_EDGES, exact, side="right")
            low = np.maximum(lower[where], maxima.min(axis=0))
            high = np.minimum(upper[where], maxima.max(axis=0))
            assert (
                (low <= stats.quantiles[:, column]) & (stats.quantiles[:, column] <= high)
            ).all()
    unit = json.loads(json.dumps(state.layer("mixed").stats(1), allow_nan=False))
    stats = state.layer("mixed").statistics()
    assert unit["count"] == 37 and unit["max_std"] == stats.max_std[1]
    assert list(unit["quantiles_approximate"]) == [
        "0.01",
        "0.05",
        "0.25",
        "0.5",
        "0.75",
        "0.95",
        "0.99",
    ]
    assert list(unit["quantiles_approximate"].values()) == stats.quantiles[1].tolist()


def arrays(state: ExamplesState) -> dict[str, bytes]:
    with np.load(io.BytesIO(state.to_npz_bytes())) as archive:
        return {key: archive[key].tobytes() for key in archive.files}


def test_a_pass_resumed_from_saved_state_is_bit_identical(tiny_pass: tuple) -> None:
    net, batches, uninterrupted, _, _ = tiny_pass
    state = None
    for chunk in (batches[:2], batches[2:3], batches[3:]):
        state = collect_examples(net, LAYERS, chunk, k=K, preprocess=PREPROCESS, state=state)
        state = ExamplesState.from_npz_bytes(state.to_npz_bytes())
    assert state is not None and state.next_index == 37 and state.images_seen == 37
    assert arrays(state) == arrays(uninterrupted)


def test_bad_images_are_recorded_and_batches_must_follow_the_dataset_order(
    tiny_pass: tuple,
) -> None:
    net, batches, _, _, _ = tiny_pass
    skipping = Batch(
        torch.zeros(0, dtype=torch.int64),
        torch.zeros(0, 3, 0, 0, dtype=torch.uint8),
        [(0, "truncated")],
    )
    state = collect_examples(net, LAYERS, [skipping, *batches[1:2]], k=K, preprocess=PREPROCESS)
    assert state.skipped == [(0, "truncated")] and state.images_seen == 8
    assert state.layer("a").positive(0)[0].image in range(8, 16)
    with pytest.raises(ValueError, match="state.next_index"):
        collect_examples(net, LAYERS, batches[:1], k=K, preprocess=PREPROCESS, state=state)
    with pytest.raises(ValueError, match="must increase"):
        backwards = Batch(torch.tensor([17, 16]), batches[2].images[:2], [])
        collect_examples(net, LAYERS, [backwards], k=K, preprocess=PREPROCESS, state=state)
    with pytest.raises(ValueError, match="collected for layers"):
        collect_examples(net, ["a"], batches[2:3], k=K, preprocess=PREPROCESS, state=state)
    with pytest.raises(ValueError, match="layer_names"):
        collect_examples(net, ["nope"], batches, preprocess=PREPROCESS)


def test_fewer_images_than_k_leave_empty_slots() -> None:
    state = collect_examples(
        tiny(), ["mixed"], as_batches(dataset_images()[:3]), k=5, preprocess=PREPROCESS
    )
    values, images, _, _ = state.layer("mixed").ranked(0, "top")
    assert len(values) == 5 and list(images[3:]) == [-1, -1]
    assert sorted(e.image for e in state.layer("mixed").positive(0)) == [0, 1, 2]
    assert list(state.layer("mixed").image_indices()) == [0, 1, 2]
    table = state.layer("mixed").table("top")
    assert [array.shape for array in table] == [(5, 5)] * 4
    np.testing.assert_array_equal(table[1][0], images)


def test_an_untraceable_model_falls_back_to_hooks_and_is_left_as_found() -> None:
    net = tiny(Untraceable)
    net.train()
    net.stem.weight.requires_grad_(True)
    batches = as_batches(dataset_images())
    state = collect_examples(net, LAYERS, batches, k=K, preprocess=PREPROCESS)
    assert net.training and net.stem.weight.requires_grad
    assert all(not module._forward_hooks for module in net.modules())
    net.eval()
    outputs, _ = brute_force(net, batches, LAYERS, PRE_MODULES)
    for layer in LAYERS:
        assert state.layer(layer).negative_source == OUTPUT
        assert_examples_equal(state, layer, outputs[layer], top=True)
        assert_examples_equal(state, layer, outputs[layer], top=False)


def test_inceptionv1_mixed_layers_match_a_brute_force_pass() -> None:
    torch.manual_seed(0)
    model = inceptionv1(pretrained=False).eval()
    generator = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (6, 3, 224, 224), dtype=torch.uint8, generator=generator)
    images[4] = images[1]  # a duplicate: every unit ties between images 1 and 4
    batches = as_batches(images, size=3)
    layers = ["mixed3a", "mixed3b"]
    state = collect_examples(model, layers, batches, k=4, preprocess=PREPROCESS)
    branches = ("1x1", "3x3", "5x5", "pool_reduce")
    pre = {layer: [f"{layer}_{b}_pre_relu_conv" for b in branches] for layer in layers}
    outputs, pres = brute_force(model, batches, layers, pre, stop_after="mixed3b")
    for layer in layers:
        assert state.layer(layer).negative_source == PRE_ACTIVATION
        assert_examples_equal(state, layer, outputs[layer], top=True)
        assert_examples_equal(state, layer, pres[layer], top=False)
