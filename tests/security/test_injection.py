"""SQL-injection and XSS strings in search, forms, signup and API filters: never a 5xx, never a
change to the data, and what is echoed back is escaped.

tests/annotations/test_input.py covers XSS stored in notes and comments (markdown, pages,
feeds) and tests/annotations/test_search.py the note search's escaping; this adds SQL strings
everywhere a query reaches the database, and XSS where input is echoed (form errors, the
search box, signup, the API's HTML view).
"""

import hashlib
from typing import Any

import pytest
from django.apps import apps
from django.test import Client

from tests.security.patterns import endpoints

pytestmark = pytest.mark.django_db

SQL = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE neurons_unit; --",
    "1); DELETE FROM auth_user; --",
    '" OR ""="',
    "1' UNION SELECT username, password FROM auth_user --",
    "%' AND 1=1 --",
    "' || pg_sleep(5) --",
    "$$; SELECT 1; $$",
    "\\",
    "'",
    "%",
    "_",
    "a:* & !b | (c <-> d)",
    "!!",
    "&&&",
    "(((",
    "\x00",
    "' AND SUBSTRING(password,1,1)='p",
]
XSS = [
    "<script>alert('xss')</script>",
    '"><img src=x onerror=alert(1)>',
    "<svg onload=alert(1)>",
    "javascript:alert(1)",
    "'-alert(1)-'",
]
RAW_MARKUP = ("<script>alert", "<img src=x onerror", "<svg onload")


def _fingerprint() -> str:
    """Every row of every table, hashed: any change to the data changes it."""
    digest = hashlib.sha256()
    for model in sorted(apps.get_models(), key=lambda m: m._meta.label):
        if model._meta.label in ("sessions.Session",):
            continue  # a visit may write its session; that is not the data under attack
        rows = model._default_manager.order_by("pk").values_list()
        digest.update(f"{model._meta.label}:{list(rows)!r}".encode())
    return digest.hexdigest()


@pytest.fixture
def clients(make_note: Any, unit: Any, settings: Any, login: Any) -> dict[str, Client]:
    """Signed in before the data is fingerprinted (signing in writes `last_login`)."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {k: "100000/minute" for k in ("anon", "user", "token")},
    }
    settings.ANNOTATIONS_POSTS_PER_MINUTE = 1000  # refused posts count too; not under test
    unit.curator_label = "curve detector"
    unit.save(update_fields=["curator_label"])
    make_note(title="Curve detectors zebra")
    return {who: login(who) for who in ("anon", "alice")}


def _escaped(html: str) -> bool:
    return not any(raw in html for raw in RAW_MARKUP)


def test_sql_and_markup_in_the_search_box_are_harmless(clients: dict[str, Client]) -> None:
    data = _fingerprint()
    for who, client in clients.items():
        for payload in SQL + XSS:
            for params in ({"q": payload}, {"q": payload, "model": payload}):
                response = client.get("/search/", params)
                # 400: a NUL byte may be refused before the view (PostgreSQL stores none).
                assert response.status_code in (200, 302, 400), (who, payload)
                assert _escaped(response.content.decode()), (who, payload)
        found = client.get("/search/", {"q": "curve"}).content.decode()
        assert "/models/inceptionv1/mixed4c/447/" in found  # the search still works
    assert _fingerprint() == data


def _api_lists() -> list[str]:
    """Every API list route without path parameters (`/api/v1/units/`, …)."""
    return [
        "/" + regex
        for regex, _pattern in endpoints()
        if regex.startswith("api/v1/") and regex.endswith("/") and "(?P<" not in regex
    ]


FILTER_KEYS = [
    "search",
    "q",
    "ordering",
    "model",
    "layer",
    "unit",
    "index",
    "status",
    "technique",
    "slug",
    "author",
    "visibility",
    "family",
    "label",
    "cursor",
]


def test_sql_in_every_api_filter_is_a_4xx_or_an_answer_never_a_5xx(
    clients: dict[str, Client],
) -> None:
    data = _fingerprint()
    lists = _api_lists()
    assert "/api/v1/units/" in lists and "/api/v1/notes/" in lists
    client = clients["alice"]
    failures = []
    for url in lists:
        for payload in SQL:
            response = client.get(url, {key: payload for key in FILTER_KEYS})
            if response.status_code >= 500:
                failures.append(f"{url} {payload!r}: {response.status_code}")
            # One key at a time too: a filter that rejects one value must not hide another.
            for key in ("ordering", "search", "model", "layer"):
                response = client.get(url, {key: payload})
                if response.status_code >= 500:
                    failures.append(f"{url}?{key}={payload!r}: {response.status_code}")
    assert failures == []
    assert _fingerprint() == data


def test_filter_values_echoed_by_the_browsable_api_are_escaped(
    clients: dict[str, Client],
) -> None:
    client = clients["alice"]
    for url in ("/api/v1/units/", "/api/v1/notes/", "/api/v1/layers/"):
        for payload in XSS:
            response = client.get(
                url, {"search": payload, "layer": payload}, HTTP_ACCEPT="text/html"
            )
            assert response.status_code < 500, (url, payload)
            assert _escaped(response.content.decode()), (url, payload)


def test_a_refused_note_form_echoes_the_input_escaped_and_stores_nothing(
    clients: dict[str, Client],
) -> None:
    data = _fingerprint()
    client = clients["alice"]
    for payload in XSS + SQL[:6]:
        form = {
            "title": payload,
            "body": payload,
            "units": "inceptionv1 4c:99999",  # refused: no such unit
            "edges": "",
            "visibility": "public",
        }
        response = client.post("/notes/new/", form)
        assert response.status_code == 400, payload
        assert _escaped(response.content.decode()), payload
    assert _fingerprint() == data


def test_signup_refuses_markup_and_sql_in_usernames_and_escapes_display_names(
    institutions: dict[str, Any], fast_passwords: None
) -> None:
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    before = users.count()
    client = Client()
    for payload in XSS + SQL[:6]:
        form = {
            "username": payload,
            "email": "mallory@example.org",
            "display_name": payload[:100],
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        }
        response = client.post("/accounts/signup/", form)
        assert response.status_code == 400, payload
        assert _escaped(response.content.decode()), payload
    assert users.count() == before
    # A display name is free text: stored as typed, shown escaped.
    form = {
        "username": "mallory",
        "email": "mallory@example.org",
        "display_name": XSS[1],
        "password1": "a-long-pass-phrase-9",
        "password2": "a-long-pass-phrase-9",
    }
    assert client.post("/accounts/signup/", form).status_code == 302
    page = client.get("/people/mallory/").content.decode()
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert _escaped(page)
