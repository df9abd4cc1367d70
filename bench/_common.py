"""Pieces shared by the benchmarks that serve the site as in production (pages.py, load.py).

Each benchmark gets its own PostgreSQL database, Redis database and var folder, so it never
touches the tests' or another benchmark's data; gunicorn serves the site, wrk loads it, and
both run on this machine, so the helpers here also report what else used the CPUs.
"""

import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from types import FrameType
from urllib.parse import urlparse

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
# wrk's default (2 s) drops slower responses from the latency percentiles and counts them as
# socket errors; a longer limit keeps p99 honest, and anything past it is still an error.
WRK_TIMEOUT_S = 10
WRK_INSTALL = ["apt-get", "install", "-y", "wrk"]
RESERVED_DATABASES = frozenset({"test", "postgres", "template0", "template1"})


def bench_environment(
    database_url: str, redis_url: str, var_dir: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The production-like settings every subprocess (manage.py, gunicorn) runs with."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="microscope_site.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        MICROSCOPE_VAR_DIR=str(var_dir),
        STATIC_ROOT=str(var_dir / "static"),
        DEBUG="0",
        SECRET_KEY="bench-pages-not-a-secret-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        # Production has a TLS proxy in front; on loopback there is none, so plain http must
        # be served rather than redirected to https (the HTTPS settings default on, DEBUG off).
        SECURE_SSL_REDIRECT="0",
    )
    env.update(extra or {})
    return env


def database_name(database_url: str) -> str:
    """The database a URL names; refuses the shared ones, which a benchmark must not write."""
    name = urlparse(database_url).path.lstrip("/")
    if not name or name in RESERVED_DATABASES:
        sys.exit(f"refusing to use database {name!r}: give the benchmark its own database")
    return name


def database_create(database_url: str) -> None:
    """Create the benchmark's database if it is missing (CREATE DATABASE needs autocommit)."""
    name = database_name(database_url)
    with psycopg.connect(database_url, dbname="postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def planner_statistics_refresh() -> None:
    """ANALYZE the bench's database (Django's connection), as autovacuum does on a running
    site. This machine's PostgreSQL runs with autovacuum off, so a data set built in one go
    had no statistics: the planner took the 1,223 public notes for 5, and a unit's notes took
    3.1 ms of PostgreSQL instead of 0.24."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def database_drop(database_url: str) -> None:
    """Drop the benchmark's own database (for a rebuild from scratch)."""
    name = database_name(database_url)
    with psycopg.connect(database_url, dbname="postgres", autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    print(f"dropped database {name}")


def wrk_ensure() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    print(f"wrk is missing; install it with: {' '.join(WRK_INSTALL)}")
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        sys.exit("not root on a Debian-like system, so not installing it here")
    print(f"running {' '.join(WRK_INSTALL)}")
    if subprocess.run(WRK_INSTALL).returncode != 0:  # a stale package list: update, try again
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(WRK_INSTALL, check=True)
    wrk = shutil.which("wrk")
    if not wrk:
        sys.exit("apt-get ran but wrk is still not on PATH")
    return wrk


def manage(env: dict[str, str], *args: str) -> None:
    print(f"$ manage.py {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True)


def renders_ensure(env: dict[str, str], slug: str, layer: str, units: int) -> None:
    """Channel renders (8 steps, 64 px) of units 0..units-1 of `layer`, unless they exist."""
    from rendering.models import Render

    rendered = Render.objects.filter(
        layer__model__slug=slug,
        layer__name=layer,
        technique__slug="channel",
        variant=0,
        unit__index__lt=units,
    )
    if rendered.values("unit").distinct().count() < units:
        manage(
            env,
            *("render", slug, "--layers", layer, "--technique", "channel"),
            *("--steps", "8", "--size", "64", "--units", f"0:{units}", "--here"),
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def gunicorn(
    env: dict[str, str], port: int, *, workers: int, log: Path, capture_output: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """gunicorn's sync workers on loopback; `capture_output` sends the site's own log lines
    (warnings, tracebacks) to `log` too."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "microscope_site.wsgi",
        *("-w", str(workers), "-b", f"127.0.0.1:{port}", "--error-logfile", str(log)),
        "--no-control-socket",  # gunicorn's default socket path is shared by every instance
        *(["--capture-output"] if capture_output else []),
    ]
    print(f"$ {' '.join(command[2:])}", flush=True)
    # Its own session, so Ctrl-C reaches only this script, which then stops gunicorn in order.
    server = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    try:
        yield server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        print(f"gunicorn stopped (log: {log})")


def fetch(
    url: str,
    timeout: float = 30,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    data: bytes | None = None,
) -> tuple[int, str, Message]:
    """Status, body and headers of one request; redirects are not followed (3xx is returned)."""
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with _NO_REDIRECTS.open(request, timeout=timeout) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace"), error.headers


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # the 3xx reaches the caller as an HTTPError, as wrk sees it


_NO_REDIRECTS = urllib.request.build_opener(_KeepRedirects)


def wait_until_serving(
    server: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with status {server.returncode}; see {log}")
        try:
            fetch(url, timeout=5)
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"gunicorn did not answer {url} within {timeout:.0f} s")


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def milliseconds(text: str) -> float:
    """A duration as wrk prints it (`812.00us`, `3.21ms`, `1.02s`, `2.00m`) in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


@dataclass(frozen=True)
class WrkTotals:
    """What wrk itself prints for a whole run (`--latency` gives the percentiles)."""

    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    # socket errors (connect, read, write, timeout) and "non-2xx/3xx", only those not zero
    error_counts: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(self.error_counts.values())

    @property
    def error_detail(self) -> str:
        return ", ".join(f"{kind} {n}" for kind, n in self.error_counts.items() if n)


def wrk_totals_parse(output: str) -> WrkTotals:
    """Parse wrk's report; a report without the expected lines raises ValueError."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"cannot find {pattern!r} in wrk's output:\n{output}")
        return match

    # wrk prints these two lines only when their counts are not all zero.
    counts: dict[str, int] = {}
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        kinds = ("connect", "read", "write", "timeout")
        counts.update(zip(kinds, map(int, socket_errors.groups()), strict=True))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        counts["non-2xx/3xx"] = int(non_2xx[1])
    return WrkTotals(
        requests=int(find(r"^\s+(\d+) requests in")[1]),
        requests_per_s=float(find(r"^Requests/sec:\s+([\d.]+)")[1]),
        p50_ms=milliseconds(find(r"^\s+50%\s+(\S+)")[1]),
        p99_ms=milliseconds(find(r"^\s+99%\s+(\S+)")[1]),
        error_counts=counts,
    )


def workers_cpu_s(master: int) -> float:
    """User + system CPU seconds of the master's child processes (Linux /proc), else NaN."""
    total_ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # Fields after the parenthesized command: state, ppid, …, utime (12th), stime (13th).
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == master:
            total_ticks += int(fields[11]) + int(fields[12])
    return total_ticks / os.sysconf("SC_CLK_TCK") if total_ticks else math.nan


def postgres_cpu_s(database: str) -> float:
    """User + system CPU seconds of the PostgreSQL backends serving `database` (Linux /proc).

    Backends that ended meanwhile drop out of the sum, so take it over a run where the site
    keeps its connections (CONN_MAX_AGE)."""
    total_ticks = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            if not command.startswith("postgres: ") or f" {database} " not in f"{command} ":
                continue
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total_ticks += int(fields[11]) + int(fields[12])
    return total_ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu_busy_s() -> float:
    """CPU seconds all CPUs spent busy since boot (/proc/stat; idle and iowait excluded)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def workers_count(master: int) -> int:
    """How many processes gunicorn's master has started (its workers), from /proc."""
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        count += int(fields[1]) == master
    return count


def stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so `finally` blocks stop gunicorn on kill too."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
