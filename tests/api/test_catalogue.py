from typing import Any

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_models_list_versions_and_link_to_their_pages(inceptionv1: Any) -> None:
    response = APIClient().get("/api/v1/models/")
    assert response.status_code == 200
    (row,) = [m for m in response.json()["results"] if m["slug"] == "inceptionv1"]
    assert row["ref"] == f"inceptionv1@{inceptionv1.version}"
    assert row["untrained"] is True
    assert row["html_url"] == f"http://testserver/models/inceptionv1@{inceptionv1.version}/"


def test_a_model_by_slug_is_its_newest_version_and_lists_every_version(inceptionv1: Any) -> None:
    newest = APIClient().get("/api/v1/models/inceptionv1/").json()
    exact = APIClient().get(f"/api/v1/models/inceptionv1@{inceptionv1.version}/").json()
    assert newest["id"] == exact["id"] == inceptionv1.pk
    assert newest["latest"] is True
    assert [v["version"] for v in newest["versions"]] == [inceptionv1.version]


def test_errors_have_one_shape(inceptionv1: Any) -> None:
    response = APIClient().get("/api/v1/models/nosuchmodel/")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["status"] == 404 and error["code"] == "not_found"
    assert "nosuchmodel" in error["detail"]
    bad = APIClient().get("/api/v1/units/?layer=notanumber")
    assert bad.status_code == 400
    assert bad.json()["error"]["status"] == 400 and "layer" in bad.json()["error"]["detail"]


def test_layers_of_a_model_in_order_and_by_name(inceptionv1: Any) -> None:
    response = APIClient().get("/api/v1/models/inceptionv1/layers/", {"page_size": 100})
    names = [layer["name"] for layer in response.json()["results"]]
    assert names[:3] == ["conv2d0", "conv2d1", "conv2d2"]
    layer = APIClient().get("/api/v1/models/inceptionv1/layers/mixed4c/").json()
    assert layer["num_units"] == 512 and layer["model"] == f"inceptionv1@{inceptionv1.version}"
    assert APIClient().get("/api/v1/models/inceptionv1/layers/mixed9z/").status_code == 404


def test_a_unit_by_natural_key_equals_the_unit_by_id(inceptionv1: Any, unit: Any) -> None:
    by_key = APIClient().get(
        f"/api/v1/models/inceptionv1@{inceptionv1.version}/layers/mixed4c/units/447/"
    )
    by_id = APIClient().get(f"/api/v1/units/{unit.pk}/")
    assert by_key.status_code == by_id.status_code == 200
    assert by_key.json() == by_id.json()
    data = by_id.json()
    assert data["key"] == f"inceptionv1@{inceptionv1.version}/mixed4c/447"
    assert data["html_url"].endswith(f"/models/inceptionv1@{inceptionv1.version}/mixed4c/447/")
    assert data["links"]["connections"].endswith(f"/api/v1/units/{unit.pk}/connections/")
    over = APIClient().get("/api/v1/models/inceptionv1/layers/mixed4c/units/512/")
    assert over.status_code == 404 and "0–511" in over.json()["error"]["detail"]


def test_a_renamed_model_answers_301_to_its_new_name(inceptionv1: Any) -> None:
    from neurons.services import model_rename

    model_rename(slug="inceptionv1", new_slug="googlenet-lucid")
    response = APIClient().get("/api/v1/models/inceptionv1/layers/mixed4c/units/447/")
    assert response.status_code == 301
    assert response["Location"] == "/api/v1/models/googlenet-lucid/layers/mixed4c/units/447/"


def test_unit_lists_are_cursor_paginated_with_next_links(inceptionv1: Any) -> None:
    client = APIClient()
    first = client.get("/api/v1/units/", {"model": "inceptionv1", "layer_name": "mixed4c"}).json()
    assert len(first["results"]) == 50 and first["previous"] is None
    assert "cursor=" in first["next"]
    second = client.get(first["next"]).json()
    assert [u["index"] for u in second["results"]][:2] == [50, 51]
    seen, page = len(first["results"]), first
    while page["next"]:
        page = client.get(page["next"]).json()
        seen += len(page["results"])
    assert seen == 512  # every unit is reachable: no cap without a next link


def test_units_filter_by_curator_label(inceptionv1: Any, unit: Any) -> None:
    unit.curator_label = "curve detector"
    unit.save()
    found = APIClient().get("/api/v1/units/", {"labelled": "true"}).json()["results"]
    assert [u["id"] for u in found] == [unit.pk]
    found = APIClient().get("/api/v1/units/", {"label": "curve"}).json()["results"]
    assert [u["id"] for u in found] == [unit.pk]


def test_detail_endpoints_have_etags_and_answer_304(unit: Any) -> None:
    client = APIClient()
    response = client.get(f"/api/v1/units/{unit.pk}/")
    etag = response["ETag"]
    assert etag
    again = client.get(f"/api/v1/units/{unit.pk}/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    unit.curator_label = "changed"
    unit.save()
    changed = client.get(f"/api/v1/units/{unit.pk}/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed.json()["curator_label"] == "changed"


def test_techniques_are_listed(db: None) -> None:
    slugs = {t["slug"] for t in APIClient().get("/api/v1/techniques/").json()["results"]}
    assert {"channel", "diversity", "examples", "tuning", "connections"} <= slugs
    assert APIClient().get("/api/v1/techniques/channel/").json()["level"] == "unit"


def test_import_jobs_are_staff_only_and_an_import_answers_202(api: Any) -> None:
    from neurons.models import ImportJob

    body = {"registry_key": "alexnet", "weights_source": "random", "seed": 3}
    assert api["anon"].post("/api/v1/import-jobs/", body).status_code == 401
    assert api["alice"].post("/api/v1/import-jobs/", body).status_code == 403
    assert api["alice"].get("/api/v1/import-jobs/").status_code == 403
    response = api["staff"].post("/api/v1/import-jobs/", body)
    assert response.status_code == 202
    job = ImportJob.objects.get()
    assert job.registry_key == "alexnet" and job.seed == 3
    url = f"http://testserver/api/v1/import-jobs/{job.pk}/"
    assert response["Location"] == url and response.json()["jobs"][0]["url"] == url
    assert api["staff"].get(url).json()["status"] == "queued"
    unknown = api["staff"].post("/api/v1/import-jobs/", {"registry_key": "nope"})
    assert unknown.status_code == 400 and unknown.json()["error"]["status"] == 400
