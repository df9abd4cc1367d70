"""The API as an outside client meets it (issue 16): a live server on a free port with its own
var dir, `runserver` on the embedded default (the SQLite pass: wsgiref, DEBUG on, what
`make demo` serves) or gunicorn on PostgreSQL (the PostgreSQL pass), both started from a copy of
the test database. The test client had hidden two bugs that only a real server shows: wsgiref
refused DRF's `Hyperlink` as a `Location` header (a 500 after the row was stored), and DEBUG
answered HTML under /api/.

- docs/API.md's example runs with `requests` against the live server and must finish;
- schemathesis runs every operation with every check, as anonymous (every method: the
  refusals must match the schema too), with a read token (reads) and with a write token (every
  method), a few examples each, so both passes together take a few minutes.
"""

import json
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from django.conf import settings as django_settings

from tests.api.fuzz import pins_for, run_every_operation
from tests.api.live import (
    ROOT,
    UNTHROTTLED,
    copy_postgres,
    copy_sqlite,
    drop_postgres,
    run_seed,
    serving,
)
from tests.servers import free_port

# Only so that pytest-django sets up the test database, which the live site starts from.
pytestmark = pytest.mark.django_db

DOC = ROOT / "docs" / "API.md"
EXAMPLES = 5  # per operation and caller; the in-process run (test_schemathesis.py) goes deeper
_CLEARED = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY", "DEBUG")


def _postgres() -> bool:
    return bool(django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"))


@pytest.fixture(scope="module")
def live(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The live site of this pass and what `seed` made in it."""
    import os

    var = tmp_path_factory.mktemp("live-var")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update(UNTHROTTLED, MICROSCOPE_VAR_DIR=str(var), PYTHONUNBUFFERED="1")
    db = django_settings.DATABASES["default"]
    with django_db_blocker.unblock():
        if _postgres():
            name = f"{db['NAME']}_live_{uuid.uuid4().hex[:8]}"
            copy_postgres(db["NAME"], name)
            auth = f"{db['USER']}:{db['PASSWORD']}@" if db["PASSWORD"] else f"{db['USER']}@"
            host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
            env["DATABASE_URL"] = f"postgresql://{auth}{host}/{name}"
            for key in ("REDIS_URL", "CELERY_BROKER_URL"):
                if os.environ.get(key):
                    env[key] = os.environ[key]
            env.update(SECRET_KEY="live-test-" + uuid.uuid4().hex, SECURE_SSL_REDIRECT="0")
            command = [
                str(Path(sys.executable).with_name("gunicorn")),
                "microscope_site.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--timeout",
                "60",
            ]
        else:
            name = ""
            copy_sqlite(str(db["NAME"]), var / "microscope.sqlite3")
            command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    try:
        seeded = run_seed(env)
        with serving(command, env, port, var / "server.log") as base:
            yield {"base": base, "seeded": seeded, "log": var / "server.log"}
    finally:
        if name:
            with django_db_blocker.unblock():
                drop_postgres(name)


def test_the_docs_example_finishes_against_a_live_server(live: dict[str, Any]) -> None:
    """docs/API.md's example, unchanged but for its address and token: its last step (posting
    a note) answered 500 on `runserver`, after storing the note."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert code is not None
    source = code.group(1)
    assert 'API = "http://127.0.0.1:8000/api/v1"' in source and '"msc_…"' in source
    source = source.replace("http://127.0.0.1:8000", live["base"])
    source = source.replace('"msc_…"', repr(live["seeded"]["alice_write"]))
    printed: list[str] = []
    exec(
        compile(source, str(DOC), "exec"),
        {"print": lambda *a: printed.append(" ".join(map(str, a)))},
    )
    assert printed[0].startswith(f"{live['seeded']['ref'].split('@')[0]}")
    assert any(line.startswith("mixed4b:9  strength +0.700") for line in printed), printed
    assert any(line.startswith("   note Dog heads") for line in printed)
    assert printed[-1].startswith(f"posted {live['base']}/")
    # A retry with the same Idempotency-Key stores nothing more (the docs say so).
    headers = {"Authorization": f"Token {live['seeded']['alice_write']}", "Idempotency-Key": "k1"}
    body = {"unit": live["seeded"]["unit"], "body": "retried"}
    answers = [
        requests.post(f"{live['base']}/api/v1/comments/", json=body, headers=headers, timeout=30)
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert answers[1].headers["Idempotent-Replayed"] == "true"


def test_errors_are_json_on_the_live_server(live: dict[str, Any]) -> None:
    base = live["base"]
    for url, status in (
        ("/api/v1/nope/", 404),
        ("/api/v1/models/inceptionv1@zzzz/", 404),
        ("/api/v1/units/?layer=99999999999999999999999", 400),
        ("/api/v1/units/?model=%00", 400),
        ("/api/v1/renders/?unit__in=1,2", 400),
    ):
        answer = requests.get(base + url, timeout=30)
        assert answer.status_code == status, (url, answer.text[:300])
        assert answer.headers["Content-Type"].startswith("application/json"), url
        assert answer.json()["error"]["status"] == status


@pytest.fixture(scope="module")
def live_schema(live: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_url(f"{live['base']}/api/v1/schema/")


@pytest.mark.parametrize(
    ("caller", "methods"),
    [
        ("anonymous", ("GET", "POST", "PUT", "PATCH", "DELETE")),
        ("read", ("GET",)),
        ("write", ("GET", "POST", "PUT", "PATCH", "DELETE")),
    ],
)
def test_schemathesis_finds_nothing_on_the_live_server(
    live: dict[str, Any], live_schema: Any, caller: str, methods: tuple[str, ...]
) -> None:
    seeded = live["seeded"]
    headers = {} if caller == "anonymous" else {"Authorization": f"Token {seeded[caller]}"}
    failures = run_every_operation(
        live_schema, pins_for(seeded), headers, examples=EXAMPLES, coverage=False, methods=methods
    )
    log = live["log"].read_text(errors="replace")
    assert not failures, "\n".join(sorted(set(failures))) + "\n" + log[-3000:]
    assert "Traceback" not in log, log[-3000:]


def test_the_seeded_rows_are_reachable(live: dict[str, Any]) -> None:
    """The run reaches real rows, not only 404s."""
    seeded = live["seeded"]
    answer = requests.get(f"{live['base']}/api/v1/notes/{seeded['note']}/", timeout=30)
    assert answer.status_code == 200 and json.loads(answer.text)["title"] == "Curve detectors"
