"""A property-based run of schemathesis against the live schema (issue 8), in process through
the WSGI app: every GET operation, with generated valid and invalid parameters, as an anonymous
visitor and as staff; no 5xx, and every answer the schema documents matches it.

Bounded: a few examples per operation, no deadline and no shrinking, so each run takes well
under a minute on a 2-core machine. Path parameters are sometimes pinned to the session's
InceptionV1 (`inceptionv1@…/mixed4c/447`) so the run reaches real rows, not only 404s.

Schemathesis's own pytest integration (`schemathesis.pytest.from_fixture`) fails on pytest 9
(`'Function' object has no attribute '_nodeid'`, schemathesis 4.32), so the operations are
driven with Hypothesis directly; every operation runs, and all failures are reported together.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
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
    model = {"ref": str(inceptionv1)}
    api = "/api/v1"
    return {
        f"{api}/models/{{ref}}/": model,
        f"{api}/models/{{ref}}/layers/": model,
        f"{api}/models/{{ref}}/exports/": model,
        f"{api}/models/{{ref}}/layers/{{layer}}/": {**model, "layer": "mixed4c"},
        f"{api}/models/{{ref}}/layers/{{layer}}/units/{{index}}/": {
            **model,
            "layer": "mixed4c",
            "index": 447,
        },
        f"{api}/units/{{id}}/": {"id": unit.pk},
        f"{api}/units/{{id}}/connections/": {"id": unit.pk},
        f"{api}/layers/{{id}}/": {"id": unit.layer_id},
        f"{api}/renders/{{id}}/": {"id": render.pk},
        f"{api}/notes/{{id}}/": {"id": note.pk},
        f"{api}/exports/{{id}}/": {"id": done.pk},
        f"{api}/techniques/{{slug}}/": {"slug": "channel"},
    }


def _summary(error: BaseException) -> str:
    """The failed checks and the curl line that reproduces them, from schemathesis's report."""
    lines = [line.strip() for line in str(error).splitlines()]
    kept = [line for line in lines if line.startswith(("- ", "curl ", "Received:", "["))]
    return "; ".join(kept) or lines[0]


def _call(case: Any, headers: dict[str, str]) -> None:
    case.call_and_validate(headers=headers, checks=CHECKS)


def _run_every_operation(
    schema: Any, pins: dict[str, dict[str, Any]], headers: dict[str, str]
) -> list[str]:
    """Each operation's coverage cases (schemathesis's boundary and wrong-type values), then
    Hypothesis's valid and invalid ones; every failure, one line each with its reproduction."""
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30, "the schema lost its operations"
    for operation in operations:
        coverage = schema.iter_coverage_cases(
            operation,
            generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
            generation_config=schema.config.generation,
        )
        for case in coverage:
            try:
                _call(case, headers)
            except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - all are listed
                failures.append(f"{operation.label} (coverage): {_summary(error)}")
        strategies = [
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        ]
        pinned = pins.get(operation.path)
        if pinned:
            strategies.append(operation.as_strategy(path_parameters=pinned))

        @given(case=st.one_of(strategies))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            _call(case, headers)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - all are listed
            failures.append(f"{operation.label} (fuzzing): {_summary(error)}")
    return failures


def test_anonymous_reads_never_fail_and_match_the_schema(
    api_schema: Any, pins: dict[str, dict[str, Any]]
) -> None:
    failures = _run_every_operation(api_schema, pins, headers={})
    assert not failures, "\n".join(sorted(set(failures)))


def test_staff_reads_never_fail_and_match_the_schema(
    api_schema: Any, pins: dict[str, dict[str, Any]]
) -> None:
    from django.contrib.auth import get_user_model

    from annotations.tokens import token_create

    staff = get_user_model().objects.create_superuser("fuzz", "fuzz@example.org", "pw-12345!")
    _, secret = token_create(user=staff, name="schemathesis", scope="read")
    failures = _run_every_operation(api_schema, pins, {"Authorization": f"Token {secret}"})
    assert not failures, "\n".join(sorted(set(failures)))


def test_a_non_numeric_note_id_is_404_not_500(db: None) -> None:
    """Found by this run: the notes endpoint once parsed the id with int() and answered 500."""
    from rest_framework.test import APIClient

    for bad in ("AAA", "true", "null"):
        assert APIClient().get(f"/api/v1/notes/{bad}/").status_code == 404
