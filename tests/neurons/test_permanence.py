"""Links keep working: renames answer 301, short links, older versions, citations, embeds, sitemaps.

Renames happen to a TinyNet imported inside each test's transaction, never to the session's
InceptionV1, so other tests see the catalogue unchanged.
"""

import json
import math
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from neurons.models import NetworkModel, Rename, Unit
from neurons.services import RenameRefused, layer_rename, model_import, model_rename
from neurons.sitemaps import SITEMAPS, LayerSitemap, ModelSitemap, UnitSitemap
from rendering.engine.zoo import WeightsSpec

pytestmark = pytest.mark.django_db

SITE = "http://testserver"


@pytest.fixture
def tiny(tinynet: Any) -> NetworkModel:
    return model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=1))


def _unit(model: NetworkModel, layer: str, index: int) -> Unit:
    return Unit.objects.select_related("layer__model").get(
        layer__model=model, layer__name=layer, index=index
    )


def _banner(html: str) -> str:
    """The "older version" banner's HTML, or "" when the page has none."""
    match = re.search(r'<p class="banner older".*?</p>', html, re.DOTALL)
    return match.group(0) if match else ""


def _jsonld(html: str) -> Any:
    (text,) = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.DOTALL)
    return json.loads(text)


# --- renames ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/models/tinynet/", "/models/tiny-b/"),
        ("/models/tinynet/conv2/", "/models/tiny-b/conv2/"),
        (
            "/models/tinynet/conv2/?technique=negative&page=1",
            "/models/tiny-b/conv2/?technique=negative&page=1",
        ),
        ("/models/tinynet/conv2/5/", "/models/tiny-b/conv2/5/"),
        ("/models/tinynet@{v}/", "/models/tiny-b@{v}/"),
        ("/models/tinynet@{v}/conv2/5/", "/models/tiny-b@{v}/conv2/5/"),
        ("/models/tinynet@{v}/conv2/5/?from=paper", "/models/tiny-b@{v}/conv2/5/?from=paper"),
        ("/models/tinynet/conv2/5/cite.json", "/models/tiny-b/conv2/5/cite.json"),
        ("/embed/models/tinynet/conv2/5/", "/embed/models/tiny-b/conv2/5/"),
        ("/tinynet/conv2:5", "/tiny-b/conv2:5"),
        ("/tinynet@{v}/conv2:5", "/tiny-b@{v}/conv2:5"),
    ],
)
def test_every_url_of_a_renamed_model_answers_301_to_the_same_url_with_the_new_slug(
    client: Client, tiny: NetworkModel, old: str, new: str
) -> None:
    old, new = old.format(v=tiny.version), new.format(v=tiny.version)
    assert model_rename(slug="tinynet", new_slug="tiny-b") == 1
    response = client.get(old)
    assert response.status_code == 301
    assert response["Location"] == new
    assert client.get(new, follow=True).status_code == 200


def test_a_circuits_shorthand_of_a_renamed_model_reaches_the_unit_page(
    client: Client, tiny: NetworkModel
) -> None:
    model_rename(slug="tinynet", new_slug="tiny-b")
    response = client.get("/tinynet/conv2:5", follow=True)
    assert response.status_code == 200
    assert [url for url, _ in response.redirect_chain] == [
        "/tiny-b/conv2:5",
        "/models/tiny-b/conv2/5/",
    ]
    assert all(status == 301 for _, status in response.redirect_chain)
    assert "conv2:5" in response.content.decode()


def test_renaming_twice_sends_both_older_slugs_straight_to_the_newest(
    client: Client, tiny: NetworkModel
) -> None:
    model_rename(slug="tinynet", new_slug="tiny-b")
    model_rename(slug="tiny-b", new_slug="tiny-c")
    for old in ("tinynet", "tiny-b"):
        response = client.get(f"/models/{old}/conv2/5/?x=1")
        assert response.status_code == 301
        assert response["Location"] == "/models/tiny-c/conv2/5/?x=1"
    assert client.get("/models/tiny-c/conv2/5/").status_code == 200
    assert set(Rename.objects.values_list("old", "new")) == {
        ("tinynet", "tiny-c"),
        ("tiny-b", "tiny-c"),
    }


def test_a_slug_given_back_to_a_model_no_longer_redirects(
    client: Client, tiny: NetworkModel
) -> None:
    model_rename(slug="tinynet", new_slug="tiny-b")
    model_rename(slug="tiny-b", new_slug="tinynet")
    assert client.get("/models/tinynet/conv2/5/").status_code == 200
    response = client.get("/models/tiny-b/conv2/5/")
    assert response.status_code == 301 and response["Location"] == "/models/tinynet/conv2/5/"


def test_a_renamed_layer_answers_301_on_its_layer_and_unit_pages(
    client: Client, tiny: NetworkModel
) -> None:
    # Cached before the rename: the cached copies must not answer for the old name.
    assert client.get("/models/tinynet/conv2/5/").status_code == 200
    assert client.get("/models/tinynet/conv2/").status_code == 200
    assert layer_rename(model_slug="tinynet", name="conv2", new_name="block2") == 1
    expected = {
        "/models/tinynet/conv2/": "/models/tinynet/block2/",
        "/models/tinynet/conv2/?page=1": "/models/tinynet/block2/?page=1",
        "/models/tinynet/conv2/5/": "/models/tinynet/block2/5/",
        f"/models/tinynet@{tiny.version}/conv2/5/": f"/models/tinynet@{tiny.version}/block2/5/",
        "/models/tinynet/conv2/5/cite.json": "/models/tinynet/block2/5/cite.json",
        "/embed/models/tinynet/conv2/5/": "/embed/models/tinynet/block2/5/",
        "/tinynet/conv2:5": "/tinynet/block2:5",
    }
    for old, new in expected.items():
        response = client.get(old)
        assert (response.status_code, response.get("Location")) == (301, new), old
    unit_page = client.get("/models/tinynet/block2/5/")
    assert unit_page.status_code == 200 and "block2:5" in unit_page.content.decode()
    model_page = client.get("/models/tinynet/").content.decode()
    # The layer list and the model's navigation both link the new name; nothing the old one.
    assert 'href="/models/tinynet/block2/"' in model_page
    assert 'href="/models/tinynet/conv2/"' not in model_page


def test_a_layer_renamed_twice_redirects_its_first_name_to_the_newest(
    client: Client, tiny: NetworkModel
) -> None:
    layer_rename(model_slug="tinynet", name="conv2", new_name="block2")
    layer_rename(model_slug="tinynet", name="block2", new_name="stage2")
    for old in ("conv2", "block2"):
        response = client.get(f"/models/tinynet/{old}/5/")
        assert (response.status_code, response["Location"]) == (301, "/models/tinynet/stage2/5/")


def test_layer_renames_follow_their_model_when_it_is_renamed(
    client: Client, tiny: NetworkModel
) -> None:
    layer_rename(model_slug="tinynet", name="conv2", new_name="block2")
    model_rename(slug="tinynet", new_slug="tiny-b")
    response = client.get("/models/tinynet/conv2/5/", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1] == ("/models/tiny-b/block2/5/", 301)


@pytest.mark.parametrize(
    ("slug", "new_slug", "message"),
    [
        ("tinynet", "inceptionv1", "a model is already called 'inceptionv1'"),
        ("tinynet", "Tiny Net", "'Tiny Net' is not a slug"),
        ("tinynet", "tiny/net", "'tiny/net' is not a slug"),
        ("tinynet", "", "'' is not a slug"),
        ("nosuchmodel", "fresh", "no model is called 'nosuchmodel'"),
    ],
)
def test_a_model_rename_is_refused_with_a_reason_and_changes_nothing(
    client: Client,
    inceptionv1: NetworkModel,
    tiny: NetworkModel,
    slug: str,
    new_slug: str,
    message: str,
) -> None:
    with pytest.raises(RenameRefused, match=re.escape(message)):
        model_rename(slug=slug, new_slug=new_slug)
    assert not Rename.objects.exists()
    assert set(NetworkModel.objects.values_list("slug", flat=True)) == {"inceptionv1", "tinynet"}
    assert client.get("/models/tinynet/conv2/5/").status_code == 200


@pytest.mark.parametrize(
    ("name", "new_name", "message"),
    [
        ("conv2", "conv1", "tinynet already has a layer called 'conv1'"),
        ("conv2", "block 2", "'block 2' is not a layer name"),
        ("conv2", "block:2", "'block:2' is not a layer name"),
        ("nolayer", "block2", "tinynet has no layer 'nolayer'"),
    ],
)
def test_a_layer_rename_is_refused_with_a_reason_and_changes_nothing(
    tiny: NetworkModel, name: str, new_name: str, message: str
) -> None:
    with pytest.raises(RenameRefused, match=re.escape(message)):
        layer_rename(model_slug="tinynet", name=name, new_name=new_name)
    assert not Rename.objects.exists()
    assert list(tiny.layers.values_list("name", flat=True)) == ["conv1", "conv2", "logits"]


def test_search_by_an_old_model_or_layer_name_still_finds_the_unit(
    client: Client, tiny: NetworkModel
) -> None:
    model_rename(slug="tinynet", new_slug="tiny-b")
    response = client.get("/search/", {"q": "tinynet conv2:5"})
    assert (response.status_code, response["Location"]) == (302, "/models/tiny-b/conv2/5/")
    layer_rename(model_slug="tiny-b", name="conv2", new_name="block2")
    response = client.get("/search/", {"q": "tinynet conv2:5"})
    assert (response.status_code, response["Location"]) == (302, "/models/tiny-b/block2/5/")


# --- short links ----------------------------------------------------------------------------


def test_a_short_link_answers_301_to_the_units_versioned_url(
    client: Client, tiny: NetworkModel
) -> None:
    unit = _unit(tiny, "conv2", 5)
    response = client.get(f"/u/{unit.pk}")
    assert response.status_code == 301
    assert response["Location"] == f"/models/tinynet@{tiny.version}/conv2/5/"
    assert client.get(response["Location"]).status_code == 200
    model_rename(slug="tinynet", new_slug="tiny-b")  # no second hop through the old name
    assert client.get(f"/u/{unit.pk}")["Location"] == f"/models/tiny-b@{tiny.version}/conv2/5/"


def test_the_unit_page_shows_its_short_link(client: Client, tiny: NetworkModel) -> None:
    unit = _unit(tiny, "conv2", 5)
    html = client.get("/models/tinynet/conv2/5/").content.decode()
    assert f'href="/u/{unit.pk}"' in html


@pytest.mark.parametrize("path", ["/u/999999999", "/u/abc", "/u/"])
def test_an_unknown_short_link_is_404(client: Client, tiny: NetworkModel, path: str) -> None:
    assert client.get(path).status_code == 404


# --- older versions -------------------------------------------------------------------------


@pytest.fixture
def two_versions(tiny: NetworkModel) -> tuple[NetworkModel, NetworkModel]:
    newer = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=2))
    tiny.refresh_from_db()
    assert newer.slug == tiny.slug and newer.version != tiny.version
    assert newer.created > tiny.created
    return tiny, newer


@pytest.mark.parametrize("rest", ["", "conv2/", "conv2/5/"])
def test_an_older_versions_pages_say_so_and_link_to_the_newest(
    client: Client, two_versions: tuple[NetworkModel, NetworkModel], rest: str
) -> None:
    older, newer = two_versions
    response = client.get(f"/models/tinynet@{older.version}/{rest}")
    assert response.status_code == 200
    banner = _banner(response.content.decode())
    assert "older version" in banner and f"tinynet@{older.version}" in banner
    assert f"tinynet@{newer.version}" in banner
    # The newest's equivalent page: its unversioned or its versioned URL.
    (href,) = re.findall(r'href="([^"]*)"', banner)
    assert href in (f"/models/tinynet/{rest}", f"/models/tinynet@{newer.version}/{rest}")
    target = client.get(href)
    assert target.status_code == 200 and not _banner(target.content.decode())


@pytest.mark.parametrize("rest", ["", "conv2/", "conv2/5/"])
def test_the_newest_and_the_unversioned_pages_have_no_older_version_banner(
    client: Client, two_versions: tuple[NetworkModel, NetworkModel], rest: str
) -> None:
    _, newer = two_versions
    for url in (f"/models/tinynet/{rest}", f"/models/tinynet@{newer.version}/{rest}"):
        response = client.get(url)
        assert response.status_code == 200
        assert "older version" not in response.content.decode(), url


def test_a_cached_page_gains_the_banner_when_a_newer_version_is_imported(
    client: Client, tiny: NetworkModel
) -> None:
    url = f"/models/tinynet@{tiny.version}/conv2/5/"
    assert not _banner(client.get(url).content.decode())
    assert client.get(url)["X-Page-Cache"] == "hit"
    newer = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=2))
    banner = _banner(client.get(url).content.decode())
    assert f"tinynet@{newer.version}" in banner


# --- the Cite box ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rest", "title"),
    [("", "TinyNet"), ("conv2/", "TinyNet layer conv2"), ("conv2/5/", "TinyNet conv2:5")],
)
def test_model_layer_and_unit_pages_cite_their_versioned_url(
    client: Client, tiny: NetworkModel, rest: str, title: str
) -> None:
    versioned = f"{SITE}/models/tinynet@{tiny.version}/{rest}"
    html = client.get(f"/models/tinynet/{rest}").content.decode()
    assert f"\\url{{{versioned}}}" in html
    assert f"title = {{{title}}}" in html
    assert f"from {versioned}</p>" in html  # APA: "Retrieved <date>, from <url>"
    assert f'<meta name="citation_title" content="{title}">' in html
    assert f'<link rel="canonical" href="{versioned}">' in html
    jsonld = _jsonld(html)
    assert jsonld["url"] == versioned and jsonld["name"] == title
    assert jsonld["@context"] == "https://schema.org"
    (cite_url,) = re.findall(r'<a href="([^"]*cite\.json)" download>', html)
    assert cite_url == f"/models/tinynet/{rest}cite.json"
    csl = client.get(cite_url)
    assert csl.status_code == 200 and csl["Content-Type"] == "application/json"
    assert csl["Content-Disposition"].startswith("attachment;")
    (item,) = json.loads(csl.content)
    assert item["URL"] == versioned and item["title"] == title and item["type"] == "webpage"
    assert item["version"] == f"tinynet@{tiny.version}"


def test_an_older_versions_cite_box_names_that_version(
    client: Client, two_versions: tuple[NetworkModel, NetworkModel]
) -> None:
    older, _ = two_versions
    url = f"/models/tinynet@{older.version}/conv2/5/"
    html = client.get(url).content.decode()
    assert f'<link rel="canonical" href="{SITE}{url}">' in html
    (item,) = json.loads(client.get(f"{url}cite.json").content)
    assert item["URL"] == f"{SITE}{url}" and older.weights_sha256 in item["note"]


def test_a_name_containing_a_script_end_tag_cannot_break_out_of_the_json_ld(
    client: Client, tiny: NetworkModel
) -> None:
    evil = "Tiny</script><script>alert(1)</script>"
    NetworkModel.objects.filter(pk=tiny.pk).update(display_name=evil)
    unit = _unit(tiny, "conv2", 5)
    unit.curator_label = "edge</script><script>alert(2)</script>"
    unit.save()
    for url in ("/models/tinynet/", "/models/tinynet/conv2/", "/models/tinynet/conv2/5/"):
        html = client.get(url).content.decode()
        assert "<script>alert(" not in html, url
        assert _jsonld(html)["name"].startswith(evil), url  # whole, and the JSON still parses


# --- embeds and oEmbed ----------------------------------------------------------------------


def test_the_embed_card_may_be_framed_and_the_unit_page_may_not(
    client: Client, tiny: NetworkModel
) -> None:
    for _ in ("miss", "hit"):
        embed = client.get("/embed/models/tinynet/conv2/5/")
        assert embed.status_code == 200
        assert embed.get("X-Frame-Options", "").upper() not in ("DENY", "SAMEORIGIN")
        assert "TinyNet conv2:5" in embed.content.decode()
        page = client.get("/models/tinynet/conv2/5/")
        assert page.status_code == 200 and page["X-Frame-Options"] == "DENY"
    assert embed["X-Page-Cache"] == page["X-Page-Cache"] == "hit"


def _oembed(client: Client, url: str, **extra: str) -> Any:
    return client.get("/oembed", {"url": url, "format": "json", **extra})


def test_oembed_describes_a_unit_page_as_a_rich_iframe(client: Client, tiny: NetworkModel) -> None:
    response = _oembed(client, f"{SITE}/models/tinynet/conv2/5/")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    data = response.json()
    assert (data["type"], data["version"]) == ("rich", "1.0")
    assert data["title"] == "TinyNet conv2:5"
    (src,) = re.findall(r'<iframe src="([^"]*)"', data["html"])
    assert src == f"{SITE}/embed/models/tinynet/conv2/5/"
    assert (
        f'width="{data["width"]}"' in data["html"] and f'height="{data["height"]}"' in data["html"]
    )
    assert client.get(src.removeprefix(SITE)).status_code == 200


def test_oembed_of_a_versioned_url_embeds_that_version(client: Client, tiny: NetworkModel) -> None:
    data = _oembed(client, f"{SITE}/models/tinynet@{tiny.version}/conv2/5/").json()
    assert f'src="{SITE}/embed/models/tinynet@{tiny.version}/conv2/5/"' in data["html"]


@pytest.mark.parametrize(
    ("limits", "most"),
    [
        ({}, (360, 420)),
        ({"maxwidth": "200", "maxheight": "150"}, (200, 150)),
        ({"maxwidth": "5000"}, (360, 420)),
    ],
)
def test_oembed_honours_maxwidth_and_maxheight(
    client: Client, tiny: NetworkModel, limits: dict[str, str], most: tuple[int, int]
) -> None:
    data = _oembed(client, f"{SITE}/models/tinynet/conv2/5/", **limits).json()
    assert (data["width"], data["height"]) == most
    assert f'width="{most[0]}" height="{most[1]}"' in data["html"]


@pytest.mark.parametrize(
    "url",
    [
        f"{SITE}/no/such/page/",
        f"{SITE}/models/tinynet/conv2/",  # a page, but not a unit's
        f"{SITE}/models/tinynet/",
        f"{SITE}/models/tinynet/conv2/999/",
        f"{SITE}/models/nosuchmodel/conv2/5/",
        "http://elsewhere.example/models/tinynet/conv2/5/",
    ],
)
def test_oembed_of_anything_but_a_unit_page_of_this_site_is_404(
    client: Client, tiny: NetworkModel, url: str
) -> None:
    assert _oembed(client, url).status_code == 404


def test_oembed_errors_are_json(client: Client, tiny: NetworkModel) -> None:
    for url in (
        f"{SITE}/no/such/page/",
        f"{SITE}/models/tinynet/conv2/",
        "http://elsewhere.example/x/",
    ):
        response = _oembed(client, url)
        assert response.status_code == 404 and "error" in response.json()


def test_oembed_refuses_xml_with_501(client: Client, tiny: NetworkModel) -> None:
    response = client.get("/oembed", {"url": f"{SITE}/models/tinynet/conv2/5/", "format": "xml"})
    assert response.status_code == 501


def test_oembed_of_a_renamed_models_old_url_embeds_the_unit_under_its_new_name(
    tiny: NetworkModel,
) -> None:
    # Old links live on in other sites' posts, and their oEmbed lookups with them.
    model_rename(slug="tinynet", new_slug="tiny-b")
    client = Client(raise_request_exception=False)
    response = _oembed(client, f"{SITE}/models/tinynet/conv2/5/")
    assert response.status_code == 200, f"oEmbed of a renamed model's URL: {response.status_code}"
    assert f'src="{SITE}/embed/models/tiny-b/conv2/5/"' in response.json()["html"]


def test_oembed_html_escapes_the_title_it_puts_in_the_iframe(
    client: Client, tiny: NetworkModel
) -> None:
    # Consumers paste `html` into their pages as it is: nothing in it may come unescaped.
    NetworkModel.objects.filter(pk=tiny.pk).update(display_name='Tiny" onload="alert(1)')
    data = _oembed(client, f"{SITE}/models/tinynet/conv2/5/").json()
    assert 'onload="alert(1)' not in data["html"], data["html"]


def test_the_unit_page_advertises_its_oembed(client: Client, tiny: NetworkModel) -> None:
    html = client.get("/models/tinynet/conv2/5/").content.decode()
    (href,) = re.findall(
        r'<link rel="alternate" type="application/json\+oembed" href="([^"]*)"', html
    )
    link = urlsplit(href.replace("&amp;", "&"))
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"{SITE}/oembed"
    query = parse_qs(link.query)
    assert query["url"] == [f"{SITE}/models/tinynet@{tiny.version}/conv2/5/"]
    assert query["format"] == ["json"]
    assert client.get(link.path, {k: v[0] for k, v in query.items()}).json()["type"] == "rich"


# --- sitemaps -------------------------------------------------------------------------------


def test_sitemap_xml_is_an_index_of_the_model_layer_and_unit_sections(
    client: Client, inceptionv1: NetworkModel
) -> None:
    response = client.get("/sitemap.xml")
    xml = response.content.decode()
    assert response.status_code == 200 and "<sitemapindex" in xml
    locations = re.findall(r"<loc>([^<]*)</loc>", xml)
    assert locations == [f"{SITE}/sitemap-{section}.xml" for section in SITEMAPS]


def test_the_units_section_lists_versioned_unit_urls(
    client: Client, inceptionv1: NetworkModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(UnitSitemap, "limit", 100)  # a page of the section, not 8,000 URLs
    xml = client.get("/sitemap-units.xml", {"p": "1"}).content.decode()
    locations = re.findall(r"<loc>([^<]*)</loc>", xml)
    assert len(locations) == 100
    first = Unit.objects.select_related("layer__model").order_by("pk").first()
    assert first is not None and first.layer.model == inceptionv1
    assert f"{SITE}/models/inceptionv1@{inceptionv1.version}/{first.layer.name}/0/" in locations
    assert all(f"/models/inceptionv1@{inceptionv1.version}/" in loc for loc in locations)


def test_the_layers_and_models_sections_list_versioned_urls(
    client: Client, inceptionv1: NetworkModel
) -> None:
    models = client.get("/sitemap-models.xml").content.decode()
    assert f"<loc>{SITE}/models/inceptionv1@{inceptionv1.version}/</loc>" in models
    layers = client.get("/sitemap-layers.xml").content.decode()
    assert f"<loc>{SITE}/models/inceptionv1@{inceptionv1.version}/mixed4c/</loc>" in layers


def test_sitemap_sections_split_at_50000_urls(
    client: Client, inceptionv1: NetworkModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ModelSitemap.limit == LayerSitemap.limit == 50_000
    assert UnitSitemap.limit == 10_000  # smaller files for the big section
    monkeypatch.setattr(UnitSitemap, "limit", 1000)  # the same split, on fewer rows
    units = Unit.objects.filter(layer__model__status="ready").count()
    pages = math.ceil(units / 1000)
    assert pages > 1
    index = client.get("/sitemap.xml").content.decode()
    expected = [f"{SITE}/sitemap-units.xml"] + [
        f"{SITE}/sitemap-units.xml?p={p}" for p in range(2, pages + 1)
    ]
    assert [loc for loc in re.findall(r"<loc>([^<]*)</loc>", index) if "units" in loc] == expected
    last = client.get("/sitemap-units.xml", {"p": str(pages)}).content.decode()
    assert last.count("<loc>") == units - 1000 * (pages - 1)
    assert client.get("/sitemap-units.xml", {"p": str(pages + 1)}).status_code == 404
