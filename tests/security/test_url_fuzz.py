"""Every URL pattern of the site, fuzzed: no request ever answers 5xx (or raises).

The patterns are read from the resolver (so a new view is fuzzed the day it is added). Each
named group of a pattern gets, at random, a value its regex accepts, a real value that names a
row (InceptionV1's `mixed4c:447`, a note, a comment, a person...), or something hostile
(`NASTY`: traversal, NUL, markup, SQL, huge and negative numbers, odd Unicode); a query string
of known and unknown keys comes along. Each example is one GET, HEAD or POST (a form, or JSON
for the API) as a visitor, a member or staff, inside a savepoint that is rolled back, so
examples cannot change each other's world. The schemathesis run (tests/api) covers the API's
documented parameters; this covers every page, the admin, media and the API's undocumented
corners (format suffixes, unknown query keys).

Bounded: a few examples per pattern, more where the pattern has parameters; no deadline, no
shrinking, derandomized, so a run is the same every time and takes well under a minute.
"""

import traceback
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.security.conftest import NASTY
from tests.security.patterns import endpoints, named_groups

pytestmark = pytest.mark.django_db

EXAMPLES_WITH_PARAMETERS = 8
EXAMPLES_WITHOUT = 3
# Django's own admin pages: fuzzed, but Django's tests cover them; fewer examples.
EXAMPLES_ADMIN = 2
QUERY_KEYS = [
    "q",
    "technique",
    "page",
    "cursor",
    "ordering",
    "format",
    "url",
    "maxwidth",
    "maxheight",
    "next",
    "visibility",
    "author",
    "institution",
    "unit",
    "model",
    "layer",
    "status",
    "slug",
    "search",
    "limit",
    "lang",
    "script",
    "kind",
    "o",
    "p",
    "e",
    "_changelist_filters",
]
FORM_KEYS = [
    "title",
    "body",
    "units",
    "edges",
    "visibility",
    "reason",
    "username",
    "email",
    "password",
    "password1",
    "password2",
    "display_name",
    "institution",
    "name",
    "scope",
    "expires",
    "hidden",
    "action",
    "_selected_action",
    "registry_key",
    "weights_source",
    "weights_path",
    "seed",
    "technique",
    "steps",
    "size",
    "label",
    "layers",
    "dataset",
    "k",
]


def _value(name: str | None, inner: str, world: dict[str, list[str]]) -> st.SearchStrategy[str]:
    matching = st.from_regex(inner, fullmatch=True).map(lambda v: quote(v, safe="@:.-_~"))
    choices = [
        matching,
        st.sampled_from(NASTY),
        st.text(max_size=40).map(lambda v: quote(v, safe="")),
    ]
    if name in world:
        choices.insert(0, st.sampled_from(world[name]))
    return st.one_of(choices)


def _path(regex: str, world: dict[str, list[str]]) -> st.SearchStrategy[str]:
    parts = [
        _value(name, inner, world)
        if name
        else st.from_regex(inner, fullmatch=True).map(lambda v: quote(v, safe="/@:.-_~"))
        for name, inner in named_groups(regex)
    ]
    return st.tuples(*parts).map(lambda values: "/" + "".join(values))


_text_value = st.one_of(st.sampled_from(NASTY), st.text(max_size=60), st.integers().map(str))
_query = st.dictionaries(
    st.one_of(st.sampled_from(QUERY_KEYS), st.text(min_size=1, max_size=8)), _text_value, max_size=3
)
_form = st.dictionaries(
    st.one_of(st.sampled_from(FORM_KEYS), st.text(min_size=1, max_size=8)), _text_value, max_size=5
)


def _request(client: Client, method: str, path: str, query: dict[str, str], form: Any) -> int:
    url = f"{path}?{urlencode(query)}" if query else path
    if method == "GET":
        return client.get(url).status_code
    if method == "HEAD":
        return client.head(url).status_code
    if path.startswith("/api/"):
        return client.post(url, form, content_type="application/json").status_code
    return client.post(url, form).status_code


def _failure(method: str, who: str, path: str, query: dict[str, str], error: Any) -> str:
    where = f"{method} {path}{'?' + urlencode(query) if query else ''} as {who}"
    if isinstance(error, BaseException):
        frames = traceback.format_exception(error)
        return f"{where}: raised\n{''.join(frames[-6:])}"
    return f"{where}: answered {error}"


def test_no_url_answers_a_server_error(
    world: dict[str, list[str]], login: Any, people: dict[str, Any]
) -> None:
    clients = {who: login(who) for who in ("anon", "alice", "staff")}
    patterns = endpoints()
    assert len(patterns) > 100, "the resolver lost its patterns"
    failures: list[str] = []
    for regex, _pattern in patterns:
        has_parameters = "(?P<" in regex
        examples = (
            EXAMPLES_ADMIN
            if regex.startswith("admin/") and "importjob/import" not in regex
            else EXAMPLES_WITH_PARAMETERS
            if has_parameters
            else EXAMPLES_WITHOUT
        )

        @given(
            path=_path(regex, world),
            query=_query,
            form=_form,
            method=st.sampled_from(["GET", "GET", "HEAD", "POST"]),
            who=st.sampled_from(sorted(clients)),
        )
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(path: str, query: dict[str, str], form: Any, method: str, who: str) -> None:
            client = clients[who]
            try:
                with transaction.atomic():
                    status = _request(client, method, path, query, form)
                    transaction.set_rollback(True)
            except Exception as error:  # noqa: BLE001 - every failure is listed
                failures.append(_failure(method, who, path, query, error))
                return
            finally:
                if who != "anon" and "_auth_user_id" not in client.session:
                    client.force_login(people[who])  # a fuzzed logout ends the session
            if status >= 500:
                failures.append(_failure(method, who, path, query, status))

        fuzz()
    assert not failures, f"{len(failures)} failures:\n" + "\n\n".join(failures[:20])


def test_every_admin_add_form_answers_an_empty_post_without_a_server_error(
    staff_client: Client,
) -> None:
    """Found by the fuzzer: an admin whose fields are all read-only still offered "add", and an
    empty POST stored a row with NULL in a required column (IntegrityError, 500)."""
    from django.contrib import admin
    from django.urls import reverse

    failures = []
    for model in admin.site._registry:
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
        try:
            with transaction.atomic():
                status = staff_client.post(url, {}).status_code
                transaction.set_rollback(True)
        except Exception as error:  # noqa: BLE001 - every failure is listed
            failures.append(f"POST {url}: {type(error).__name__}: {error}")
            continue
        if status >= 500:
            failures.append(f"POST {url}: {status}")
    assert failures == []


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_format_suffix_routes_never_answer_a_server_error(
    method: str, world: dict[str, list[str]], staff_client: Client
) -> None:
    """Found by the fuzzer: DRF's router adds `<route>.json` aliases, which call the view with
    a `format` argument that custom actions (`layers`, `publish`, `moderation`) and overridden
    `create` methods did not accept (TypeError, 500)."""
    ids = {name: world[name][0] for name in ("ref", "pk")}
    paths = [
        "/api/v1/models/{ref}/layers.json",
        "/api/v1/import-jobs.json",
        "/api/v1/notes/{pk}/publish.json",
        "/api/v1/notes/{pk}/moderation.json",
        "/api/v1/comments/{pk}/moderation.json",
    ]
    failures = []
    for template in paths:
        path = template.format(**ids)
        try:
            with transaction.atomic():
                response = getattr(staff_client, method)(path, {}, content_type="application/json")
                transaction.set_rollback(True)
        except Exception as error:  # noqa: BLE001 - every failure is listed
            failures.append(f"{method.upper()} {path}: {type(error).__name__}: {error}")
            continue
        if response.status_code >= 500:
            failures.append(f"{method.upper()} {path}: {response.status_code}")
    assert failures == []
