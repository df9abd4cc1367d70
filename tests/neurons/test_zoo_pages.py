"""The zoo at `/` lists every registry entry; a model page says where its weights come from."""

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from django.test import Client
from django.utils.html import escape

from neurons.models import NetworkModel
from neurons.services import model_import
from rendering.engine.zoo import ENTRIES, WeightsSpec

pytestmark = pytest.mark.django_db

# The zoo's content version, the newest version of every model (one query), then one
# channel-render thumbnail per imported model.
ZOO_PAGE_BASE_QUERIES = 2


def _main(html: str) -> str:
    return re.split(r"<main[^>]*>", html, maxsplit=1)[1]


def test_the_home_page_lists_every_registry_entry_imported_or_not(
    client: Client, inceptionv1: NetworkModel
) -> None:
    html = _main(client.get("/").content.decode())
    for key, entry in ENTRIES.items():
        assert f"<strong>{entry.display_name}</strong>" in html, key
        if key != "inceptionv1":
            assert f"import_model {key} --weights pretrained" in html, key
    assert html.count("not imported</span>") == len(ENTRIES) - 1
    assert 'href="/models/inceptionv1/"' in html
    assert f"<code>{inceptionv1.version}</code>" in html
    # InceptionV1's units, counted from its stored layers (5,804 channels and 1,008 logits).
    total = sum(inceptionv1.layers.values_list("num_units", flat=True))
    assert total == 5804 + 1008 and f"{total} units" in html
    assert "untrained weights" in html


def test_the_home_page_groups_models_by_family_with_their_facts(
    client: Client, inceptionv1: NetworkModel
) -> None:
    html = _main(client.get("/").content.decode())
    families = {entry.family for entry in ENTRIES.values()}
    for family in families:
        assert html.count(f'">{family}</h2>') == 1, family
    inception = html.split('">Inception</h2>', 1)[1].split("</section>", 1)[0]
    assert "InceptionV1" in inception and "InceptionV3" in inception
    assert "VGG19" not in inception
    vgg19 = ENTRIES["vgg19"]
    assert escape(vgg19.weights_url) in html and escape(vgg19.licence) in html
    assert "299 × 299 px" in html  # InceptionV3's input size, from the registry
    assert ENTRIES["inceptionv1"].preprocessing.description not in html  # the model page's


def test_only_staff_see_the_admin_import_link(
    client: Client, staff_client: Client, inceptionv1: NetworkModel
) -> None:
    assert "/admin/neurons/importjob/import/" not in client.get("/").content.decode()
    assert "/admin/neurons/importjob/import/" in staff_client.get("/").content.decode()


def test_an_imported_model_whose_entry_left_the_registry_is_still_listed(
    client: Client, inceptionv1: NetworkModel
) -> None:
    NetworkModel.objects.create(
        slug="retired",
        version="ab12ab12ab12",
        display_name="Retired Net",
        family="Legacy",
        registry_key="retired",
        weights_source=NetworkModel.Weights.RANDOM,
        weights_detail="3",
        weights_sha256="ab12" * 16,
        input_size=64,
        status=NetworkModel.Status.READY,
    )
    html = _main(client.get("/").content.decode())
    assert '">Legacy</h2>' in html and 'href="/models/retired/"' in html


def test_the_home_page_costs_one_query_per_imported_model_and_one_when_cached(
    client: Client, tinynet: Any, inceptionv1: NetworkModel, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(ZOO_PAGE_BASE_QUERIES + 1) as one:
        assert client.get("/")["X-Page-Cache"] == "miss"
    model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=4))
    with django_assert_max_num_queries(ZOO_PAGE_BASE_QUERIES + 2) as two:
        response = client.get("/")
    assert (
        response["X-Page-Cache"] == "miss"
        and 'href="/models/tinynet/"' in response.content.decode()
    )
    assert len(two.captured_queries) == len(one.captured_queries) + 1
    with django_assert_max_num_queries(1):
        assert client.get("/")["X-Page-Cache"] == "hit"


def test_the_model_page_of_random_weights_says_untrained_and_names_the_seed(
    client: Client, inceptionv1: NetworkModel
) -> None:
    html = _main(client.get("/models/inceptionv1/").content.decode())
    box = html.split('id="provenance-h"', 1)[1].split("</section>", 1)[0]
    assert "random initialization, seed 0" in box and "untrained weights" in box
    assert "pretrained, published at" not in box
    assert inceptionv1.weights_sha256 in box  # the full sha256, not the version's 12 digits
    assert f"inceptionv1@{inceptionv1.version}" in box
    assert "none: these weights were never trained" in box
    assert "RGB in [0, 255] minus 117" in box  # the preprocessing description
    assert "224 × 224 px" in box
    assert escape(inceptionv1.licence) in box
    assert "Going deeper with convolutions" in box  # the paper, shown once
    assert html.count("Going deeper with convolutions") == 1
    assert "<dt>Paper</dt>" in box


def test_the_model_page_of_pretrained_weights_links_where_they_come_from(
    client: Client, tinynet: Any
) -> None:
    model = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=2))
    NetworkModel.objects.filter(pk=model.pk).update(
        weights_source=NetworkModel.Weights.PRETRAINED,
        weights_detail="",
        weights_url="https://example.org/tinynet-1234.pth",
        training_dataset="Tiny images",
        licence="CC-BY-4.0",
    )
    html = _main(client.get("/models/tinynet/").content.decode())
    box = html.split('id="provenance-h"', 1)[1].split("</section>", 1)[0]
    assert (
        'pretrained, published at\n      <a href="https://example.org/tinynet-1234.pth" rel="nofollow">'
        in box
    )
    assert "Tiny images" in box and "CC-BY-4.0" in box and "untrained" not in html
    assert model.weights_sha256 in box


def test_a_pretrained_model_named_by_a_library_identifier_is_not_made_a_link(
    client: Client, tinynet: Any
) -> None:
    model = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=3))
    NetworkModel.objects.filter(pk=model.pk).update(
        weights_source=NetworkModel.Weights.PRETRAINED, weights_url="timm:tiny.in1k"
    )
    box = client.get("/models/tinynet/").content.decode().split('id="provenance-h"', 1)[1]
    assert '<code class="hash">timm:tiny.in1k</code>' in box and 'href="timm:' not in box


def test_the_model_page_of_a_state_dict_file_names_the_file(
    client: Client, tinynet: Any, tmp_path: Path
) -> None:
    path = tmp_path / "tiny.pt"
    torch.manual_seed(5)
    torch.save(tinynet.build().state_dict(), path)
    model = model_import(registry_key="tinynet", weights=WeightsSpec("file", path=str(path)))
    assert model.weights_source == NetworkModel.Weights.FILE
    box = client.get("/models/tinynet/").content.decode().split('id="provenance-h"', 1)[1]
    box = box.split("</section>", 1)[0]
    assert f'a local state-dict file, <code class="hash">{path}</code>' in box
    assert model.weights_sha256 in box and "untrained" not in box
