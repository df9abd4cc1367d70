"""CSRF: every view refuses a signed-in POST without the token, and nothing is stored.

tests/annotations/test_input.py checks the four annotation forms; this walks every URL pattern
(pages, the admin, the API with session authentication) so a new view cannot forget it.
"""

from typing import Any

import pytest
from django.apps import apps
from django.test import Client

from tests.security.patterns import concrete_path, endpoints, named_groups

pytestmark = pytest.mark.django_db

# Views that take POSTs without a token, on purpose. Each needs its reason in docs/SECURITY.md.
CSRF_EXEMPT = {
    # "Render now" on cached anonymous unit pages: a per-visitor token cannot be in a page
    # served to everyone; the action only queues a deduplicated render, rate-limited per client.
    "rendering.views_render.unit_render_now",
    # "Render these" on a cached anonymous layer page's empty technique: the same reasoning;
    # it queues the page's units (deduplicated), rate-limited per client.
    "rendering.views_render.layer_render_now",
}


def _fill(regex: str, world: dict[str, list[str]]) -> str:
    """A path for the pattern naming real rows where the world has some."""
    import re

    values = {}
    for name, inner in named_groups(regex):
        if name is None:
            continue
        candidates = [*world.get(name, []), "1", "x", ".json"]
        values[name] = next(c for c in candidates if re.fullmatch(inner, c))
    return concrete_path(regex, values)


def _rows() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def _view_name(pattern: Any) -> str:
    callback = pattern.callback
    target = getattr(callback, "cls", None) or getattr(callback, "__wrapped__", callback)
    return f"{target.__module__}.{getattr(target, '__name__', type(target).__name__)}"


@pytest.mark.parametrize("who", ["alice", "staff"])
def test_every_post_without_a_csrf_token_is_refused_and_stores_nothing(
    who: str, world: dict[str, list[str]], people: dict[str, Any]
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(people[who])
    before = _rows()
    answers: dict[str, int] = {}
    for regex, pattern in endpoints():
        path = _fill(regex, world)
        if _view_name(pattern) in CSRF_EXEMPT:
            continue
        form = {"title": "t", "body": "b", "units": "", "visibility": "public", "reason": "r"}
        if path.startswith("/api/"):
            response = client.post(path, form, content_type="application/json")
        else:
            response = client.post(path, form)
        answers[path] = response.status_code
    assert len(answers) > 100
    accepted = {path: status for path, status in answers.items() if status != 403}
    assert accepted == {}, "POSTs without a CSRF token that were not refused"
    assert _rows() == before


def test_the_exempt_views_are_exactly_the_documented_ones() -> None:
    exempt = set()
    for _regex, pattern in endpoints():
        callback = pattern.callback
        is_drf = hasattr(callback, "cls") or hasattr(callback, "initkwargs")
        if getattr(callback, "csrf_exempt", False) and not is_drf:
            exempt.add(_view_name(pattern))
    # DRF views are exempt from the middleware but enforce CSRF themselves for session
    # authentication (the test above shows their 403s); token requests carry no cookie.
    assert exempt == CSRF_EXEMPT


def test_a_session_post_with_the_token_is_accepted(people: dict[str, Any], unit: Any) -> None:
    """The refusals above are about the token, not about the form: with it, the post lands."""
    from annotations.models import Comment

    client = Client(enforce_csrf_checks=True)
    client.force_login(people["alice"])
    page = client.get(f"/units/{unit.pk}/discussion/")
    token = str(page.context["csrf_token"])
    response = client.post(
        f"/units/{unit.pk}/discussion/", {"body": "with a token", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert Comment.objects.filter(body="with a token").count() == 1
