"""Ground truth: on a model organism trained once per session at a tiny size, our techniques
recover the features its class units were trained on (rendering/engine/ground_truth.py)."""

import pytest

from rendering.engine.ground_truth import (
    GroundTruth,
    check_organism,
    dominant_orientation,
    mean_hue,
)
from rendering.engine.stimuli import colour_patches, gratings
from rendering.engine.zoo.organism import CLASSES, StimuliCNN
from rendering.engine.zoo.training import TrainingConfig, held_out, normalize, train

# Four orientations and three hues at 32 px, the registry's width: about ten CPU seconds of
# training. (At width 8 the model reached only 93 % held-out accuracy once each colour class
# spanned its whole 60° of hue, and its orientation units answered to colour blobs.)
TINY = TrainingConfig(
    steps=300,
    batch_size=30,
    width=16,
    size=32,
    classes=(0, 2, 4, 6, 12, 14, 16),
    held_out_per_class=12,
)


@pytest.fixture(scope="session")
def truth() -> GroundTruth:
    trained = train(0, TINY)
    assert trained.held_out_accuracy >= 0.9
    model = StimuliCNN(classes=len(TINY.class_indices), width=TINY.width)
    model.load_state_dict(trained.state_dict)
    model.eval()
    images, labels = held_out(0, TINY)
    return check_organism(
        model, TINY.class_indices, images, labels, preprocess=normalize, size=TINY.size, steps=128
    )


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 150.0])
def test_dominant_orientation_reads_a_gratings_bars(angle: float) -> None:
    image = gratings(size=48, extent=48, orientations=[angle], frequencies=[3], phases=[0]).images
    found = dominant_orientation(image[0].transpose(1, 2, 0))
    assert min(abs(found - angle), 180 - abs(found - angle)) < 3


@pytest.mark.parametrize("hue", [0.0, 60.0, 200.0, 300.0])
def test_mean_hue_reads_a_colour_patch(hue: float) -> None:
    image = colour_patches(size=32, extent=28, hues=[hue]).images[0].transpose(1, 2, 0)
    found = mean_hue(image)
    assert min(abs(found - hue), 360 - abs(found - hue)) < 8


def test_every_class_is_checked(truth: GroundTruth) -> None:
    assert [r.name for r in truth.classes] == [CLASSES[i].name for i in TINY.class_indices]
    assert truth.renders.shape == (7, 32, 32, 3)
    assert truth.summary().startswith("summary render_hits=")


def test_renders_activate_their_units_more_than_the_best_example(truth: GroundTruth) -> None:
    # Colour renders included: in ImageNet's colour basis the green and blue ones fell short.
    assert truth.render_hits == 1.0, truth.classes


def test_orientation_renders_and_tuning_recover_the_trained_orientation(
    truth: GroundTruth,
) -> None:
    assert truth.orientation_hits == 1.0, truth.classes
    orientation = [r for r in truth.classes if r.kind == "orientation"]
    assert all(r.tuning_hit for r in orientation), orientation


def test_colour_renders_and_tuning_recover_the_trained_hue(truth: GroundTruth) -> None:
    # In ImageNet's colour basis the green render drifted to 85°, towards its orange axis.
    assert truth.colour_hits == 1.0, truth.classes
    colour = [r for r in truth.classes if r.kind == "colour"]
    assert all(r.tuning_hit for r in colour), colour


def test_top_held_out_examples_are_of_the_units_class(truth: GroundTruth) -> None:
    assert truth.examples_precision == 1.0, truth.classes


def test_expanded_weight_inputs_are_not_all_one_unit(truth: GroundTruth) -> None:
    assert truth.inputs_distinct
