"""PostgreSQL restarts under load: gunicorn answers 503 with our page (never a traceback) while
it is down, and serves pages again by itself once it is back, without a restart.

A private PostgreSQL cluster (tests/servers.py: initdb in a folder of its own, a free port)
plays the database; neither the machine's server nor the test run's own cluster is touched.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import PostgresCluster, free_port, run_folder, wait_for_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["/", "/models/", "/api/v1/models/"]


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("runs once, on the PostgreSQL pass (it starts its own cluster)")
    folder = run_folder()
    server = PostgresCluster(folder / "pg")
    try:
        server.serve()
        server.createdb("microscope")
        yield server
    finally:
        server.stop()  # unless the test left it stopped
    # Not if it would not stop: the next run_folder() sweeps the folder and stops it then.
    shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Answer:
    at: float
    path: str
    status: int  # 0: no HTTP answer at all
    body: str
    retry_after: str | None
    done: float = 0.0  # when the answer came; `at` is when the request was sent


def _get(base: str, path: str, timeout: float = 15) -> Answer:
    at = time.monotonic()
    try:
        with urllib.request.urlopen(base + path, timeout=timeout) as response:
            answer = Answer(at, path, response.status, response.read(2000).decode(), None)
    except urllib.error.HTTPError as error:
        body = error.read(4000).decode(errors="replace")
        answer = Answer(at, path, error.code, body, error.headers.get("Retry-After"))
    except OSError as error:
        answer = Answer(at, path, 0, repr(error), None)
    answer.done = time.monotonic()
    return answer


def test_the_site_answers_503_while_postgres_restarts_and_recovers_by_itself(
    cluster: PostgresCluster, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": cluster.url(),
        "MICROSCOPE_VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "postgres-restart-test-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "API_THROTTLE_ANON": "100000/minute",  # the hammer is one anonymous client
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True
    )
    port = free_port()
    log = tmp_path / "gunicorn.log"
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [gunicorn, "microscope_site.wsgi:application", "--workers", "2", "--bind",
             f"127.0.0.1:{port}", "--timeout", "120", "--log-level", "info",
             "--no-control-socket"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    answers: list[Answer] = []
    stop = threading.Event()

    def hammer(path: str) -> None:
        while not stop.is_set():
            answers.append(_get(base, path))
            time.sleep(0.02)

    try:
        wait_for_port(port, timeout=60)
        # Warm both workers up: each imports the views (and torch) on its first request.
        with ThreadPoolExecutor(max_workers=4) as pool:
            warm = list(pool.map(lambda path: _get(base, path, timeout=180), PAGES + PAGES))
        assert {a.status for a in warm} == {200}, (warm, log.read_text()[-3000:])
        with ThreadPoolExecutor(max_workers=6) as pool:
            for path in PAGES * 2:
                pool.submit(hammer, path)
            time.sleep(1.5)
            stopping = time.monotonic()
            cluster.stop()
            down = time.monotonic()
            time.sleep(3)
            starting = time.monotonic()
            cluster.start()
            up = time.monotonic()
            deadline = up + 15
            while time.monotonic() < deadline:
                recent = [a for a in answers[-30:] if a.at > up]
                if len(recent) >= 12 and all(a.status == 200 for a in recent):
                    break
                time.sleep(0.2)
            stop.set()
        alive = server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log.read_text()
    assert alive, text[-3000:]
    # Answered before the stop began (one still in flight then may rightly be a 503).
    before = [a for a in answers if a.done < stopping]
    outage = [a for a in answers if down <= a.at < starting]
    after = [a for a in answers if a.at >= up]
    assert before and {a.status for a in before} == {200}
    assert len(outage) >= 6, "too few requests while the database was down"
    for answer in outage:
        assert answer.status == 503, (answer.path, answer.status, answer.body[:500])
        assert answer.retry_after is not None and "Traceback" not in answer.body
        if answer.path.startswith("/api/"):
            assert json.loads(answer.body)["error"]["code"] == "database_unavailable"
        else:
            assert "Back in a moment" in answer.body
    # Stopping and starting: every answer is a page or our 503, never a 500 or a dropped socket.
    assert {a.status for a in answers} <= {200, 503}, sorted({a.status for a in answers})
    first_ok = min((a.at for a in after if a.status == 200), default=None)
    assert first_ok is not None and first_ok - up < 15, "pages did not come back by themselves"
    record_property("answers", len(answers))
    record_property("answers_503_while_down", len(outage))
    record_property("database_down_s", round(starting - down, 2))
    record_property("first_200_after_restart_s", round(first_ok - up, 2))
    assert after[-1].status == 200
    assert text.count("Booting worker") == 2  # the same two workers throughout: no restart
