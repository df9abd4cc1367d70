"""`python -m tests.servers` (what `make test` runs each pass through): the command gets a private
PostgreSQL and Redis of its own, never the machine's, and both are gone when it ends."""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import servers

pytestmark = pytest.mark.integration

ANNOUNCED = re.compile(
    r"PostgreSQL at postgresql://postgres@127\.0\.0\.1:(\d+)/microscope \(data in (\S+)\), "
    r"Redis at redis://127\.0\.0\.1:(\d+)/0"
)
# What the command sees: the servers' own idea of their port and data folder.
REPORT = """
import os, sys, psycopg, redis
with psycopg.connect(os.environ["DATABASE_URL"]) as db:
    port, data = (db.execute(f"SHOW {name}").fetchone()[0] for name in ("port", "data_directory"))
broker = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
print("seen", port, data, broker.config_get("port")["port"], os.environ.get("REDIS_URL"))
sys.exit(int(sys.argv[1]))
"""


@pytest.fixture(autouse=True)
def _once() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("runs once, on the PostgreSQL pass (it starts its own servers)")


def _wrapper(*command: str, new_session: bool = False) -> subprocess.Popen[str]:
    # The machine's servers in the environment, as a developer's shell might have them.
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
        "REDIS_URL": "redis://127.0.0.1:6379/14",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.servers", "--servers", "--", *command],
        cwd=servers.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=new_session, preexec_fn=_as_a_terminal_starts_it,
    )  # fmt: skip


def _as_a_terminal_starts_it() -> None:
    """Ctrl-C as a terminal's foreground job has it, even when this suite runs as a background
    job (`make test &`), which starts with SIGINT ignored and would pass that on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_two_runs_at_once_each_get_their_own_servers_and_both_stop_them() -> None:
    runs = [_wrapper(sys.executable, "-c", REPORT, code) for code in ("0", "3")]
    outputs = [run.communicate(timeout=180)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 3], outputs  # the command's own exit code
    seen = []
    for output in outputs:
        pg_port, data, redis_port = ANNOUNCED.search(output).groups()  # type: ignore[union-attr]
        assert f"seen {pg_port} {data} {redis_port} None" in output, output
        assert Path(data).is_relative_to(servers.servers_base())
        assert not Path(data).exists() and not _listening(int(pg_port))
        assert not _listening(int(redis_port))
        seen += [int(pg_port), int(redis_port)]
    assert len(set(seen)) == 4 and not {5432, 6379} & set(seen)


def test_ctrl_c_stops_the_command_and_then_the_servers() -> None:
    run = _wrapper("sleep", "60", new_session=True)
    assert run.stdout is not None
    pg_port, data, redis_port = ANNOUNCED.search(run.stdout.readline()).groups()  # type: ignore[union-attr]
    assert _listening(int(pg_port)) and _listening(int(redis_port))
    os.killpg(run.pid, signal.SIGINT)  # what a terminal sends its foreground processes
    assert run.wait(timeout=60) == 130
    assert not _listening(int(pg_port)) and not _listening(int(redis_port))
    assert not Path(data).parent.exists()


def test_servers_of_a_run_killed_outright_are_stopped_by_the_next_run() -> None:
    run = _wrapper("sleep", "60", new_session=True)
    assert run.stdout is not None
    pg_port, data, redis_port = ANNOUNCED.search(run.stdout.readline()).groups()  # type: ignore[union-attr]
    os.killpg(run.pid, signal.SIGKILL)  # no cleanup: PostgreSQL and Redis outlive it
    run.wait()
    assert _listening(int(pg_port)) and _listening(int(redis_port))
    folder = servers.run_folder()
    try:
        assert not Path(data).parent.exists()
        assert not _listening(int(pg_port)) and not _listening(int(redis_port))
    finally:
        shutil.rmtree(folder)


def test_missing_packages_are_named_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(glob, "glob", lambda pattern: [])
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # not root: nothing is installed
    with pytest.raises(servers.Missing) as missing:
        servers.packages_ensure()
    message = str(missing.value)
    assert "\n" not in message
    assert "apt-get install postgresql redis-server chromium" in message
