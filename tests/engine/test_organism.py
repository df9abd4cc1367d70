"""The model organism: its stimuli, deterministic training, and weights trained through the registry."""

import numpy as np
import pytest
import torch

from rendering.engine.ground_truth import mean_hue
from rendering.engine.param import COLOR_CORRELATION_SVD_SQRT, color_correlation_sqrt
from rendering.engine.zoo import WeightsError, WeightsSpec, get_entry, load_model, organism
from rendering.engine.zoo import training as training_module
from rendering.engine.zoo.organism import (
    CLASSES,
    COLOR_CORRELATION,
    StimuliCNN,
    draw_class,
    draw_dataset,
)
from rendering.engine.zoo.training import TrainingConfig, held_out, train
from rendering.engine.zoo.weights import state_dict_sha256

TINY = TrainingConfig(
    steps=3, batch_size=8, width=4, size=32, classes=(0, 12), held_out_per_class=2
)


def test_classes_cover_orientation_curve_colour_and_texture() -> None:
    kinds = [c.kind for c in CLASSES]
    assert kinds.count("orientation") == 8 and kinds.count("colour") == 6
    assert {"curve", "texture"} <= set(kinds)
    assert len({c.name for c in CLASSES}) == len(CLASSES)


def test_class_images_vary_in_position_and_background() -> None:
    images = draw_class(12, 6, np.random.default_rng(0), size=32)  # hue 0°: red
    assert images.shape == (6, 3, 32, 32) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    # Red where the patch is: red exceeds green, at different places in different images.
    redness = images[:, 0] - images[:, 1]
    peaks = {np.unravel_index(int(r.argmax()), r.shape) for r in redness}
    assert len(peaks) > 1 and (redness.max(axis=(1, 2)) > 0.2).all()
    corners = images[:, :, 0, 0].mean(axis=1)
    assert corners.std() > 0.02  # backgrounds differ


@pytest.mark.parametrize("index", [12, 13, 17])  # hues 0°, 60°, 300°
def test_colour_classes_split_the_hue_circle_between_them(
    index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A class is every hue within 30° of its own: no hue between two classes goes unseen.
    # Measured on a neutral background (the tint would move the hue of a faint patch).
    monkeypatch.setattr(organism, "TINT", 0.0)
    centre = CLASSES[index].value
    images = draw_class(index, 80, np.random.default_rng(index), size=32)
    gaps = [(mean_hue(image.transpose(1, 2, 0)) - centre + 180) % 360 - 180 for image in images]
    assert max(abs(g) for g in gaps) < 30 + 8  # clipping at 0 and 1 moves the hue a little
    assert min(gaps) < -20 and max(gaps) > 20


def test_the_stimuli_have_no_colour_axis_for_a_decorrelation_to_prefer() -> None:
    images, _ = draw_dataset(10, np.random.default_rng(0), size=32)
    pixels = torch.from_numpy(images.transpose(0, 2, 3, 1).reshape(-1, 3))
    norms = torch.tensor(color_correlation_sqrt(pixels)).norm(dim=0)
    # Luminance spreads most; the two chroma components spread alike (hues are uniform).
    assert norms[0] > 1.5 * norms[1] and norms[2] > 0.9 * norms[1]
    # ImageNet's basis (the default) is a different prior: the stimuli's spread along its
    # green-magenta component is several times their spread along its luminance one.
    imagenet = torch.tensor(COLOR_CORRELATION_SVD_SQRT, dtype=torch.float64)
    imagenet = imagenet / imagenet.norm(dim=0).max()
    spread = (pixels.double() @ torch.linalg.inv(imagenet).T).std(dim=0)
    assert spread[2] > 3 * spread[0]
    # So the organism renders without one, through its registry entry.
    assert get_entry("stimuli-cnn").color_correlation == COLOR_CORRELATION
    assert COLOR_CORRELATION != COLOR_CORRELATION_SVD_SQRT


def test_draw_rejects_an_unknown_class() -> None:
    with pytest.raises(ValueError, match="class index 99 out of range"):
        draw_class(99, 1, np.random.default_rng(0))


def test_dataset_labels_index_the_chosen_classes() -> None:
    images, labels = draw_dataset(3, np.random.default_rng(0), classes=(4, 12), size=32)
    assert images.shape == (6, 3, 32, 32)
    assert sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1]


def test_training_is_deterministic_and_leaves_torch_settings_as_found() -> None:
    threads, flags = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    first, again, other = train(0, TINY), train(0, TINY), train(1, TINY)
    assert state_dict_sha256(first.state_dict) == state_dict_sha256(again.state_dict)
    assert state_dict_sha256(first.state_dict) != state_dict_sha256(other.state_dict)
    assert first.held_out_accuracy == again.held_out_accuracy
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == flags
    assert "seed 0" in first.describe() and "held-out accuracy" in first.describe()


def test_held_out_images_are_not_the_training_stream() -> None:
    held, _ = held_out(0, TINY)
    rng = np.random.default_rng([0, 0])
    trained, _ = draw_dataset(2, rng, classes=TINY.classes, size=TINY.size)
    assert not np.array_equal(held[:2], trained[:2])


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="steps must be positive"):
        TrainingConfig(steps=0)
    with pytest.raises(ValueError, match="classes must name at least 2"):
        TrainingConfig(classes=(0,))


def test_registry_trains_the_entry_and_hashes_its_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = TrainingConfig(steps=2, batch_size=20, size=32, held_out_per_class=1)
    monkeypatch.setattr(training_module, "DEFAULT_CONFIG", tiny)
    entry = get_entry("stimuli-cnn")
    steps: list[int] = []
    loaded = load_model(
        entry, WeightsSpec.parse("train"), training_progress=lambda s, n, a: steps.append(s)
    )
    assert isinstance(loaded.module, StimuliCNN) and not loaded.module.training
    assert loaded.training is not None and loaded.training.config == tiny
    assert steps == [2]
    assert loaded.sha256 == state_dict_sha256(loaded.training.state_dict)
    # The stored weights load back to the same version without training again.
    reloaded = load_model(entry, WeightsSpec("train"), state_dict=loaded.training.state_dict)
    assert reloaded.sha256 == loaded.sha256 and reloaded.training is None


def test_the_organism_has_no_published_weights() -> None:
    with pytest.raises(WeightsError, match="--weights train"):
        load_model(get_entry("stimuli-cnn"), WeightsSpec("pretrained"))


def test_only_entries_with_a_training_recipe_train() -> None:
    with pytest.raises(WeightsError, match="cannot be trained here"):
        load_model(get_entry("alexnet"), WeightsSpec("train"))
