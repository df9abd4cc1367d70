"""The model zoo beyond torchvision's five: timm, open_clip, Places365 files, any torchvision name.

Every loader is the real one; the network is never used: random-init weights, local files, and
the libraries' offline switches for the failure messages.
"""

from pathlib import Path

import pytest
import torch

from rendering.engine.zoo import (
    ENTRIES,
    UnknownModelError,
    WeightsError,
    WeightsSpec,
    get_entry,
    inspect_layers,
    load_model,
)
from rendering.engine.zoo.discover import discover_layers


@pytest.mark.parametrize("key", ["inceptionv4", "resnetv2_50", "clip_rn50"])
def test_library_models_load_from_a_local_state_dict_with_the_same_hash(
    key: str, tmp_path: Path
) -> None:
    entry = get_entry(key)
    source = load_model(entry, WeightsSpec("random", seed=3))
    assert source.sha256 != load_model(entry, WeightsSpec("random", seed=4)).sha256
    path = tmp_path / f"{key}.pt"
    torch.save(source.module.state_dict(), path)
    loaded = load_model(entry, WeightsSpec.parse(str(path)))
    assert loaded.sha256 == source.sha256


@pytest.mark.parametrize("key", ["alexnet_places365", "resnet50_places365"])
def test_places365_checkpoints_load_as_published(key: str, tmp_path: Path) -> None:
    """The published .pth.tar files are training checkpoints: {'state_dict': …} with
    DataParallel's `module.` in the names (`features.module.0.weight` for AlexNet)."""
    entry = get_entry(key)
    source = load_model(entry, WeightsSpec("random", seed=1))
    wrapped = {}
    for name, tensor in source.module.state_dict().items():
        if key.startswith("alexnet") and name.startswith("features."):
            wrapped[name.replace("features.", "features.module.", 1)] = tensor
        else:
            wrapped[f"module.{name}"] = tensor
    path = tmp_path / f"{key}.pth.tar"
    torch.save({"epoch": 90, "arch": key, "best_prec1": 53.2, "state_dict": wrapped}, path)
    loaded = load_model(entry, WeightsSpec.parse(str(path)))
    assert loaded.sha256 == source.sha256
    assert loaded.module.state_dict()[[*wrapped][-1].replace("module.", "")].shape[0] == 365


def test_an_imagenet_file_for_a_places_model_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "imagenet_alexnet.pt"
    torch.save(load_model(ENTRIES["alexnet"], WeightsSpec("random")).module.state_dict(), path)
    with pytest.raises(WeightsError, match="does not match the AlexNet \\(Places365\\)"):
        load_model(ENTRIES["alexnet_places365"], WeightsSpec.parse(str(path)))


def test_offline_library_downloads_fail_naming_the_alternatives(monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-microscope-hf-home")
    for key in ("inceptionv4", "resnetv2_50"):
        with pytest.raises(WeightsError, match="--weights random.*--weights /path/to/state_dict"):
            load_model(ENTRIES[key], WeightsSpec("pretrained"))


def test_clip_rn50_is_the_image_tower_with_a_non_spatial_attention_pool() -> None:
    entry = get_entry("clip_rn50")
    model = load_model(entry, WeightsSpec("random")).module
    assert not any(name.startswith("transformer") for name, _ in model.named_modules())
    specs = [spec for spec in entry.layers if spec.name in ("layer4.2", "attnpool")]
    infos = {i.name: i for i in inspect_layers(model, specs, input_size=224)}
    assert infos["attnpool"].kind == "attention"
    assert infos["attnpool"].output_shape == (1024,)
    assert infos["attnpool"].receptive_field_stride == 0
    assert infos["layer4.2"].output_shape == (2048, 7, 7)
    assert entry.preprocessing.mean[0] == pytest.approx(0.48145466)


def test_literature_names() -> None:
    v4 = [spec.name for spec in ENTRIES["inceptionv4"].layers]
    assert v4[:6] == ["conv2d_1a_3x3", "conv2d_2a_3x3", "conv2d_2b_3x3", "mixed_3a", "mixed_4a", "mixed_5a"]  # fmt: skip
    assert v4.count("mixed_6b") == 1 and v4[-2:] == ["mixed_7d", "fc"]
    v2 = [spec.name for spec in ENTRIES["resnetv2_50"].layers]
    assert v2[:3] == ["conv1", "layer1.0", "layer1.1"] and "layer3.5" in v2
    for entry in ENTRIES.values():
        # Weights come from a download, or (model organisms) from training here.
        assert entry.citation.startswith("@") and entry.licence
        assert bool(entry.weights_url) != (entry.train is not None), entry.key
        assert entry.slug and "_" not in entry.slug.replace(entry.key, "")


def test_torchvision_names_discover_their_layers() -> None:
    entry = get_entry("torchvision:resnet18")
    names = [spec.name for spec in entry.layers]
    assert names == ["conv1", *(f"layer{s}.{b}" for s in (1, 2, 3, 4) for b in (0, 1)), "fc"]
    assert entry.key == "torchvision:resnet18" and entry.slug == "resnet18"
    assert entry.weights_url.startswith("https://download.pytorch.org/models/resnet18")
    assert [spec.kind for spec in entry.layers][-1] == "linear"


def test_discovery_captures_convolutions_after_their_activation() -> None:
    import torchvision

    layers = discover_layers(torchvision.models.vgg11(weights=None), 64)
    assert layers[0].name == "features.0" and layers[0].module == "features.1"
    assert [spec.name for spec in layers][-3:] == ["classifier.0", "classifier.3", "classifier.6"]


def test_convnext_blocks_are_found_and_measured() -> None:
    entry = get_entry("torchvision:convnext_tiny")
    names = [spec.name for spec in entry.layers]
    assert "features.1.0" in names and "features.7.2" in names and names[-1] == "classifier.2"
    model = load_model(entry, WeightsSpec("random")).module
    specs = [spec for spec in entry.layers if spec.name in ("features.0", "features.1.0")]
    infos = inspect_layers(model, specs, input_size=64)
    assert infos[0].receptive_field == 4 and infos[0].receptive_field_stride == 4
    assert infos[1].receptive_field == 4 + 6 * 4  # one 7x7 depthwise conv at stride 4


def test_registry_models_are_found_under_their_torchvision_names() -> None:
    assert get_entry("torchvision:alexnet") is ENTRIES["alexnet"]
    assert get_entry("torchvision:inception_v3") is ENTRIES["inceptionv3"]


def test_unknown_torchvision_names_are_refused_with_suggestions() -> None:
    with pytest.raises(
        UnknownModelError, match="no classification model 'convnext_huge'.*convnext_tiny"
    ):
        get_entry("torchvision:convnext_huge")
    with pytest.raises(UnknownModelError, match="torchvision:<name>"):
        get_entry("notamodel")
