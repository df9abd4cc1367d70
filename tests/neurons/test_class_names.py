"""Classifier outputs carry their class names: stored at import, shown on pages, the API and
search; a classifier without a label list here says so plainly."""

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from neurons.class_names import model_class_names_fill
from neurons.models import Layer, NetworkModel, Unit
from neurons.services import model_import
from rendering.engine.zoo import ENTRIES, WeightsSpec
from rendering.engine.zoo.classes import file_class_names

pytestmark = pytest.mark.django_db

TINY_CLASSES = [f"class number {i}" for i in range(10)]


@pytest.fixture
def alexnet(db: None) -> NetworkModel:
    return model_import(registry_key="alexnet", weights=WeightsSpec("random", seed=0))


@pytest.fixture
def labelled_tinynet(tinynet: Any, monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path):
    """TinyNet whose 10 logits take their names from a local file, as Places365's do."""
    settings.LABELS_DIR = tmp_path
    entry = dataclasses.replace(
        tinynet,
        class_names_layer="logits",
        class_names=file_class_names("tiny.txt", what="TinyNet's 10 classes", count=10),
    )
    monkeypatch.setitem(ENTRIES, entry.key, entry)
    return entry


def test_the_import_stores_torchvision_class_names_on_the_output_units(alexnet) -> None:
    fc8 = alexnet.layers.get(name="fc8")
    names = list(fc8.units.order_by("index").values_list("class_name", flat=True))
    import torchvision

    expected = torchvision.models.get_model_weights("alexnet").DEFAULT.meta["categories"]
    assert names == list(expected) and names[281] == "tabby"
    assert not Unit.objects.filter(layer__model=alexnet).exclude(layer=fc8).exclude(class_name="")
    assert fc8.class_names_note == ""


def test_the_unit_page_grid_embed_and_api_show_the_stored_class_name(
    client: Client, alexnet
) -> None:
    Unit.objects.filter(layer__model=alexnet, layer__name="fc8", index=1).update(
        class_name="stored goldfish"
    )
    page = client.get("/models/alexnet/fc8/1/").content.decode()
    assert "Class <strong>stored goldfish</strong>" in page
    grid = client.get("/models/alexnet/fc8/").content.decode()
    assert '<span class="class-name">stored goldfish</span>' in grid
    assert '<span class="class-name">great white shark</span>' in grid
    embed = client.get(f"/embed/models/{alexnet.slug}/fc8/1/").content.decode()
    assert "stored goldfish" in embed
    api = client.get(f"/api/v1/models/{alexnet}/layers/fc8/units/1/").json()
    assert api["class_name"] == "stored goldfish"
    conv = client.get(f"/api/v1/models/{alexnet}/layers/conv1/units/1/").json()
    assert conv["class_name"] == ""


def test_search_finds_units_by_class_name_in_any_case(client: Client, alexnet) -> None:
    html = client.get("/search/", {"q": "Golden Retriever"}).content.decode()
    assert 'href="/models/alexnet/fc8/207/"' in html and "golden retriever" in html
    tabby = client.get("/search/", {"q": "tabby"}).content.decode()
    assert 'href="/models/alexnet/fc8/281/"' in tabby


def test_a_missing_label_file_is_said_plainly_and_the_command_fills_it_later(
    client: Client, labelled_tinynet, settings: Any, tmp_path: Path
) -> None:
    model = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=0))
    logits = model.layers.get(name="logits")
    assert "tiny.txt" in logits.class_names_note
    page = client.get(f"/models/{model.slug}/logits/3/").content.decode()
    assert "the class names are not available here" in page and "tiny.txt" in page
    assert "Class <strong>" not in page

    (tmp_path / "tiny.txt").write_text("\n".join(TINY_CLASSES) + "\n")
    call_command("class_names", model.slug)
    logits.refresh_from_db()
    assert logits.class_names_note == ""
    assert logits.units.get(index=3).class_name == "class number 3"
    page = client.get(f"/models/{model.slug}/logits/3/").content.decode()
    assert "Class <strong>class number 3</strong>" in page
    assert "not available here" not in page


def test_a_label_list_of_the_wrong_length_names_nothing(
    labelled_tinynet, settings: Any, tmp_path: Path
) -> None:
    (tmp_path / "tiny.txt").write_text("\n".join(TINY_CLASSES[:9]))
    model = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=0))
    filled = model_class_names_fill(model=model)
    assert filled.units == 0 and "has 9 names" in filled.note
    assert not Unit.objects.filter(layer__model=model).exclude(class_name="").exists()


def test_places365_categories_lines_become_names(tmp_path: Path) -> None:
    (tmp_path / "categories_places365.txt").write_text(
        "".join(f"/a/airfield {i}\n" if i == 0 else f"/b/bus_interior/x {i}\n" for i in range(365))
    )
    names = ENTRIES["alexnet_places365"].class_names(tmp_path)  # type: ignore[misc]
    assert names[0] == "airfield" and names[1] == "bus interior x" and len(names) == 365


def test_inceptionv1_has_its_logits_layer_and_says_where_its_labels_are(inceptionv1) -> None:
    logits = Layer.objects.get(model=inceptionv1, name="softmax2_pre_activation")
    assert (logits.num_units, logits.kind, logits.module_path) == (
        1008,
        "linear",
        "softmax2_pre_activation_matmul",
    )
    assert "InceptionV1's 1,008 class names" in logits.class_names_note
