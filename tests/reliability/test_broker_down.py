"""The broker (Redis) stops: job rows are kept with a clear note, requests answer, and the
reaper or a retry sends the jobs once it is back. A private redis-server plays the broker."""

import threading
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from microscope_site.broker import BROKER_UNREACHABLE, task_send
from microscope_site.celery import app
from neurons.models import ImportJob, NetworkModel
from neurons.services import import_job_create, import_job_retry, model_import
from rendering.engine.zoo import WeightsSpec
from rendering.models import RenderJob
from rendering.services import render_job_retry, render_jobs_create, render_jobs_reap
from tests.reliability.conftest import RedisServer, SilentServer

pytestmark = pytest.mark.django_db

SMALL = {"size": 32, "steps": 2}


def _use_broker(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    # Celery reads CELERY_BROKER_URL from the environment before its own setting.
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    monkeypatch.setitem(app.conf, "broker_url", url)


@pytest.fixture
def tiny(tinynet: Any) -> NetworkModel:
    return model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=4))


def test_jobs_made_while_the_broker_is_down_stay_queued_and_are_sent_when_it_is_back(
    private_redis: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    tiny: NetworkModel,
    staff_client: Client,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _use_broker(monkeypatch, private_redis.url(0))
    layer = tiny.layers.get(name="conv2")
    with django_capture_on_commit_callbacks(execute=True):
        (sent,) = render_jobs_create(layer=layer, technique="channel", params=SMALL, units=[0])
    assert private_redis.llen("gpu") == 1 and sent.error == ""

    private_redis.kill()
    with django_capture_on_commit_callbacks(execute=True):
        (job,) = render_jobs_create(layer=layer, technique="channel", params=SMALL, units=[1])
    assert job.error.startswith(f"{BROKER_UNREACHABLE} (")  # the caller's copy says so too
    job.refresh_from_db()
    assert job.status == "queued" and job.error.startswith(BROKER_UNREACHABLE)
    assert BROKER_UNREACHABLE in job.log

    # Staff see the note in the API and the admin.
    detail = staff_client.get(reverse("api:renderjob-detail", kwargs={"pk": job.pk}))
    assert detail.status_code == 200 and detail.json()["error"].startswith(BROKER_UNREACHABLE)
    admin = staff_client.get(f"/admin/rendering/renderjob/{job.pk}/change/")
    assert admin.status_code == 200 and BROKER_UNREACHABLE in admin.content.decode()

    # The visitor's "render now" and the staff API trigger answer normally, not with a 500.
    with django_capture_on_commit_callbacks(execute=True):
        button = client.post("/models/tinynet/conv2/2/render/", REMOTE_ADDR="10.0.0.9")
    assert button.status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        api = staff_client.post(
            reverse("api:model-render", kwargs={"ref": "tinynet"}),
            {"layers": ["conv1"], "params": SMALL, "units": [3]},
            content_type="application/json",
        )
    assert api.status_code == 202
    with django_capture_on_commit_callbacks(execute=True):
        imported = import_job_create(registry_key="tinynet", weights_source="random", seed=9)
    imported.refresh_from_db()
    assert imported.status == "queued" and imported.error.startswith(BROKER_UNREACHABLE)
    unsent = RenderJob.objects.filter(error__startswith=BROKER_UNREACHABLE)
    assert set(unsent.values_list("status", flat=True)) == {"queued"}
    unsent_ids = sorted(unsent.values_list("pk", flat=True))
    assert len(unsent_ids) == 3  # the job above, the button's and the API's

    # Back (empty: no persistence). The reaper, on beat's schedule, sends every unsent job.
    private_redis.start()
    with django_capture_on_commit_callbacks(execute=True):
        resent = render_jobs_reap()
    assert sorted(resent) == unsent_ids and private_redis.llen("gpu") == 3
    assert not RenderJob.objects.filter(error__startswith="not queued").exists()
    with django_capture_on_commit_callbacks(execute=True):
        import_job_retry(job=ImportJob.objects.get(pk=imported.pk))
    assert private_redis.llen("default") == 1
    assert ImportJob.objects.get(pk=imported.pk).error == ""


def test_a_retry_from_the_admin_sends_an_unsent_job(
    private_redis: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    tiny: NetworkModel,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _use_broker(monkeypatch, private_redis.url(0))
    private_redis.kill()
    layer = tiny.layers.get(name="conv1")
    with django_capture_on_commit_callbacks(execute=True):
        (job,) = render_jobs_create(layer=layer, technique="channel", params=SMALL, units=[0])
    assert job.error.startswith(BROKER_UNREACHABLE)
    private_redis.start()
    with django_capture_on_commit_callbacks(execute=True):
        render_job_retry(job=job)
    job.refresh_from_db()
    assert job.status == "queued" and job.error == ""
    assert private_redis.llen("gpu") == 1


def test_a_hung_broker_answers_within_a_second_or_two(
    silent_server: SilentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_broker(monkeypatch, f"redis://127.0.0.1:{silent_server.port}/0")
    notes: list[str] = []
    sender = threading.Thread(
        target=lambda: notes.append(
            task_send(
                "rendering.tasks.render_job_task", args=[1], task_id="hung-broker", queue="gpu"
            )
        )
    )
    sender.start()
    sender.join(timeout=15)  # kombu's defaults would wait for minutes on a broker that hangs
    assert not sender.is_alive()
    assert notes[0].startswith(f"{BROKER_UNREACHABLE} (") and "imeout" in notes[0]
