"""Security headers on every kind of response, templates that the policy allows, and an admin
that only staff can enter. (HSTS, the HTTPS redirect and secure cookies depend on DEBUG being
off at start-up: tests/security/test_settings.py checks them in a production process.)"""

import re
from typing import Any

import pytest
from django.test import Client

from tests.security.patterns import concrete_path, endpoints

pytestmark = pytest.mark.django_db


def _policy(response: Any) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


@pytest.fixture
def pages(make_note: Any, unit: Any, inceptionv1: Any) -> dict[str, str]:
    note = make_note()
    return {
        "home": "/",
        "model": f"/models/{inceptionv1}/",
        "layer": "/models/inceptionv1/mixed4c/",
        "unit": "/models/inceptionv1/mixed4c/447/",
        "weights": "/models/inceptionv1/mixed4c/weights/",
        "embed": f"/embed/models/{inceptionv1}/mixed4c/447/",
        "search": "/search/?q=curve",
        "notes": "/notes/",
        "note": note.get_absolute_url(),
        "discussion": f"/units/{unit.pk}/discussion/",
        "login": "/accounts/login/",
        "signup": "/accounts/signup/",
        "admin login": "/admin/login/",
        "api": "/api/v1/models/",
        "api docs": "/api/v1/docs/",
        "not found": "/no/such/page/",
    }


def test_every_response_carries_the_policy_and_the_basic_headers(
    client: Client, pages: dict[str, str]
) -> None:
    for name, url in pages.items():
        response = client.get(url)
        assert response.status_code in (200, 404), (name, response.status_code)
        policy = _policy(response)
        assert policy["default-src"] == ["'self'"], name
        assert policy["script-src"] == ["'self'"], name  # no inline script, no eval, no CDN
        assert policy["script-src-attr"] == ["'none'"], name  # no onclick=...
        assert policy["style-src-elem"] == ["'self'"], name
        assert policy["style-src-attr"] == ["'unsafe-inline'"], name  # sprite offsets
        assert policy["img-src"] == ["'self'", "data:"], name  # kernels are data: PNGs
        assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'self'"], name
        assert policy["form-action"] == ["'self'"], name
        assert response["X-Content-Type-Options"] == "nosniff", name
        assert response["Referrer-Policy"] == "strict-origin-when-cross-origin", name


def test_only_the_embed_card_may_be_framed(client: Client, pages: dict[str, str]) -> None:
    for name, url in pages.items():
        response = client.get(url)
        if name == "embed":
            assert response.status_code == 200
            assert "X-Frame-Options" not in response
        else:
            assert response["X-Frame-Options"] == "DENY", name


def test_a_page_served_from_the_page_cache_keeps_every_header(
    client: Client, inceptionv1: Any
) -> None:
    first = client.get(f"/models/{inceptionv1}/")
    second = client.get(f"/models/{inceptionv1}/")
    assert second["X-Page-Cache"] == "hit"
    for header in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"):
        assert second[header] == first[header], header


def test_a_cached_embed_card_stays_frameable(client: Client, inceptionv1: Any) -> None:
    url = f"/embed/models/{inceptionv1}/mixed4c/447/"
    client.get(url)
    again = client.get(url)
    assert again["X-Page-Cache"] == "hit" and "X-Frame-Options" not in again


# What the policy forbids, found in markup: an inline <script> that would run (JSON-LD and
# other data blocks do not), a <style> element, an on* attribute, a javascript: URL, or any
# script, stylesheet, image or frame from another site.
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/(?:ld\+)?json)[^>]*>", re.I)
_STYLE_ELEMENT = re.compile(r"<style[\s>]", re.I)
_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)
_FOREIGN = re.compile(
    r"<(?:(?:script|img|iframe)[^>]*\bsrc|link(?=[^>]*\brel=\"(?:stylesheet|icon|preload|"
    r"modulepreload|manifest)\")[^>]*\bhref)=\"(?:https?:)?//",
    re.I,
)


def _forbidden_markup(html: str) -> list[str]:
    found = []
    for name, pattern in (
        ("inline script", _INLINE_SCRIPT),
        ("style element", _STYLE_ELEMENT),
        ("event handler", _HANDLER),
        ("resource from another site", _FOREIGN),
    ):
        found += [f"{name}: {match.group(0)[:80]}" for match in pattern.finditer(html)]
    if "javascript:" in html.lower():
        found.append("javascript: URL")
    return found


def test_our_pages_need_nothing_the_policy_forbids(
    pages: dict[str, str], staff_client: Client, people: dict[str, Any]
) -> None:
    member = Client()
    member.force_login(people["alice"])
    for name, url in pages.items():
        if name in ("api", "api docs", "not found", "admin login"):
            continue  # JSON; drf-spectacular's page (tests/security/test_browser_csp.py)
        for who, client in (("anon", Client()), ("alice", member)):
            html = client.get(url).content.decode()
            assert _forbidden_markup(html) == [], (name, who)
    for url in ("/admin/", "/admin/neurons/importjob/import/", "/notes/new/"):
        html = staff_client.get(url).content.decode()
        assert _forbidden_markup(html) == [], url


def test_the_markup_check_finds_what_it_looks_for() -> None:
    bad = (
        "<script>alert(1)</script><style>p{}</style><a onclick='x()'>"
        '<img src="https://cdn.example/x.png"><a href="javascript:void(0)">'
        '<link rel="stylesheet" href="https://fonts.example/css">'
    )
    assert len(_forbidden_markup(bad)) == 6
    good = (
        '<script src="/static/js/unit.js"></script><script type="application/ld+json">{}'
        '</script><img src="data:image/png;base64,AA" style="object-position: 5% 0">'
        '<link rel="canonical" href="https://example.org/models/x/">'
    )
    assert _forbidden_markup(good) == []


# --- the admin -----------------------------------------------------------------------------


def _admin_paths(people: dict[str, Any]) -> list[str]:
    values = {"object_id": str(people["alice"].pk), "id": str(people["alice"].pk)}
    values |= {"content_type_id": "1", "app_label": "auth", "url": "nope/"}
    return [
        concrete_path(regex, values)
        for regex, _pattern in endpoints()
        if regex.startswith("admin/") and not regex.startswith("admin/login")
    ]


def test_the_admin_sends_visitors_and_members_to_its_login(people: dict[str, Any]) -> None:
    member = Client()
    member.force_login(people["alice"])
    paths = _admin_paths(people)
    assert len(paths) > 50
    for who, client in (("anon", Client()), ("alice", member)):
        for path in paths:
            response = client.get(path)
            assert response.status_code == 302, (who, path, response.status_code)
            # Django's admin sends a logout by a non-member to its index, which asks to log in.
            login = "/admin/" if path == "/admin/logout/" else "/admin/login/"
            assert response["Location"].startswith(login), (who, path)


def test_a_member_cannot_sign_in_to_the_admin(people: dict[str, Any]) -> None:
    client = Client()
    response = client.post("/admin/login/", {"username": "alice", "password": "pw-12345!"})
    assert response.status_code == 200
    assert "enter the correct username and password for a staff account" in (
        response.content.decode()
    )
    assert client.get("/admin/").status_code == 302


def test_staff_sign_in_to_the_admin(people: dict[str, Any]) -> None:
    client = Client()
    response = client.post("/admin/login/", {"username": "staff", "password": "pw-12345!"})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
