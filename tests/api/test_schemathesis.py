"""A property-based run of schemathesis against the live schema (issue 8), in process through
the WSGI app: every GET operation, with generated valid and invalid parameters, as an anonymous
visitor and as staff; no 5xx, and every answer the schema documents matches it.

Bounded: a few examples per operation, no deadline and no shrinking, so each run takes well
under a minute on a 2-core machine. Path parameters are sometimes pinned to the session's
InceptionV1 (`inceptionv1@…/mixed4c/447`) so the run reaches real rows, not only 404s.

Every check runs (server errors, status codes, content types, response schemas and headers;
tests/api/fuzz.py). The same run against live servers, with writes: tests/api/test_live_api.py.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from tests.api.fuzz import pins_for, run_every_operation

EXAMPLES = 40


@pytest.fixture
def api_schema(db: None, settings: Any) -> Iterator[Any]:
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from microscope_site.wsgi import application

    # A run makes hundreds of requests a minute; the throttles have their own tests.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {k: "100000/minute" for k in ("anon", "user", "token")},
    }
    # As Django's test client does: a request must not close the connection that holds the
    # test's transaction (and, on SQLite, the in-memory database).
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/schema/", application).include(method="GET")
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


@pytest.fixture
def pins(inceptionv1: Any, unit: Any, make_note: Any, media: Path) -> dict[str, dict[str, Any]]:
    """Rows for the run to find (a label, a render, notes, a finished and a queued export), and
    real values for the path parameters that name them, by operation path."""
    from annotations.models import Comment
    from neurons.export import export_request, export_run
    from neurons.models import Technique
    from rendering.models import Render

    unit.curator_label = "curve detector"
    unit.save(update_fields=["curator_label"])
    render = Render.objects.create(
        unit=unit,
        layer=unit.layer,
        technique=Technique.objects.get(slug="channel"),
        params={"steps": 2},
        params_hash="h" * 64,
        image="renders/ab/ab.png",
        thumbnail="thumbs/ab/ab.png",
        image_sha256="a" * 64,
        objective=1.5,
    )
    note = make_note(title="Public curves")
    make_note(title="Private curves", visibility="private")
    done = export_run(export_id=export_request(model=inceptionv1, enqueue=False).pk)
    assert done is not None and done.status == "succeeded"
    export_request(model=inceptionv1, enqueue=False)  # queued: no files, no manifest yet
    comment = Comment.objects.create(unit=unit, author=note.author, body="hi", body_html="hi")
    seeded = {"ref": str(inceptionv1), "unit": unit.pk, "layer": unit.layer_id}
    return pins_for(
        {**seeded, "render": render.pk, "note": note.pk, "comment": comment.pk, "export": done.pk}
    )


def test_anonymous_reads_never_fail_and_match_the_schema(
    api_schema: Any, pins: dict[str, dict[str, Any]]
) -> None:
    failures = run_every_operation(api_schema, pins, {}, examples=EXAMPLES, coverage=True)
    assert not failures, "\n".join(sorted(set(failures)))


def test_staff_reads_never_fail_and_match_the_schema(
    api_schema: Any, pins: dict[str, dict[str, Any]]
) -> None:
    from django.contrib.auth import get_user_model

    from annotations.tokens import token_create

    staff = get_user_model().objects.create_superuser("fuzz", "fuzz@example.org", "pw-12345!")
    _, secret = token_create(user=staff, name="schemathesis", scope="read")
    headers = {"Authorization": f"Token {secret}"}
    failures = run_every_operation(api_schema, pins, headers, examples=EXAMPLES, coverage=True)
    assert not failures, "\n".join(sorted(set(failures)))


def test_a_non_numeric_note_id_is_404_not_500(db: None) -> None:
    """Found by this run: the notes endpoint once parsed the id with int() and answered 500."""
    from rest_framework.test import APIClient

    for bad in ("AAA", "true", "null"):
        assert APIClient().get(f"/api/v1/notes/{bad}/").status_code == 404
