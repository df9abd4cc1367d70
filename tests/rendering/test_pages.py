import pytest
from django.test import Client

from rendering.models import RenderJob
from rendering.services import render_job_run, render_jobs_create

pytestmark = pytest.mark.django_db


def test_unit_and_layer_pages_show_renders_and_how_they_were_made(
    client: Client, inceptionv1, small_renders
) -> None:
    layer = inceptionv1.layers.get(name="mixed3a")
    (job,) = render_jobs_create(
        layer=layer, technique="channel", units=[7], params=small_renders, enqueue=False
    )
    render_job_run(job_id=job.pk)
    html = client.get("/models/inceptionv1/mixed3a/7/").content.decode()
    assert 'alt="Channel visualization of mixed3a:7"' in html
    assert "2 steps · 32 px · seed 0" in html
    assert f"{inceptionv1}" in html
    assert "Render now" not in html
    grid = client.get("/models/inceptionv1/mixed3a/").content.decode()
    assert 'alt="channel visualization of mixed3a:7"' in grid
    assert grid.count('loading="lazy"') == 1  # one unit rendered, the others are placeholders


def test_render_now_queues_one_job_and_the_page_polls_it(client: Client, inceptionv1) -> None:
    page = client.get("/models/inceptionv1/mixed3a/9/").content.decode()
    assert "Render now" in page
    response = client.post("/models/inceptionv1/mixed3a/9/render/")
    assert response.status_code == 302
    assert response["Location"] == "/models/inceptionv1/mixed3a/9/?technique=channel"
    client.post("/models/inceptionv1/mixed3a/9/render/")
    job = RenderJob.objects.get()
    assert (job.unit_start, job.unit_stop, job.status) == (9, 10, "queued")
    page = client.get("/models/inceptionv1/mixed3a/9/").content.decode()
    assert "data-status-url" in page and "Render now" not in page
    assert "Queued: next in line; no estimate yet" in page
    status = client.get("/models/inceptionv1/mixed3a/9/status.json").json()
    assert status == {
        "technique": "channel",
        "ready": False,
        "renders": 0,
        "job": {"status": "queued", "progress": 0.0, "ahead": 0, "estimate_s": None},
    }


def test_render_now_is_rate_limited_with_retry_after(client: Client, inceptionv1, settings) -> None:
    settings.RENDER_NOW_PER_MINUTE = 1
    assert client.post("/models/inceptionv1/mixed3a/20/render/").status_code == 302
    response = client.post("/models/inceptionv1/mixed3a/21/render/")
    assert response.status_code == 429 and response["Retry-After"] == "60"


def test_render_now_needs_post(client: Client, inceptionv1) -> None:
    assert client.get("/models/inceptionv1/mixed3a/9/render/").status_code == 405
