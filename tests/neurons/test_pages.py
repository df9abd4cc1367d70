import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from neurons.models import NetworkModel, Technique, Unit
from neurons.services import model_import
from rendering.engine.zoo import WeightsSpec
from rendering.models import Render, RenderJob


def test_model_list_links_each_model_and_says_untrained(
    client: Client, inceptionv1: NetworkModel
) -> None:
    response = client.get("/models/")
    assert response.status_code == 200
    assert b'href="/models/inceptionv1/"' in response.content
    assert b"untrained weights" in response.content


def test_model_page_lists_layers_with_unit_counts_and_version(
    client: Client, inceptionv1: NetworkModel
) -> None:
    response = client.get("/models/inceptionv1/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'href="/models/inceptionv1/mixed4c/"' in html
    assert "<td>512</td>" in html  # mixed4c's units
    assert inceptionv1.version in html
    assert "224 × 224" in html
    assert "Untrained weights" in html


def test_layer_page_lists_units_and_pages(client: Client, inceptionv1: NetworkModel) -> None:
    response = client.get("/models/inceptionv1/mixed4c/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'href="/models/inceptionv1/mixed4c/0/"' in html
    assert "page 1 of 3" in html
    second = client.get("/models/inceptionv1/mixed4c/?page=3").content.decode()
    assert 'href="/models/inceptionv1/mixed4c/447/"' in second


@pytest.mark.parametrize("ref", ["inceptionv1", "inceptionv1@{version}"])
@pytest.mark.parametrize(("page", "first", "stop"), [(1, 0, 200), (3, 400, 512), (99, 400, 512)])
def test_a_layer_pages_grid_links_exactly_its_units(
    client: Client, inceptionv1: NetworkModel, ref: str, page: int, first: int, stop: int
) -> None:
    """The grid's links are the units' own URLs (as `reverse` writes them), one per unit of
    the page, in order; a page past the end shows the last."""
    ref = ref.format(version=inceptionv1.version)
    html = client.get(f"/models/{ref}/mixed4c/?page={page}").content.decode()
    grid = html[html.index('<ul class="grid"') :]
    linked = re.findall(r'<li><a href="([^"?]+)(?:\?[^"]*)?">', grid)
    assert linked == [
        reverse("neurons:unit", kwargs={"model": ref, "layer": "mixed4c", "index": index})
        for index in range(first, stop)
    ]


def test_unit_page_and_its_versioned_permalink_show_the_same_unit(
    client: Client, inceptionv1: NetworkModel
) -> None:
    latest = client.get("/models/inceptionv1/mixed4c/447/")
    versioned = client.get(f"/models/inceptionv1@{inceptionv1.version}/mixed4c/447/")
    assert latest.status_code == versioned.status_code == 200
    for response in (latest, versioned):
        html = response.content.decode()
        assert "mixed4c:447" in html
        assert f"/models/inceptionv1@{inceptionv1.version}/mixed4c/447/" in html
        assert "Untrained weights" in html


@pytest.mark.parametrize(
    "url",
    [
        "/models/nosuchmodel/",
        "/models/inceptionv1@000000000000/",
        "/models/inceptionv1/nosuchlayer/",
        "/models/inceptionv1/mixed4c/512/",
        "/models/inceptionv1/mixed4c/99999/",
        "/models/inceptionv1/mixed4c/-1/",
        "/models/inceptionv1/mixed4c/abc/",
        "/models/Inception V1/",
    ],
)
def test_unknown_models_layers_and_units_are_404(
    client: Client, inceptionv1: NetworkModel, url: str
) -> None:
    assert client.get(url).status_code == 404


def test_home_shows_the_zoo(client: Client, inceptionv1: NetworkModel) -> None:
    html = client.get("/").content.decode()
    assert "The model zoo" in html and 'href="/models/inceptionv1/"' in html


# --- the browsing loop: tabs, navigation, empty techniques (issue 17) -----------------------


@pytest.fixture
def tiny(tinynet: Any, db: None) -> NetworkModel:
    return model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=1))


def _unit(model: NetworkModel, layer: str, index: int) -> Unit:
    return Unit.objects.select_related("layer__model").get(
        layer__model=model, layer__name=layer, index=index
    )


def _render(unit: Unit, technique: str, variant: int = 0) -> Render:
    name = f"renders/{unit.pk}-{technique}-{variant}"
    return Render.objects.create(
        unit=unit,
        layer=unit.layer,
        technique=Technique.objects.get(slug=technique),
        params={"steps": 2, "size": 32, "seed": 0, "lr": 0.05},
        params_hash="p1",
        variant=variant,
        image=f"{name}.png",
        thumbnail=f"{name}-thumb.png",
        image_sha256="0" * 64,
        objective=1.25,
        metrics={"device": "cpu"},
    )


def _current_tab(html: str) -> str:
    (tab,) = re.findall(r'data-tab="(\w+)" aria-current="page"', html)
    return tab


def _tabs(html: str) -> list[str]:
    nav = html.split('<nav class="tabs"')[1].split("</nav>")[0]
    return re.findall(r'data-tab="(\w+)"', nav)


def _empty_tabs(html: str) -> list[str]:
    nav = html.split('<nav class="tabs"')[1].split("</nav>")[0]
    return re.findall(r'data-tab="(\w+)"(?: aria-current="page")? class="empty"', nav)


def test_a_unit_page_opens_on_a_tab_with_content_and_every_tab_is_its_own_url(
    client: Client, tiny: NetworkModel
) -> None:
    unit = _unit(tiny, "conv2", 5)
    _render(unit, "negative")
    html = client.get("/models/tinynet/conv2/5/").content.decode()
    assert _tabs(html) == [
        "channel", "neuron", "negative", "diversity", "examples", "tuning", "connections"
    ]  # fmt: skip
    assert _current_tab(html) == "negative"  # the first tab with something to show
    assert _empty_tabs(html) == [t for t in _tabs(html) if t != "negative"]
    assert 'alt="Negative visualization of conv2:5"' in html and "Render now" not in html
    channel = client.get("/models/tinynet/conv2/5/?technique=channel").content.decode()
    assert _current_tab(channel) == "channel"
    assert "No channel for this unit yet." in channel
    assert "Negative visualization" not in channel  # only the open tab is built
    form = channel.split('<form method="post" class="render-now"')[1].split("</form>")[0]
    assert 'action="/models/tinynet/conv2/5/render/"' in form
    assert '<input type="hidden" name="technique" value="channel">' in form
    tuning = client.get("/models/tinynet/conv2/5/?technique=tuning").content.decode()
    assert _current_tab(tuning) == "tuning" and "No tuning curves for this unit yet." in tuning
    assert "computes it for all of conv2 at once" in tuning


def test_a_neuron_layers_unit_has_no_channel_tab_and_an_unknown_technique_is_404(
    client: Client, tiny: NetworkModel
) -> None:
    html = client.get("/models/tinynet/logits/3/?technique=channel").content.decode()
    assert "channel" not in _tabs(html) and _current_tab(html) == "neuron"
    response = client.get("/models/tinynet/conv2/5/?technique=deepdreams")
    assert response.status_code == 404
    assert client.get("/models/tinynet/conv2/?technique=nope").status_code == 404


def test_every_model_page_carries_the_layer_navigation_with_the_current_layer(
    client: Client, tiny: NetworkModel
) -> None:
    for url, current in (
        ("/models/tinynet/", None),
        ("/models/tinynet/conv2/", ("page", "conv2")),
        ("/models/tinynet/conv2/5/", ("location", "conv2")),
    ):
        html = client.get(url).content.decode()
        nav = html.split('<nav class="modelnav"')[1].split("</nav>")[0]
        names = re.findall(r'href="/models/tinynet/(\w+)/"', nav)
        assert names == ["conv1", "conv2", "logits"], url
        marked = re.findall(r'href="/models/tinynet/(\w+)/" aria-current="(\w+)"', nav)
        assert marked == ([] if current is None else [(current[1], current[0])]), url
        if current is None:
            assert 'href="/models/tinynet/" aria-current="page"' in nav


def test_previous_and_next_unit_and_layer_sit_beside_the_title_and_keep_the_tab(
    client: Client, tiny: NetworkModel
) -> None:
    html = client.get("/models/tinynet/conv2/5/?technique=tuning").content.decode()
    title = html.split('<div class="title-row">')[1].split("</div>")[0]
    links = dict(re.findall(r'data-key="(.)" href="([^"]+)"', title))
    assert links == {
        "k": "/models/tinynet/conv2/4/?technique=tuning",
        "j": "/models/tinynet/conv2/6/?technique=tuning",
        "[": "/models/tinynet/conv1/",
        "]": "/models/tinynet/logits/",
    }
    first = client.get("/models/tinynet/conv1/0/?technique=channel").content.decode()
    steps = first.split('<nav class="steps"')[1].split("</nav>")[0]
    assert 'data-key="k"' not in steps and 'data-key="[" ' not in steps
    assert 'data-key="]" href="/models/tinynet/conv2/?technique=channel"' in steps
    last = client.get("/models/tinynet/conv2/15/").content.decode()
    assert 'data-key="j"' not in last.split('<nav class="steps"')[1].split("</nav>")[0]


def test_render_now_queues_the_tabs_technique_and_shows_the_place_in_the_queue(
    client: Client, tiny: NetworkModel
) -> None:
    conv1 = tiny.layers.get(name="conv1")
    for index in (0, 1):  # two jobs queued before ours
        RenderJob.objects.create(
            layer=conv1,
            technique=Technique.objects.get(slug="channel"),
            params={},
            params_hash=f"h{index}",
            unit_start=index,
            unit_stop=index + 1,
        )
    response = client.post("/models/tinynet/conv2/5/render/", {"technique": "diversity"})
    assert response.status_code == 302
    assert response["Location"] == "/models/tinynet/conv2/5/?technique=diversity"
    job = RenderJob.objects.get(technique__slug="diversity")
    assert (job.layer.name, job.unit_start, job.unit_stop) == ("conv2", 5, 6)
    html = client.get(response["Location"]).content.decode()
    assert "Queued: 2 jobs ahead of it; no estimate yet" in html and "Render now" not in html
    # Recent finished jobs give the estimate: 2 channel jobs of 10 s, then ours (30 s).
    now = timezone.now()
    for slug, seconds in (("channel", 10), ("diversity", 30)):
        RenderJob.objects.create(
            layer=conv1,
            technique=Technique.objects.get(slug=slug),
            params={},
            params_hash=f"done-{slug}",
            status=RenderJob.Status.SUCCEEDED,
            started=now - timedelta(seconds=seconds),
            finished=now,
        )
    status = client.get("/models/tinynet/conv2/5/status.json?technique=diversity").json()
    assert status["job"] == {"status": "queued", "progress": 0.0, "ahead": 2, "estimate_s": 50}
    assert status["ready"] is False


def test_render_now_for_a_layer_technique_queues_its_layer_and_refuses_clearly(
    client: Client, tiny: NetworkModel, settings: Any
) -> None:
    response = client.post("/models/tinynet/conv2/5/render/", {"technique": "tuning"})
    assert response.status_code == 302
    (job,) = RenderJob.objects.filter(technique__slug="tuning")
    assert job.layer.name == "conv2"
    again = client.post("/models/tinynet/conv2/5/render/", {"technique": "tuning"})
    assert again.status_code == 302 and RenderJob.objects.filter(technique__slug="tuning").count()
    assert RenderJob.objects.filter(technique__slug="tuning").count() == 1  # deduplicated
    connections = client.post("/models/tinynet/conv2/5/render/", {"technique": "connections"})
    assert connections.status_code == 302
    pairs = RenderJob.objects.filter(technique__slug="connections")
    # Every pair that touches conv2: its inputs from conv1 and its outputs to the logits.
    assert {(p.layer.name, p.params["source"]) for p in pairs} == {
        ("conv2", "conv1"),
        ("logits", "conv2"),
    }
    examples = client.post("/models/tinynet/conv2/5/render/", {"technique": "examples"})
    assert examples.status_code == 400 and b"no dataset is registered" in examples.content
    bad = client.post("/models/tinynet/conv2/5/render/", {"technique": "deepdream"})
    assert bad.status_code == 400 and b"has no &#x27;deepdream&#x27; tab" in bad.content
    settings.RENDER_NOW_PER_MINUTE = 0
    limited = client.post("/models/tinynet/conv1/5/render/", {"technique": "tuning"})
    assert limited.status_code == 429 and limited["Retry-After"] == "60"


def test_a_layer_opens_on_a_technique_with_content_and_says_when_one_is_empty(
    client: Client, tiny: NetworkModel
) -> None:
    bare = client.get("/models/tinynet/conv2/").content.decode()
    assert _current_tab(bare) == "channel" and 'class="empty" aria-hidden' not in bare
    assert "No channel for any unit of conv2 yet." in bare and "Render these" in bare
    assert "Queue this layer" not in bare  # staff only
    _render(_unit(tiny, "conv2", 3), "neuron")
    html = client.get("/models/tinynet/conv2/").content.decode()
    assert _current_tab(html) == "neuron"
    assert 'alt="neuron visualization of conv2:3"' in html
    assert html.count('<span class="empty" aria-hidden="true">') == 15  # the other units
    diversity = client.get("/models/tinynet/conv2/?technique=diversity").content.decode()
    assert "No diversity for any unit of conv2 yet. This layer has " in diversity
    assert '<a href="?technique=neuron">neuron</a>.' in diversity


def test_render_these_queues_the_shown_units_and_staff_queue_the_whole_layer(
    client: Client, tiny: NetworkModel, staff_client: Client, settings: Any
) -> None:
    response = client.post("/models/tinynet/conv2/render/", {"technique": "negative", "page": "1"})
    assert response.status_code == 302
    assert response["Location"] == "/models/tinynet/conv2/?technique=negative&page=1"
    jobs = RenderJob.objects.filter(technique__slug="negative")
    assert sorted((j.unit_start, j.unit_stop) for j in jobs)[0][0] == 0
    assert max(j.unit_stop for j in jobs) == 16
    assert {j.params["steps"] for j in jobs} == {settings.RENDER_NOW_STEPS}
    assert client.post("/models/tinynet/conv2/queue/", {"technique": "neuron"}).status_code == 403
    page = staff_client.get("/models/tinynet/conv2/?technique=neuron").content.decode()
    assert "Queue this layer" in page
    queued = staff_client.post("/models/tinynet/conv2/queue/", {"technique": "neuron"})
    assert queued.status_code == 302
    neuron = RenderJob.objects.filter(technique__slug="neuron")
    assert neuron.exists() and {j.params["steps"] for j in neuron} == {512}


def test_a_layer_page_links_its_weight_matrix_once_computed(
    client: Client, tiny: NetworkModel, small_renders: Any
) -> None:
    from rendering.connections import connection_jobs_create
    from rendering.services import render_job_run

    assert "weight matrix" not in client.get("/models/tinynet/conv2/").content.decode()
    for job in connection_jobs_create(model=tiny, top=4, enqueue=False):
        render_job_run(job_id=job.pk)
    html = client.get("/models/tinynet/conv2/").content.decode()
    assert '<a href="/models/tinynet/conv2/weights/">weight matrix</a>' in html
