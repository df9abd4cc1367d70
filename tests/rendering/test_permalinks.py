import json

import pytest
from django.core.cache import caches
from django.test import Client

from neurons.models import NetworkModel
from rendering.services import render_job_run, render_jobs_create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("/inceptionv1/4c:447", "/models/inceptionv1/mixed4c/447/"),
        ("/inceptionv1/mixed4c:447/", "/models/inceptionv1/mixed4c/447/"),
        ("/inceptionv1/conv2d0:3", "/models/inceptionv1/conv2d0/3/"),
        ("/models/inceptionv1/mixed4c_0/447/", "/models/inceptionv1/mixed4c/447/"),
        ("/models/inceptionv1/mixed4c_0/", "/models/inceptionv1/mixed4c/"),
    ],
)
def test_microscope_and_circuits_shorthands_redirect_permanently(
    client: Client, inceptionv1: NetworkModel, old: str, new: str
) -> None:
    response = client.get(old)
    assert response.status_code == 301
    assert response["Location"] == new
    assert client.get(new).status_code == 200


def test_microscope_urls_without_a_trailing_slash_reach_the_unit(
    client: Client, inceptionv1
) -> None:
    response = client.get("/models/inceptionv1/mixed4c_0/447", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/models/inceptionv1/mixed4c/447/"


def test_versioned_shorthand_keeps_the_version(client: Client, inceptionv1) -> None:
    response = client.get(f"/inceptionv1@{inceptionv1.version}/4c:447")
    assert response["Location"] == f"/models/inceptionv1@{inceptionv1.version}/mixed4c/447/"


@pytest.mark.parametrize("url", ["/inceptionv1/9z:1", "/inceptionv1/4c:512", "/nomodel/4c:1"])
def test_bad_shorthands_are_404(client: Client, inceptionv1, url: str) -> None:
    assert client.get(url).status_code == 404


def test_the_cite_box_names_the_versioned_url_and_weights(client: Client, inceptionv1) -> None:
    html = client.get("/models/inceptionv1/mixed4c/447/").content.decode()
    versioned = f"http://testserver/models/inceptionv1@{inceptionv1.version}/mixed4c/447/"
    assert "@misc{microscope_inceptionv1_" in html
    assert f"\\url{{{versioned}}}" in html
    assert inceptionv1.weights_sha256 in html and "untrained (random) weights" in html
    assert f'<meta name="citation_public_url" content="{versioned}">' in html
    csl = client.get("/models/inceptionv1/mixed4c/447/cite.json")
    assert csl["Content-Disposition"].startswith("attachment;")
    (item,) = json.loads(csl.content)
    assert item["URL"] == versioned and item["title"] == "InceptionV1 mixed4c:447"
    assert item["version"] == f"inceptionv1@{inceptionv1.version}"


def test_pages_answer_conditional_gets_with_304(client: Client, inceptionv1) -> None:
    first = client.get("/models/inceptionv1/")
    assert first.has_header("ETag")
    again = client.get("/models/inceptionv1/", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def test_the_unit_page_costs_a_fixed_number_of_queries(
    client: Client, inceptionv1, small_renders, django_assert_max_num_queries
) -> None:
    with django_assert_max_num_queries(12) as bare:
        client.get("/models/inceptionv1/conv2d2/3/")
    layer = inceptionv1.layers.get(name="conv2d2")
    params = {**small_renders, "diversity": 2}
    for technique, extra in (("channel", small_renders), ("diversity", params)):
        (job,) = render_jobs_create(
            layer=layer, technique=technique, units=[3], params=extra, enqueue=False
        )
        render_job_run(job_id=job.pk)
    with django_assert_max_num_queries(len(bare.captured_queries)) as rich:
        html = client.get("/models/inceptionv1/conv2d2/3/").content.decode()
    assert html.count("visualization of conv2d2:3") == 1  # the channel tab, open by default
    assert len(rich.captured_queries) == len(bare.captured_queries)
    caches["fragments"].clear()  # as a process that has not built this model's pages yet
    with django_assert_max_num_queries(len(bare.captured_queries)) as tab:
        html = client.get("/models/inceptionv1/conv2d2/3/?technique=diversity").content.decode()
    assert html.count("visualization of conv2d2:3") == 2  # its 2 diversity images
    assert len(tab.captured_queries) == len(bare.captured_queries)
