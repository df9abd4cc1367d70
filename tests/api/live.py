"""A live site for the API's outside tests: `runserver` on the embedded default (SQLite, DEBUG on,
wsgiref: the server `make demo` runs) or gunicorn on PostgreSQL, each on a free port with its own
var dir, started from the test database's copy (InceptionV1 already imported) and stopped in
teardown. `seed()` runs inside the server's environment and prints what the tests need."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# High enough that no run is throttled; the throttles have their own tests.
UNTHROTTLED = {f"API_THROTTLE_{who}": "100000/minute" for who in ("ANON", "USER", "TOKEN")}


def copy_sqlite(source: str, target: Path) -> None:
    """A consistent copy (SQLite's backup API; the source is in WAL mode)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def copy_postgres(template: str, name: str) -> None:
    """`CREATE DATABASE name TEMPLATE template`: needs no other connection to the template."""
    import psycopg
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def drop_postgres(name: str) -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_seed(env: dict[str, str]) -> dict[str, Any]:
    code = "from tests.api.live import seed; seed()"
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """Starts `command` in its own process group, waits until the API answers, yields its base
    URL, and stops the whole group (the autoreloader or gunicorn's workers too)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"{base}/api/v1/techniques/", timeout=5) as answer:
                        up = answer.status == 200
                except OSError:
                    up = False  # not listening yet
                if up:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not answer: {log.read_text()[-2000:]}")
                time.sleep(0.5)
            yield base
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def seed() -> None:
    """Inside the live site's environment: people, tokens and rows for the run to reach, on
    top of the copied InceptionV1; prints them as one JSON line."""
    from django.contrib.auth import get_user_model

    from annotations.comments import comment_create
    from annotations.notes import note_create
    from annotations.tokens import token_create
    from neurons.export import export_request
    from neurons.models import NetworkModel, Technique
    from rendering.models import Render
    from tests.api.circuit import docs_example_circuit

    users = get_user_model().objects
    staff = users.create_superuser("livestaff", "livestaff@example.org", "pw-12345!")
    alice = users.create_user("livealice", "livealice@example.org", "pw-12345!")
    model = NetworkModel.objects.get(slug="inceptionv1", weights_detail="0")
    unit = model.layers.get(name="mixed4c").units.get(index=447)
    note = note_create(
        author=alice,
        title="Curve detectors",
        body="Curves in **4c**.",
        units="inceptionv1/mixed4c/447\ninceptionv1/mixed4c/448",
        edges="1 -> 2",
        visibility="public",
        publish=True,
    )
    comment = comment_create(author=alice, body="A first comment.", unit=unit)
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
    export = export_request(model=model, enqueue=False)
    # What docs/API.md's example walks: mixed4c:447's strongest input, its render, a note on it.
    docs_example_circuit(model=model, unit=unit, author=alice)
    print(
        json.dumps(
            {
                "read": token_create(user=staff, name="live read", scope="read")[1],
                "write": token_create(user=staff, name="live write", scope="write")[1],
                "alice_write": token_create(user=alice, name="docs", scope="write")[1],
                "ref": str(model),
                "unit": unit.pk,
                "layer": unit.layer_id,
                "note": note.pk,
                "comment": comment.pk,
                "render": render.pk,
                "export": export.pk,
            }
        )
    )
