"""In a real browser: no page asks for a missing favicon, and Redoc loads nothing from the
internet and trips no Content-Security-Policy rule."""

import re
from typing import Any

import pytest

from tests.security.test_browser_csp import RECORD_VIOLATIONS

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_redoc_and_pages_load_without_errors_or_foreign_requests(
    live_server: Any, browser: Any
) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: requests.append(r.url))
    page.goto(live_server.url + "/api/v1/redoc/")
    page.get_by_role("heading", name=re.compile("Microscope API")).wait_for()
    page.get_by_text("API docs by Redocly").wait_for()
    page.wait_for_timeout(500)
    assert page.evaluate("window.__csp") == {"ours": [], "foreign": []}
    page.goto(live_server.url + "/")
    page.wait_for_load_state("networkidle")
    foreign = [u for u in requests if u.startswith("http") and not u.startswith(live_server.url)]
    assert not foreign, foreign
    assert not errors, errors
    context.close()
