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
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    WRK_TIMEOUT_S,
    bench_environment,
    database_create,
    fetch,
    free_port,
    gunicorn,
    manage,
    planner_statistics_refresh,
    renders_ensure,
    stop_on_sigterm,
    wait_until_serving,
    workers_cpu_s,
    wrk_ensure,
    wrk_totals_parse,
)

BENCH_DIR = ROOT / "var" / "bench"
MODEL = "inceptionv1"
LAYER = "mixed4a"
UNIT = 0
RENDERED_UNITS = 16  # channel renders of mixed4a units 0..15: images on the pages under test
WORKERS = 2
WRK_THREADS = 2
GOAL_UNIT_RPS = 500  # the goal on the 2-core machine
GOAL_UNIT_P99_MS = 100


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
        (f"{LAYER}:{UNIT}", 'data-tab="channel" aria-current="page"', 'src="/media/'),
    ),
    Page("layer", f"/models/{MODEL}/{LAYER}/", (f"{LAYER}", f"visualization of {LAYER}:0")),
    Page("home", "/", ("InceptionV1", f"/models/{MODEL}/")),
)


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
    from rendering.models import LayerConnection

    models = NetworkModel.objects.filter(slug=MODEL, status=NetworkModel.Status.READY)
    if not models.exists():
        manage(env, "import_model", MODEL, "--weights", "random", "--seed", "0")
    renders_ensure(env, MODEL, LAYER, RENDERED_UNITS)
    if not LayerConnection.objects.filter(target__model__in=models, target__name=LAYER).exists():
        manage(env, "connections", MODEL, "--here")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    planner_statistics_refresh()
    connections.close_all()
    print(f"prepared in {time.perf_counter() - started:.1f} s")


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


def wrk_parse(page: Page, output: str) -> Result:
    try:
        totals = wrk_totals_parse(output)
    except ValueError as error:
        sys.exit(str(error))
    return Result(
        page=page,
        requests_per_s=totals.requests_per_s,
        p50_ms=totals.p50_ms,
        p99_ms=totals.p99_ms,
        requests=totals.requests,
        errors=totals.errors,
        error_detail=totals.error_detail,
    )


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
    stop_on_sigterm()

    wrk = wrk_ensure()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    database_create(args.database_url)
    env = bench_environment(args.database_url, args.redis_url, BENCH_DIR)
    prepare(env)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    results = []
    log = BENCH_DIR / "gunicorn.log"
    with gunicorn(env, port, workers=WORKERS, log=log) as server:
        wait_until_serving(server, base + "/", log)
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
