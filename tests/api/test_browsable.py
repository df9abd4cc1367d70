from typing import Any

import pytest

pytestmark = pytest.mark.django_db

LISTS = [
    "",
    "models/",
    "models/inceptionv1/",
    "models/inceptionv1/layers/",
    "models/inceptionv1/layers/mixed4c/",
    "models/inceptionv1/layers/mixed4c/units/447/",
    "layers/",
    "units/",
    "techniques/",
    "renders/",
    "examples/",
    "tuning-curves/",
    "datasets/",
    "jobs/",
    "notes/",
    "comments/",
    "institutions/",
    "tokens/",
    "import-jobs/",
]


@pytest.mark.parametrize("path", LISTS)
def test_the_browsable_api_renders_every_endpoint_for_staff(
    api: Any, inceptionv1: Any, path: str
) -> None:
    response = api["staff"].get(f"/api/v1/{path}", HTTP_ACCEPT="text/html")
    assert response.status_code == 200, response.content[:500]
    assert b"<html" in response.content
