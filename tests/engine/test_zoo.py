import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from rendering.engine.zoo import (
    ENTRIES,
    LayerSpec,
    UnknownModelError,
    WeightsError,
    WeightsSpec,
    get_entry,
    inspect_layers,
    load_model,
)
from tests.tinynet import TINYNET


def test_random_init_with_a_seed_is_deterministic() -> None:
    a = load_model(TINYNET, WeightsSpec("random", seed=5))
    b = load_model(TINYNET, WeightsSpec("random", seed=5))
    c = load_model(TINYNET, WeightsSpec("random", seed=6))
    assert a.sha256 == b.sha256 != c.sha256
    assert len(a.sha256) == 64


def test_random_init_does_not_disturb_the_global_rng() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_model(TINYNET, WeightsSpec("random", seed=5))
    assert torch.equal(torch.rand(3), expected)


def test_inceptionv1_random_init_is_deterministic() -> None:
    entry = get_entry("inceptionv1")
    assert (
        load_model(entry, WeightsSpec("random")).sha256
        == load_model(entry, WeightsSpec("random")).sha256
    )


def test_a_local_state_dict_file_loads_with_the_same_hash(tmp_path: Path) -> None:
    source = load_model(TINYNET, WeightsSpec("random", seed=2))
    path = tmp_path / "w.pt"
    torch.save({"state_dict": source.module.state_dict()}, path)  # checkpoint-style wrapper
    loaded = load_model(TINYNET, WeightsSpec.parse(str(path)))
    assert loaded.sha256 == source.sha256
    assert loaded.weights.source == "file"


def test_missing_corrupt_and_mismatched_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        load_model(TINYNET, WeightsSpec("file", path=str(tmp_path / "nope.pt")))
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable PyTorch state dict"):
        load_model(TINYNET, WeightsSpec("file", path=str(corrupt)))
    other = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(WeightsError, match="does not match the TinyNet architecture"):
        load_model(TINYNET, WeightsSpec("file", path=str(other)))


def test_unknown_registry_key_lists_the_known_ones() -> None:
    with pytest.raises(UnknownModelError, match="Unknown model 'resnet51'.*resnet50"):
        get_entry("resnet51")


def test_bad_weights_source_is_refused() -> None:
    with pytest.raises(WeightsError, match="pretrained, random, train or file"):
        WeightsSpec("imagenet")


def test_pretrained_weights_download_through_torch_hub(tmp_path: Path, monkeypatch) -> None:
    """The real download path, with the network replaced by a file:// URL."""
    published = load_model(TINYNET, WeightsSpec("random", seed=8))
    served = tmp_path / "served" / "tinynet-1234abcd.pth"
    served.parent.mkdir()
    torch.save(published.module.state_dict(), served)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    entry = replace(TINYNET, weights_url=served.as_uri())
    loaded = load_model(entry, WeightsSpec("pretrained"))
    assert loaded.sha256 == published.sha256
    assert (tmp_path / "hub" / "hub" / "checkpoints" / served.name).exists()


def test_pretrained_download_failure_names_the_alternatives(monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(torch.hub, "urlopen", offline, raising=False)
    entry = replace(TINYNET, weights_url="https://example.invalid/never-cached-tinynet.pth")
    with pytest.raises(WeightsError, match="--weights random.*--weights /path/to/state_dict.pt"):
        load_model(entry, WeightsSpec("pretrained"))


def test_receptive_fields_and_strides_match_the_known_arithmetic() -> None:
    vgg = ENTRIES["vgg19"]
    model = vgg.build()
    specs = [s for s in vgg.layers if s.name in ("conv1_1", "conv1_2", "conv2_1", "conv3_1")]
    facts = {
        i.name: (i.receptive_field, i.receptive_field_stride)
        for i in inspect_layers(model, specs, input_size=64)
    }
    # 3x3 convs grow the field by 2 per layer times the stride; each 2x2 pool doubles the stride.
    assert facts == {"conv1_1": (3, 1), "conv1_2": (5, 1), "conv2_1": (10, 2), "conv3_1": (24, 4)}


def test_inceptionv1_layers_are_the_circuits_names_with_5804_channels() -> None:
    entry = get_entry("inceptionv1")
    infos = inspect_layers(
        load_model(entry, WeightsSpec("random")).module, entry.layers, input_size=224
    )
    assert [i.name for i in infos][3:6] == ["mixed3a", "mixed3b", "mixed4a"]
    # The Circuits thread's 5,804 channels, then the 1,008 class logits (softmax2_pre_activation).
    assert sum(i.num_units for i in infos if i.name != "softmax2_pre_activation") == 5804
    assert infos[-1].name == "softmax2_pre_activation" and infos[-1].num_units == 1008
    by_name = {i.name: i for i in infos}
    assert by_name["mixed4a"].output_shape == (508, 14, 14)
    assert by_name["mixed4a"].receptive_field_stride == 16
    assert by_name["conv2d0"].receptive_field == 7


def test_a_layer_naming_a_missing_module_is_a_value_error() -> None:
    from rendering.engine.zoo import LayerSpec

    with pytest.raises(ValueError, match="does not have"):
        inspect_layers(TINYNET.build(), [LayerSpec("x", "conv9")], input_size=32)


def test_receptive_field_offset_is_measured_where_padding_is_asymmetric() -> None:
    from rendering.engine.crops import receptive_field_box

    # Two pixels of padding before, none after: unit i sees input pixels i-2..i, centred one
    # pixel before its cell (i + 0.5).
    lopsided = nn.Sequential(nn.ZeroPad2d((2, 0, 2, 0)), nn.Conv2d(3, 4, 3))
    symmetric = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    spec = [LayerSpec("c", "1")]
    (info,) = inspect_layers(lopsided, spec, input_size=32)
    assert info.receptive_field == 3 and info.receptive_field_offset == -1.0
    (plain,) = inspect_layers(symmetric, [LayerSpec("c", "0")], input_size=32)
    assert plain.receptive_field_offset == 0.0
    box = dict(map_size=(32, 32), input_size=32, receptive_field=3)
    assert receptive_field_box(10, 10, **box) == (9, 9, 12, 12)
    assert receptive_field_box(10, 10, **box, offset=-1.0) == (8, 8, 11, 11)  # pixels 8..10
