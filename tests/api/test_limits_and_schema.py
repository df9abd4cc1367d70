from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def low_rates(settings: Any) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "3/minute", "user": "4/minute", "token": "2/minute"},
    }


def test_anonymous_callers_are_throttled_per_address_with_retry_after(low_rates: None) -> None:
    client = APIClient()
    codes = [client.get("/api/v1/techniques/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = client.get("/api/v1/techniques/")
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "throttled"
    other = APIClient(REMOTE_ADDR="10.0.0.9")
    assert other.get("/api/v1/techniques/").status_code == 200


def test_users_and_tokens_have_their_own_budgets(
    low_rates: None, api: Any, token_client: Any
) -> None:
    codes = [api["alice"].get("/api/v1/techniques/").status_code for _ in range(5)]
    assert codes == [200] * 4 + [429]
    token = token_client("alice")
    assert [token.get("/api/v1/techniques/").status_code for _ in range(3)] == [200, 200, 429]
    assert api["bea"].get("/api/v1/techniques/").status_code == 200


def test_posting_too_fast_is_429_as_on_the_pages(settings: Any, api: Any, unit: Any) -> None:
    settings.ANNOTATIONS_POSTS_PER_MINUTE = 2
    codes = [
        api["sam"].post("/api/v1/comments/", {"unit": unit.pk, "body": "x"}).status_code
        for _ in range(3)
    ]
    assert codes == [201, 201, 429]
    response = api["sam"].post("/api/v1/comments/", {"unit": unit.pk, "body": "x"})
    assert response["Retry-After"] == "60"


def test_the_schema_generates_without_warnings_and_validates(tmp_path: Any) -> None:
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in (
        "/api/v1/units/{id}/connections/",
        "/api/v1/models/{ref}/layers/{layer}/units/{index}/",
        "/api/v1/notes/",
        "/api/v1/tokens/",
        "/api/v1/models/{ref}/jobs/render/",
    ):
        assert f"  {path}:" in text, path
    assert "tokenAuth" in text


def test_the_schema_and_docs_are_served_from_our_own_static_files() -> None:
    schema = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.")
    docs = APIClient().get("/api/v1/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
