"""The API's error contract (issue 16), checked over every operation the schema lists, since
an outside probe checks the class of mistake, not one URL: integers out of range, unknown
parameters, unknown orderings and invalid booleans are 400 in the one error shape; every error
under /api/ is JSON whatever DEBUG is; headers are plain `str`; PATCH is partial."""

import json
import re
from typing import Any

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999999"  # over 2**63: SQLite's driver raised OverflowError (a 500)


@pytest.fixture(scope="module")
def schema(django_db_blocker: Any) -> dict[str, Any]:
    with django_db_blocker.unblock():
        answer = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert answer.status_code == 200
    return dict(json.loads(answer.content))


def _get_operations(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(path, ops["get"]) for path, ops in schema["paths"].items() if "get" in ops]


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    error = response.json()["error"]
    assert error["status"] == status and error["code"] and error["detail"] and error["errors"]
    return dict(error)


def _fill(path: str, inceptionv1: Any, unit: Any) -> str:
    values = {
        "ref": str(inceptionv1),
        "layer": "mixed4c",
        "index": "447",
        "id": str(unit.pk),
        "slug": "channel",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


@pytest.fixture
def staff_api(people: dict[str, Any]) -> APIClient:
    client = APIClient()
    client.force_login(people["staff"])
    return client


def test_every_integer_query_parameter_out_of_range_is_400(
    schema: dict[str, Any], staff_api: APIClient, inceptionv1: Any, unit: Any
) -> None:
    checked = []
    for path, operation in _get_operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query" or parameter["schema"].get("type") != "integer":
                continue
            url = _fill(path, inceptionv1, unit)
            error = _error(staff_api.get(url, {parameter["name"]: HUGE}), 400)
            assert error["code"] == "invalid"
            assert parameter["name"] in error["detail"], (url, error)
            checked.append(f"{path}?{parameter['name']}")
    for expected in (
        "/api/v1/units/?layer",
        "/api/v1/renders/?unit",
        "/api/v1/comments/?unit",
        "/api/v1/comments/?note",
        "/api/v1/comments/?parent",
        "/api/v1/examples/?unit",
        "/api/v1/jobs/?layer",
        "/api/v1/tuning-curves/?unit",
        "/api/v1/notes/?unit",
    ):
        assert expected in checked


def test_every_integer_path_parameter_out_of_range_is_a_json_404(
    schema: dict[str, Any], staff_api: APIClient, inceptionv1: Any, unit: Any
) -> None:
    paths = [
        path
        for path, ops in schema["paths"].items()
        if "get" in ops
        and any(
            p["in"] == "path" and p["schema"].get("type") == "integer"
            for p in ops["get"].get("parameters", [])
        )
    ]
    assert "/api/v1/units/{id}/" in paths and "/api/v1/comments/{id}/" in paths
    for path in paths:
        huge = path.replace("{id}", HUGE).replace("{index}", HUGE)
        _error(staff_api.get(_fill(huge, inceptionv1, unit)), 404)


def test_ids_in_a_body_out_of_range_are_400(api: dict[str, APIClient]) -> None:
    for url, body in (
        ("/api/v1/comments/", {"unit": int(HUGE), "body": "x"}),
        ("/api/v1/comments/", {"parent": int(HUGE), "body": "x"}),
        ("/api/v1/reports/", {"note": int(HUGE), "reason": "x"}),
    ):
        error = _error(api["alice"].post(url, body, format="json"), 400)
        assert error["code"] == "invalid"


def test_every_get_refuses_an_unknown_query_parameter_naming_the_known_ones(
    schema: dict[str, Any], staff_api: APIClient, inceptionv1: Any, unit: Any
) -> None:
    for path, operation in _get_operations(schema):
        if path.endswith(("/schema/", "/docs/", "/redoc/")):
            continue
        url = _fill(path, inceptionv1, unit)
        error = _error(staff_api.get(url, {"unit__in": "1,2"}), 400)
        assert "unit__in" in error["detail"], url
        message = error["detail"]["unit__in"][0]
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query":
                assert parameter["name"] in message, (url, parameter["name"], message)


def test_the_renders_list_no_longer_ignores_unit_in() -> None:
    error = _error(APIClient().get("/api/v1/renders/?unit__in=1,2"), 400)
    assert (
        "unit" in error["detail"]["unit__in"][0] and "technique" in error["detail"]["unit__in"][0]
    )


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/units/?ordering=nope",
        "/api/v1/tuning-curves/?ordering=-nope",
        "/api/v1/notes/?ordering=title",
        "/api/v1/models/inceptionv1/layers/?ordering=slug",  # a field of models, not layers
    ],
)
def test_an_unknown_ordering_is_400_naming_the_allowed_fields(url: str) -> None:
    error = _error(APIClient().get(url), 400)
    assert "one of:" in error["detail"]["ordering"][0]


def test_the_documented_orderings_are_accepted(schema: dict[str, Any]) -> None:
    assert APIClient().get("/api/v1/models/inceptionv1/layers/?ordering=-order").status_code == 200
    assert APIClient().get("/api/v1/tuning-curves/?ordering=family,-pk").status_code == 200


@pytest.mark.parametrize(
    "url",
    ["/api/v1/units/?labelled=maybe", "/api/v1/notes/?draft=maybe", "/api/v1/models/?latest=2"],
)
def test_an_invalid_boolean_is_400(url: str) -> None:
    name = url.split("?")[1].split("=")[0]
    error = _error(APIClient().get(url), 400)
    assert name in error["detail"]


def test_booleans_still_filter(unit: Any) -> None:
    unit.curator_label = "curve"
    unit.save(update_fields=["curator_label"])
    labelled = APIClient().get("/api/v1/units/", {"labelled": "true", "model": "inceptionv1"})
    assert [row["id"] for row in labelled.json()["results"]] == [unit.pk]


# --- every answer under /api/ is JSON, whatever DEBUG is -------------------------------------


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request: Any, settings: Any) -> bool:
    settings.DEBUG = request.param
    return bool(request.param)


def test_unrouted_paths_and_unknown_versions_are_json_404(debug: bool, inceptionv1: Any) -> None:
    for url in ("/api/v1/nope/", "/api/v1/models/inceptionv1@zzzz/", "/api/nope", "/api/v1/"):
        if url == "/api/v1/":
            continue  # the API root lists the endpoints
        error = _error(APIClient().get(url), 404)
        assert error["code"] == "not_found"


def test_nul_bytes_in_a_query_are_a_json_400(debug: bool) -> None:
    for url in ("/api/v1/units/?model=%00", "/api/v1/notes/?a%00b=1", "/api/v1/nope%00/"):
        error = _error(APIClient().get(url), 400)
        assert "NUL" in error["detail"]


def test_an_oversized_body_is_a_json_400_with_debug_on_too(debug: bool, api: Any) -> None:
    from django.conf import settings

    from annotations.models import Note

    body = json.dumps({"title": "x", "body": "y" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    answer = api["alice"].post("/api/v1/notes/", body, content_type="application/json")
    assert _error(answer, 400)["code"] == "request_too_large"
    assert not Note.objects.exists()


def test_a_wrong_method_is_a_json_405(debug: bool, api: Any) -> None:
    answer = api["alice"].delete("/api/v1/units/")
    assert _error(answer, 405)["code"] == "method_not_allowed"
    assert "GET" in answer["Allow"]


def test_a_crash_in_a_view_is_a_json_500_with_debug_on(
    debug: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neurons import api as neurons_api

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(neurons_api.TechniqueViewSet, "list", crash)
    client = APIClient(raise_request_exception=False)
    error = _error(client.get("/api/v1/techniques/"), 500)
    assert error["code"] == "server_error" and "a bug" not in json.dumps(error)


def test_a_crash_in_a_middleware_is_a_json_500_with_debug_on(
    debug: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neurons import pagecache

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(pagecache.PageCache, "__call__", crash)
    client = APIClient(raise_request_exception=False)
    assert _error(client.get("/api/v1/techniques/"), 500)["code"] == "server_error"


def test_a_malformed_json_body_is_a_parse_error(api: Any) -> None:
    answer = api["alice"].post("/api/v1/notes/", "{nope", content_type="application/json")
    assert _error(answer, 400)["code"] == "parse_error"


# --- one vocabulary --------------------------------------------------------------------------


def test_a_services_field_refusal_has_the_validation_code(api: Any) -> None:
    """A service's refusal naming a field once answered `"code": "error"`, a serializer's
    `"invalid"`: both are `invalid`, with the field in `detail` and in `errors`."""
    answer = api["alice"].post(
        "/api/v1/notes/",
        {"title": "t", "body": "b", "units": ["inceptionv1/mixed9z/1"]},
        format="json",
    )
    error = _error(answer, 400)
    assert error["code"] == "invalid" and "units" in error["detail"]
    assert error["errors"][0]["attr"] == "units"
    missing = _error(api["alice"].post("/api/v1/notes/", {"title": "t"}, format="json"), 400)
    assert missing["code"] == "invalid"
    assert {e["attr"]: e["code"] for e in missing["errors"]}["body"] == "required"


# --- headers and writes ----------------------------------------------------------------------


def _plain_headers(response: Any) -> None:
    for name, value in response.items():
        assert type(value) is str, (name, type(value))  # wsgiref refuses str subclasses


def test_created_answers_carry_plain_str_headers(api: Any, unit: Any, make_note: Any) -> None:
    note = make_note()
    alice = api["alice"]
    answers = [
        alice.post(
            "/api/v1/notes/",
            {"title": "t", "body": "b", "units": ["inceptionv1/mixed4c/447"]},
            format="json",
        ),
        alice.post("/api/v1/comments/", {"unit": unit.pk, "body": "on a unit"}, format="json"),
        alice.post("/api/v1/comments/", {"note": note.pk, "body": "on a note"}, format="json"),
    ]
    parent = answers[1].json()["id"]
    answers.append(
        alice.post("/api/v1/comments/", {"parent": parent, "body": "a reply"}, format="json")
    )
    answers.append(alice.post("/api/v1/tokens/", {"name": "t", "scope": "read"}, format="json"))
    for answer in answers:
        assert answer.status_code == 201, answer.content
        assert answer["Location"].startswith("http://testserver/api/v1/")
        _plain_headers(answer)


def test_patch_on_a_comment_is_partial(api: Any, unit: Any) -> None:
    alice = api["alice"]
    made = alice.post("/api/v1/comments/", {"unit": unit.pk, "body": "first"}, format="json")
    url = made["Location"]
    untouched = alice.patch(url, {}, format="json")
    assert untouched.status_code == 200, untouched.content
    assert untouched.json()["body"] == "first"
    assert alice.patch(url, {"body": "second"}, format="json").json()["body"] == "second"
    assert _error(alice.put(url, {}, format="json"), 400)["detail"]["body"]


def test_patch_on_a_note_is_partial(api: Any, make_note: Any) -> None:
    note = make_note()
    answer = api["alice"].patch(f"/api/v1/notes/{note.pk}/", {"title": "New"}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["title"] == "New" and answer.json()["body"] == note.body


# --- Idempotency-Key -------------------------------------------------------------------------


def test_a_retry_with_the_same_key_answers_the_first_answer_and_stores_once(
    api: Any, unit: Any
) -> None:
    from annotations.models import Comment, Note
    from neurons.models import IdempotentRequest

    alice = api["alice"]
    note = {"title": "t", "body": "b", "units": ["inceptionv1/mixed4c/447"], "publish": True}
    first = alice.post("/api/v1/notes/", note, format="json", HTTP_IDEMPOTENCY_KEY="n-1")
    again = alice.post("/api/v1/notes/", note, format="json", HTTP_IDEMPOTENCY_KEY="n-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true"
    _plain_headers(again)
    assert Note.objects.count() == 1
    comment = {"unit": unit.pk, "body": "hi"}
    for _ in range(3):
        alice.post("/api/v1/comments/", comment, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    assert Comment.objects.count() == 1
    # Keys are per user: bob's "c-1" is his own.
    assert (
        api["bea"]
        .post("/api/v1/comments/", comment, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
        .status_code
        == 201
    )
    assert Comment.objects.count() == 2 and IdempotentRequest.objects.count() == 3


def test_the_same_key_with_another_body_is_a_422(api: Any, unit: Any) -> None:
    from annotations.models import Comment

    alice = api["alice"]
    url = "/api/v1/comments/"
    ok = alice.post(url, {"unit": unit.pk, "body": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert ok.status_code == 201
    other = alice.post(url, {"unit": unit.pk, "body": "b"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert _error(other, 422)["code"] == "idempotency_key_reused"
    assert list(Comment.objects.values_list("body", flat=True)) == ["a"]


def test_a_refused_write_keeps_no_key_and_can_be_corrected(api: Any, unit: Any) -> None:
    from neurons.models import IdempotentRequest

    alice = api["alice"]
    bad = alice.post("/api/v1/comments/", {"body": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="r")
    assert bad.status_code == 400 and not IdempotentRequest.objects.exists()
    good = {"unit": unit.pk, "body": "a"}
    assert (
        alice.post("/api/v1/comments/", good, format="json", HTTP_IDEMPOTENCY_KEY="r").status_code
        == 201
    )


def test_an_expired_key_may_be_used_afresh(api: Any, unit: Any, settings: Any) -> None:
    from annotations.models import Comment

    settings.IDEMPOTENCY_KEY_TTL_S = 0
    body = {"unit": unit.pk, "body": "a"}
    for _ in range(2):
        api["alice"].post("/api/v1/comments/", body, format="json", HTTP_IDEMPOTENCY_KEY="e")
    assert Comment.objects.count() == 2


def test_expired_keys_are_purged(api: Any, unit: Any, settings: Any) -> None:
    from neurons.idempotency import idempotency_keys_purge
    from neurons.models import IdempotentRequest

    body = {"unit": unit.pk, "body": "a"}
    api["alice"].post("/api/v1/comments/", body, format="json", HTTP_IDEMPOTENCY_KEY="p")
    assert idempotency_keys_purge() == 0 and IdempotentRequest.objects.count() == 1
    settings.IDEMPOTENCY_KEY_TTL_S = 0
    assert idempotency_keys_purge() == 1 and not IdempotentRequest.objects.exists()


def test_a_malformed_key_is_400(api: Any, unit: Any) -> None:
    answer = api["alice"].post(
        "/api/v1/comments/",
        {"unit": unit.pk, "body": "a"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="x" * 256,
    )
    assert "Idempotency-Key" in _error(answer, 400)["detail"]


def test_the_schema_documents_the_key_and_the_errors(schema: dict[str, Any]) -> None:
    post = schema["paths"]["/api/v1/comments/"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in post["parameters"] if p["in"] == "header"]
    assert {"400", "401", "403", "404", "422", "429"} <= set(post["responses"])
    assert "exactly one of `unit`, `note` and `parent`" in post["description"]
    report = schema["paths"]["/api/v1/reports/"]["post"]
    assert "exactly one of `note` and `comment`" in report["description"]
    for path in ("/api/v1/units/", "/api/v1/units/{id}/"):
        responses = schema["paths"][path]["get"]["responses"]
        assert {"400", "401", "404", "429"} <= set(responses)
        assert "403" not in responses  # anyone reads
    error = schema["components"]["schemas"]["Error404Body"]
    assert error["properties"]["code"]["pattern"] == "^(not_found)$"


def test_the_schema_says_what_the_server_does(schema: dict[str, Any]) -> None:
    job = schema["components"]["schemas"]["ImportJob"]["properties"]["result"]
    assert job.get("nullable") is True
    exports = schema["paths"]["/api/v1/models/{ref}/exports/"]
    assert {} in exports["get"]["security"]  # anyone lists them
    assert {} not in exports["post"]["security"]  # staff export
    anonymous = APIClient().get("/api/v1/models/inceptionv1/exports/")
    assert anonymous.status_code == 200


# --- every ordering ends ---------------------------------------------------------------------


def test_every_ordering_of_a_list_with_many_ties_visits_each_row_once_and_ends(
    inceptionv1: Any, settings: Any
) -> None:
    """`?ordering=family` once repeated page 22 forever: over 1,000 rows tied on `family` and
    DRF's cursor caps its offset at 1,000. Here 1,100 tie, walked 7 at a time both ways."""
    from rendering.models import TuningCurve

    units = list(inceptionv1.layers.get(name="mixed4c").units.order_by("index")[:220])
    TuningCurve.objects.bulk_create(
        TuningCurve(unit=u, family=f, params_hash="p" * 64, grid={}, responses=[], svg="")
        for u in units
        for f in ("curve", "grating", "hue", "angle", "size")
    )
    expected = set(TuningCurve.objects.values_list("pk", flat=True))
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {k: "100000/minute" for k in ("anon", "user", "token")},
    }
    client = APIClient()
    for ordering in ("family", "-family", "created", "-created,family", "pk", "-pk"):
        url: str | None = f"/api/v1/tuning-curves/?ordering={ordering}&page_size=97"
        seen: list[int] = []
        pages = 0
        last_url = ""
        while url:
            page = client.get(url).json()
            seen += [row["id"] for row in page["results"]]
            pages += 1
            most = len(expected) // len(page["results"]) + 2  # whatever page size it uses
            assert pages <= most, f"{ordering}: the walk does not end"
            last_url, url = url, page["next"]
        assert len(seen) == len(set(seen)) == len(expected), ordering
        assert set(seen) == expected
        # And back: `previous` from the last page walks to the first.
        back: list[int] = []
        url = last_url
        while url:
            page = client.get(url).json()
            assert "results" in page, (url, page)
            back = [row["id"] for row in page["results"]] + back
            url = page["previous"]
        assert back == seen, ordering


def test_a_malformed_cursor_or_page_size_is_refused() -> None:
    assert _error(APIClient().get("/api/v1/units/?cursor=nope"), 404)["code"] == "not_found"
    assert "page_size" in _error(APIClient().get("/api/v1/units/?page_size=0"), 400)["detail"]
    assert "page_size" in _error(APIClient().get(f"/api/v1/units/?page_size={HUGE}"), 400)["detail"]
