"""`/favicon.ico` answers on every site path browsers ask; Redoc asks no CDN for its logo."""

import re

import pytest
from django.test import Client
from PIL import Image

pytestmark = pytest.mark.django_db


def test_the_favicon_is_an_icon(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/vnd.microsoft.icon"
    import io

    icon = Image.open(io.BytesIO(response.content))
    assert icon.format == "ICO" and icon.size[0] >= 16
    assert "max-age" in response["Cache-Control"]
    assert client.post("/favicon.ico").status_code == 405


def test_redoc_loads_a_bundle_that_names_no_other_host(client: Client) -> None:
    page = client.get("/api/v1/redoc/").content.decode()
    (src,) = re.findall(r'<script src="([^"]+)"', page)
    assert src == "/api/v1/redoc/redoc.standalone.js"
    bundle = client.get(src)
    assert bundle.status_code == 200 and bundle["Content-Type"].startswith("text/javascript")
    assert b"cdn.redoc.ly" not in bundle.content
    assert b"Redoc" in bundle.content and len(bundle.content) > 500_000  # the real bundle
