from typing import Any

import numpy as np
import pytest
from rest_framework.test import APIClient

from neurons.models import Technique
from rendering.models import (
    Connection,
    Dataset,
    LayerConnection,
    Render,
    RenderJob,
    TuningCurve,
    UnitExamples,
)

pytestmark = pytest.mark.django_db


def _render(unit: Any, name: str = "a") -> Render:
    return Render.objects.create(
        unit=unit,
        layer=unit.layer,
        technique=Technique.objects.get(slug="channel"),
        params={"steps": 2},
        params_hash="h" * 64,
        image=f"renders/{name}.png",
        thumbnail=f"renders/{name}-96.png",
        image_sha256="0" * 64,
        objective=1.5,
        metrics={"steps_per_s": 3.0},
    )


def test_renders_of_a_unit_have_absolute_image_and_thumbnail_urls(unit: Any) -> None:
    render = _render(unit)
    rows = APIClient().get("/api/v1/renders/", {"unit": unit.pk}).json()["results"]
    assert [r["id"] for r in rows] == [render.pk]
    row = rows[0]
    assert row["image_url"] == "http://testserver/media/renders/a.png"
    assert row["thumbnail_url"] == "http://testserver/media/renders/a-96.png"
    assert row["technique"] == "channel" and row["params"] == {"steps": 2}
    assert row["metrics"] == {"steps_per_s": 3.0} and row["objective"] == 1.5
    assert APIClient().get("/api/v1/renders/", {"technique": "neuron"}).json()["results"] == []


def test_dataset_examples_statistics_and_tuning_curves(unit: Any) -> None:
    dataset = Dataset.objects.create(
        slug="pets",
        name="Pets",
        location="/data",
        image_count=2,
        manifest="m.jsonl",
        manifest_sha256="1" * 64,
    )
    entry = {
        "image": 0,
        "path": "cat.jpg",
        "value": 2.5,
        "y": 1,
        "x": 2,
        "box": [0, 0, 64, 64],
        "full": "examples/full/cat.jpg",
    }
    UnitExamples.objects.create(
        unit=unit,
        dataset=dataset,
        params_hash="e" * 64,
        top=[entry],
        bottom=[],
        crop_size=64,
        negative_source="output",
        sprite_top="s/top.jpg",
        sprite_bottom="s/bottom.jpg",
        stats={"count": 2, "mean": 0.5},
    )
    TuningCurve.objects.create(
        unit=unit,
        family="hue",
        params_hash="t" * 64,
        grid={"hue": [0, 180]},
        responses=[0.1, 0.9],
        summary={"preferred": {"hue": 180}},
        svg="<svg/>",
    )
    (examples,) = APIClient().get("/api/v1/examples/", {"unit": unit.pk}).json()["results"]
    assert examples["dataset"] == "pets"
    assert examples["statistics"] == {"count": 2, "mean": 0.5}
    assert examples["top"][0]["full_url"] == "http://testserver/media/examples/full/cat.jpg"
    assert examples["top"][0]["value"] == 2.5 and "full" not in examples["top"][0]
    (curve,) = APIClient().get("/api/v1/tuning-curves/", {"unit": unit.pk}).json()["results"]
    assert curve["family"] == "hue" and curve["responses"] == [0.1, 0.9]


def test_connections_in_and_out_with_top_n(inceptionv1: Any) -> None:
    conv1, conv2 = (inceptionv1.layers.get(name=n) for n in ("conv2d1", "conv2d2"))
    pair = LayerConnection.objects.create(
        source=conv1, target=conv2, method="direct", kernel_size=3, matrix="weights/m.npy"
    )
    target = conv2.units.get(index=5)
    kernels = np.arange(27, dtype=np.float16).reshape(3, 3, 3)
    Connection.objects.create(
        unit=target,
        direction="in",
        pair=pair,
        other_indices=[3, 1, 7],
        strengths=[0.9, -0.5, 0.2],
        kernels=kernels.tobytes(),
    )
    Connection.objects.create(
        unit=target,
        direction="out",
        pair=pair,
        other_indices=[0],
        strengths=[0.1],
        kernels=kernels[:1].tobytes(),
    )
    thumb = _render(conv1.units.get(index=3), "t3")
    url = f"/api/v1/units/{target.pk}/connections/"
    found = APIClient().get(url, {"direction": "in", "top": 2}).json()["connections"]
    assert [(c["layer"], c["index"], c["strength"]) for c in found] == [
        ("conv2d1", 3, 0.9),
        ("conv2d1", 1, -0.5),
    ]
    assert found[0]["unit"] == conv1.units.get(index=3).pk
    assert found[0]["url"] == f"http://testserver/api/v1/units/{found[0]['unit']}/"
    assert found[0]["kernel"] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]
    assert found[0]["sign"] == "excitatory"  # all its weights are positive
    assert found[0]["thumbnail_url"].endswith(thumb.thumbnail.name)
    assert found[1]["thumbnail_url"] is None
    both = APIClient().get(url).json()["connections"]
    assert [c["direction"] for c in both] == ["in", "in", "in", "out"]
    bad = APIClient().get(url, {"direction": "sideways"})
    assert bad.status_code == 400 and "direction" in bad.json()["error"]["detail"]


def test_jobs_show_status_and_progress_and_errors_only_to_staff(api: Any, inceptionv1: Any) -> None:
    from rendering.services import render_jobs_create

    (job,) = render_jobs_create(
        layer=inceptionv1.layers.get(name="mixed4c"),
        technique="channel",
        units=[447],
        enqueue=False,
    )
    RenderJob.objects.filter(pk=job.pk).update(progress=0.25, error="Traceback: secret path")
    anon = api["anon"].get(f"/api/v1/jobs/{job.pk}/").json()
    assert anon["status"] == "queued" and anon["progress"] == 0.25 and anon["error"] is None
    assert anon["unit_start"] == 447 and anon["technique"] == "channel"
    assert api["staff"].get(f"/api/v1/jobs/{job.pk}/").json()["error"] == "Traceback: secret path"
    queued = api["anon"].get("/api/v1/jobs/", {"status": "queued"}).json()["results"]
    assert [j["id"] for j in queued] == [job.pk]


@pytest.mark.parametrize(
    ("path", "body", "technique"),
    [
        ("render", {"layers": ["mixed4c"], "units": [447, 448], "params": {"steps": 8}}, "channel"),
        ("connections", {"top": 5}, "connections"),
        ("tuning", {"layers": ["mixed3a"]}, "tuning"),
    ],
)
def test_staff_triggers_answer_202_with_job_urls_and_others_are_refused(
    api: Any, token_client: Any, inceptionv1: Any, path: str, body: dict[str, Any], technique: str
) -> None:
    url = f"/api/v1/models/inceptionv1/jobs/{path}/"
    assert api["anon"].post(url, body).status_code == 401
    assert api["alice"].post(url, body).status_code == 403
    assert api["bruno"].post(url, body).status_code == 403  # a curator is not staff
    assert RenderJob.objects.count() == 0
    response = api["staff"].post(url, body)
    assert response.status_code == 202
    jobs = RenderJob.objects.filter(technique__slug=technique)
    assert jobs.count() == len(response.json()["jobs"]) > 0
    first = response.json()["jobs"][0]
    assert response["Location"] == first["url"]
    assert api["anon"].get(first["url"]).json()["technique"] == technique


def test_a_dataset_pass_is_triggered_by_dataset_slug(api: Any, inceptionv1: Any) -> None:
    Dataset.objects.create(
        slug="pets",
        name="Pets",
        location="/data",
        image_count=2,
        manifest="m.jsonl",
        manifest_sha256="1" * 64,
    )
    url = "/api/v1/models/inceptionv1/jobs/dataset-examples/"
    response = api["staff"].post(url, {"dataset": "pets", "layers": ["mixed3a"], "k": 8})
    assert response.status_code == 202
    job = RenderJob.objects.get(technique__slug="examples")
    assert job.params["k"] == 8 and job.params["layers"] == "mixed3a"
    assert api["staff"].post(url, {"dataset": "nope"}).status_code == 404
    refused = api["staff"].post(url, {"dataset": "pets", "layers": ["mixed9z"]})
    assert refused.status_code == 400 and "mixed9z" in refused.json()["error"]["detail"]


def test_a_trigger_with_nothing_left_to_do_answers_200(api: Any, inceptionv1: Any) -> None:
    url = "/api/v1/models/inceptionv1/jobs/render/"
    body = {"layers": ["mixed4c"], "units": [447]}
    assert api["staff"].post(url, body).status_code == 202
    again = api["staff"].post(url, body)  # the same span is already queued
    assert again.status_code == 200 and again.json()["jobs"] == []
