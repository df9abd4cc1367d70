"""Page speed: the unit page, the layer page and the home page under load, served as in production.

Sets up everything itself: its own PostgreSQL database (`microscope_bench` on loopback, created
if missing, never dropped), its own folder (`var/bench/`: media, static files, gunicorn's log),
Redis as the Django cache (db 2; the tests use db 15), DEBUG off with a SECRET_KEY. It prepares
the data with manage.py (migrate, InceptionV1 with random weights, channel renders of the first
units of mixed4a at 8 steps and 64 px, the connections between layers, collectstatic), skipping
what exists, then serves the site with gunicorn (2 sync workers) and loads each page with `wrk`
for `--duration` seconds at `--connections` connections, one page after the other. Every page is
fetched twice before the runs (which also warms it) and must answer 200 with the expected
content, so error pages are never what is measured. wrk runs on the same machine as gunicorn and
PostgreSQL, so other work on the machine lowers req/s: each run also prints the load average
before it and the gunicorn workers' CPU time per request, which depends far less on it.

Prints, per page, requests/s, p50 and p99 latency (wrk's timeout is 10 s, so slow responses stay
in the percentiles), and errors (socket errors, timeouts and non-2xx/3xx responses). Last line:
`summary unit_rps=<x> unit_p99_ms=<x> layer_rps=<x> layer_p99_ms=<x> home_rps=<x> errors=<n>`.

    .venv/bin/python bench/pages.py [--duration 30] [--connections 32]

Needs `wrk` (Debian: `apt-get install -y wrk`; tried automatically when running as root), and
PostgreSQL (127.0.0.1:5432, user postgres, trust auth) and Redis (127.0.0.1:6379) running.
"""

import argparse
import io
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from email.message import Message
from pathlib import Path
from types import FrameType
from urllib.parse import urlparse

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DIR = ROOT / "var" / "bench"
MODEL = "inceptionv1"
LAYER = "mixed4a"
UNIT = 0
RENDERED_UNITS = 16  # channel renders of mixed4a units 0..15: images on the pages under test
WORKERS = 2
WRK_THREADS = 2
# wrk's default (2 s) drops slower responses from the latency percentiles and counts them as
# socket errors; a longer limit keeps p99 honest, and anything past it is still an error.
WRK_TIMEOUT_S = 10
GOAL_UNIT_RPS = 500  # the goal on the 2-core machine
GOAL_UNIT_P99_MS = 100
WRK_INSTALL = ["apt-get", "install", "-y", "wrk"]


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    must_contain: tuple[str, ...]  # proves the body is this page, not an error page


@dataclass(frozen=True)
class Result:
    page: Page
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    error_detail: str  # e.g. "timeout 46, non-2xx/3xx 2"
    # CPU time of gunicorn's workers per request: steadier than req/s when other processes
    # share the CPUs (PostgreSQL's share is not in it). NaN where /proc is missing.
    worker_cpu_ms: float = math.nan
    load_before: float = math.nan  # 1-minute load average when the run started


PAGES = (
    Page(
        "unit",
        f"/models/{MODEL}/{LAYER}/{UNIT}/",
        (f"{LAYER}:{UNIT}", "Feature visualizations", 'src="/media/'),
    ),
    Page("layer", f"/models/{MODEL}/{LAYER}/", (f"{LAYER}", f"visualization of {LAYER}:0")),
    Page("home", "/", ("InceptionV1", f"/models/{MODEL}/")),
)


def bench_environment(database_url: str, redis_url: str) -> dict[str, str]:
    """The production-like settings every subprocess (manage.py, gunicorn) runs with."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="microscope_site.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        MICROSCOPE_VAR_DIR=str(BENCH_DIR),
        STATIC_ROOT=str(BENCH_DIR / "static"),
        DEBUG="0",
        SECRET_KEY="bench-pages-not-a-secret-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def database_create(database_url: str) -> None:
    """Create the benchmark's database if it is missing (CREATE DATABASE needs autocommit)."""
    name = urlparse(database_url).path.lstrip("/")
    if not name or name in {"test", "postgres"}:
        sys.exit(f"refusing to use database {name!r}: give the benchmark its own database")
    with psycopg.connect(database_url, dbname="postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


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


def prepare(env: dict[str, str]) -> None:
    """Migrate, import, render, connect, collect static files; skip what already exists."""
    started = time.perf_counter()
    manage(env, "migrate", "--verbosity", "0")

    # What exists is read through the ORM in this process, with the same settings.
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connections

    from neurons.models import NetworkModel
    from rendering.models import LayerConnection, Render

    models = NetworkModel.objects.filter(slug=MODEL, status=NetworkModel.Status.READY)
    if not models.exists():
        manage(env, "import_model", MODEL, "--weights", "random", "--seed", "0")
    rendered = Render.objects.filter(
        layer__model__in=models,
        layer__name=LAYER,
        technique__slug="channel",
        variant=0,
        unit__index__lt=RENDERED_UNITS,
    )
    if rendered.values("unit").distinct().count() < RENDERED_UNITS:
        manage(
            env,
            *("render", MODEL, "--layers", LAYER, "--technique", "channel"),
            *("--steps", "8", "--size", "64", "--units", f"0:{RENDERED_UNITS}", "--here"),
        )
    if not LayerConnection.objects.filter(target__model__in=models, target__name=LAYER).exists():
        manage(env, "connections", MODEL, "--here")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    connections.close_all()
    print(f"prepared in {time.perf_counter() - started:.1f} s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def gunicorn(env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    log = BENCH_DIR / "gunicorn.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "microscope_site.wsgi",
        *("-w", str(WORKERS), "-b", f"127.0.0.1:{port}", "--error-logfile", str(log)),
        "--no-control-socket",  # gunicorn's default socket path is shared by every instance
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
        print(f"gunicorn stopped (log: {log.relative_to(ROOT)})")


def fetch(url: str, timeout: float = 30) -> tuple[int, str, Message]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace"), error.headers


def wait_until_serving(server: subprocess.Popen[bytes], url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with status {server.returncode}; see var/bench/gunicorn.log")
        try:
            fetch(url, timeout=5)
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"gunicorn did not answer {url} within {timeout:.0f} s")


def page_check(base: str, page: Page) -> None:
    """Fetch the page twice (the first warms it) and insist both times it is the right page."""
    timings_ms = []
    for _ in range(2):
        started = time.perf_counter()
        status, body, headers = fetch(base + page.path)
        timings_ms.append(1000 * (time.perf_counter() - started))
        if status != 200:
            sys.exit(f"{page.path} answered {status}, not 200:\n{body[:2000]}")
        missing = [text for text in page.must_contain if text not in body]
        if missing:
            sys.exit(f"{page.path} answered 200 but lacks {missing}:\n{body[:2000]}")
    cache = headers.get("X-Page-Cache", "no header")
    print(
        f"checked {page.path}: 200, {len(body.encode()) / 1024:.0f} KiB, one request"
        f" {timings_ms[0]:.0f} ms then {timings_ms[1]:.0f} ms, X-Page-Cache: {cache}"
    )


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


def wrk_parse(page: Page, output: str) -> Result:
    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            sys.exit(f"cannot find {pattern!r} in wrk's output:\n{output}")
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
    return Result(
        page=page,
        requests_per_s=float(find(r"^Requests/sec:\s+([\d.]+)")[1]),
        p50_ms=_milliseconds(find(r"^\s+50%\s+(\S+)")[1]),
        p99_ms=_milliseconds(find(r"^\s+99%\s+(\S+)")[1]),
        requests=int(find(r"^\s+(\d+) requests in")[1]),
        errors=sum(counts.values()),
        error_detail=", ".join(f"{kind} {n}" for kind, n in counts.items() if n),
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


def wrk_run(wrk: str, url: str, page: Page, duration: int, connections: int, master: int) -> Result:
    options = [
        *(f"-t{WRK_THREADS}", f"-c{connections}", f"-d{duration}s", f"--timeout={WRK_TIMEOUT_S}s"),
        *("--latency", url),
    ]
    load = os.getloadavg()[0]
    print(f"$ wrk {' '.join(options)}    (load average before: {load:.2f})", flush=True)
    cpu_before = workers_cpu_s(master)
    done = subprocess.run([wrk, *options], capture_output=True, text=True, check=True)
    cpu = workers_cpu_s(master) - cpu_before
    result = wrk_parse(page, done.stdout)
    per_request_ms = 1000 * cpu / result.requests if result.requests else math.nan
    return replace(result, worker_cpu_ms=per_request_ms, load_before=load)


def report(results: Sequence[Result]) -> None:
    header = ("req/s", "p50 ms", "p99 ms", "requests", "errors", "cpu ms/req", "load")
    print(f"{'page':<6} {'path':<30}" + "".join(f" {h:>10}" for h in header))
    for r in results:
        cells = (
            f"{r.requests_per_s:.1f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.requests}",
            f"{r.errors}",
            f"{r.worker_cpu_ms:.2f}",
            f"{r.load_before:.2f}",
        )
        row = f"{r.page.name:<6} {r.page.path:<30}" + "".join(f" {c:>10}" for c in cells)
        print(f"{row}  {r.error_detail}".rstrip())
    print(
        "cpu ms/req: CPU time of the gunicorn workers per request; load: the 1-minute load"
        " average before the run (above the CPU count, other processes shared the CPUs)"
    )
    by_name = {r.page.name: r for r in results}
    unit, layer, home = by_name["unit"], by_name["layer"], by_name["home"]
    errors = sum(r.errors for r in results)
    met = unit.requests_per_s >= GOAL_UNIT_RPS and unit.p99_ms <= GOAL_UNIT_P99_MS and not errors
    print(
        f"goal: unit page >= {GOAL_UNIT_RPS} req/s, p99 <= {GOAL_UNIT_P99_MS} ms, zero errors:"
        f" {'met' if met else 'not met'}"
    )
    print(
        f"summary unit_rps={unit.requests_per_s:.1f} unit_p99_ms={unit.p99_ms:.2f}"
        f" layer_rps={layer.requests_per_s:.1f} layer_p99_ms={layer.p99_ms:.2f}"
        f" home_rps={home.requests_per_s:.1f} errors={errors}"
    )


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds of load per page")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/microscope_bench"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/2", help="Django cache")
    args = parser.parse_args()
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows up in logs too
    signal.signal(signal.SIGTERM, _stop)  # so `finally` stops gunicorn on kill too

    wrk = wrk_ensure()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    database_create(args.database_url)
    env = bench_environment(args.database_url, args.redis_url)
    prepare(env)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    results = []
    with gunicorn(env, port) as server:
        wait_until_serving(server, base + "/")
        for page in PAGES:
            page_check(base, page)
        for page in PAGES:
            results.append(
                wrk_run(wrk, base + page.path, page, args.duration, args.connections, server.pid)
            )
    print(
        f"gunicorn {WORKERS} sync workers, wrk -t{WRK_THREADS} -c{args.connections}"
        f" -d{args.duration}s, {os.cpu_count()} CPUs shared by wrk, gunicorn and PostgreSQL"
    )
    report(results)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted")
