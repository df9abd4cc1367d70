"""Load: a mixed workload on a realistic data set, served as in production, for a fixed time.

Sets up everything itself: its own PostgreSQL database (`microscope_load`, created if missing;
`--rebuild` drops and rebuilds it), its own var folder (`--var-dir`: media, static files, the
request list, gunicorn's log), Redis as the Django cache (db 4, flushed at the start of every
run so runs compare), DEBUG off with a SECRET_KEY. The data set, built through the real
services and commands and skipped where it exists: InceptionV1 and ResNet-50 imported with
random weights (21,972 units), channel renders of 16 units of each (8 steps, 64 px, through
`manage.py render --here`), the connections of InceptionV1, 300 people in two institutions (six
curators), curator labels on 400 units, 2,000 circuit notes and 3,000 comments and replies.

Then gunicorn (2 sync workers) serves the site and `wrk` with `bench/load.lua` keeps
`--connections` connections busy in two measured phases, each reported on its own: the first
`--cold` seconds right after the cache flush (every page is built once before it can be a hit;
other draws from the same request list; last line `cold_summary …`), then `--duration` seconds
of the site as it runs once its pages are built (the final `summary` line). Each request is
drawn from a weighted list (`--weights` changes it): unit pages (random
units of both models), layer pages, /search/?q=, API lists and details (half of them with a
read token), and comment posts through the API with write tokens of 40 people. The posting
and API rate limits are raised for the run (printed), so what is measured is the site, not
the throttle. One wrk thread per connection lets load.lua tell every answer's request kind,
so each kind gets its own counts, statuses, page-cache hits and latencies; overall req/s and
percentiles are wrk's own (timeout 10 s, so slow answers stay in p99). Comments posted are
counted in the database before and after. The CPU time of gunicorn's workers, of this
database's PostgreSQL backends, of wrk and of the whole machine is printed too: the machine is
shared, and the cost per request bounds the latency whatever else runs (Little's law).

Last line: `summary rps=<x> p50_ms=<x> p99_ms=<x> errors=<n> status_5xx=<n>`, where errors
are wrk's socket errors and non-2xx/3xx answers; the cold phase's `cold_summary` line has the
same form.

    .venv/bin/python bench/load.py [--duration 60] [--cold 60] [--connections 64] [--rebuild]
    .venv/bin/python bench/load.py --weights comment_post=0   # the mix without writes

Needs `wrk` (Debian: `apt-get install -y wrk`; tried automatically when running as root),
PostgreSQL (127.0.0.1:5432, user postgres, trust auth) and Redis (127.0.0.1:6379). The first
build took 11 minutes on the shared 2-core machine (imports, renders and connections are most
of it); later runs spend about a minute checking what exists before the load starts.
"""

import argparse
import io
import json
import math
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    WRK_TIMEOUT_S,
    WrkTotals,
    bench_environment,
    database_create,
    database_drop,
    fetch,
    free_port,
    gunicorn,
    machine_cpu_busy_s,
    manage,
    planner_statistics_refresh,
    postgres_cpu_s,
    renders_ensure,
    stop_on_sigterm,
    wait_until_serving,
    workers_count,
    workers_cpu_s,
    wrk_ensure,
    wrk_totals_parse,
)

LUA_SCRIPT = ROOT / "bench" / "load.lua"
MODELS = ("inceptionv1", "resnet50")
RENDERED = (("inceptionv1", "mixed4a"), ("resnet50", "layer3.0"))  # units 0..15 of each
RENDERED_UNITS = 16
WORKERS = 2
GOAL_P99_MS = 250
SEED = 0

# The data set's size.
PEOPLE = 300
CURATORS = 6
LABELLED_UNITS = 400
NOTES = 2_000
COMMENTS = 3_000
USERNAME = "load-{:03d}"
INSTITUTIONS = (
    ("north-lab", "North Vision Lab", "north.example"),
    ("south-institute", "South Institute", "south.example"),
)
# Curator labels and note text: the words the search requests look for.
LABELS = (
    "curve detector",
    "high-low frequency detector",
    "color contrast",
    "dog head",
    "car wheel",
    "fur texture",
    "eye detector",
    "boundary detector",
    "line detector",
    "circle detector",
    "brightness gradient",
    "text and letters",
)
NOTE_WORDS = ("curve", "frequency", "contrast", "texture", "boundary", "detector", "wheel", "eye")

# The request mix: relative weights of each kind of request (load.lua draws one per request).
WEIGHTS = {
    "unit_page": 35,
    "layer_page": 10,
    "search": 10,
    "api_list": 17,
    "api_detail": 20,
    "comment_post": 8,
}
UNITS_SAMPLED = 1_500  # per model: the unit pages and API unit details requested
POSTERS = 40  # people whose write tokens post the comments
READERS = 20  # people whose read tokens make half of the API reads
TOKEN_NAME = "bench/load.py"
# Raised for the run so that one client address and 40 people can keep 64 connections busy.
RATE_LIMITS_RAISED = {
    "ANNOTATIONS_POSTS_PER_MINUTE": "1000000",
    "API_THROTTLE_ANON": "1000000/minute",
    "API_THROTTLE_USER": "1000000/minute",
    "API_THROTTLE_TOKEN": "1000000/minute",
}
# Both phases on the same PostgreSQL connections, so their backends' CPU time is counted
# (a connection closed after the default 60 s takes its backend's time with it).
CONNECTIONS_KEPT = {"CONN_MAX_AGE": "3600"}
EXPECTED = {  # the answers a correct site gives each kind (others are errors)
    "unit_page": {200},
    "layer_page": {200},
    "search": {200, 302},  # a unit shorthand redirects to the unit
    "api_list": {200},
    "api_detail": {200},
    "comment_post": {201},
}


# --- the request list: pure, tested in tests/bench/test_load_script.py ----------------------


@dataclass(frozen=True)
class UnitRow:
    id: int
    model: str
    layer: str
    index: int


@dataclass(frozen=True)
class Catalogue:
    """What the requests are made of, read from the bench database."""

    units: Sequence[UnitRow]  # sampled units of every model
    layers: Sequence[tuple[str, str, int]]  # (model, layer, number of units)
    search_terms: Sequence[str]
    note_ids: Sequence[int]  # public, published, not hidden
    unit_comment_ids: Sequence[int]  # live comments on units
    discussed_unit_ids: Sequence[int]  # units with notes or comments
    read_tokens: Sequence[str]
    write_tokens: Sequence[str]


@dataclass(frozen=True)
class Request:
    kind: str
    method: str
    path: str
    body: str = ""  # JSON; `{n}` becomes a number unique to the request (load.lua)
    token: str = ""


def requests_build(
    catalogue: Catalogue, rng: random.Random, per_kind: int = 400
) -> dict[str, list[Request]]:
    """`per_kind` requests of every kind in WEIGHTS (unit pages: one per sampled unit)."""
    c = catalogue
    for name in ("units", "layers", "search_terms", "note_ids", "unit_comment_ids"):
        if not getattr(c, name):
            raise ValueError(f"the catalogue has no {name}: build the data set first")
    if not c.discussed_unit_ids or not c.read_tokens or not c.write_tokens:
        raise ValueError("the catalogue needs discussed units, read tokens and write tokens")

    def reader() -> str:
        return rng.choice(c.read_tokens) if rng.random() < 0.5 else ""

    def layer_path() -> str:
        model, layer, units = rng.choice(c.layers)
        path = f"/models/{model}/{layer}/"
        pages = math.ceil(units / 200)  # neurons.views.UNITS_PER_PAGE
        roll = rng.random()
        if roll < 0.2 and pages > 1:
            return f"{path}?page={rng.randint(2, pages)}"
        if roll < 0.3:
            return f"{path}?technique=neuron"
        return path

    def search_path() -> str:
        if rng.random() < 0.3:
            unit = rng.choice(c.units)
            query = f"{unit.model} {unit.layer}:{unit.index}"
        else:
            query = rng.choice(c.search_terms)
        return "/search/?q=" + quote(query)

    def api_list_path() -> str:
        unit = rng.choice(c.units)
        model, layer, _ = rng.choice(c.layers)
        discussed = rng.choice(c.discussed_unit_ids)
        return rng.choice(
            (
                "/api/v1/models/",
                f"/api/v1/units/?model={model}&layer_name={quote(layer)}",
                f"/api/v1/layers/?model={model}",
                "/api/v1/units/?labelled=true",
                "/api/v1/notes/",
                f"/api/v1/notes/?unit={discussed}",
                f"/api/v1/comments/?unit={discussed}",
                f"/api/v1/renders/?unit={unit.id}",
                "/api/v1/renders/?technique=channel",
                "/api/v1/institutions/",
            )
        )

    def api_detail_path() -> str:
        unit = rng.choice(c.units)
        return rng.choice(
            (
                f"/api/v1/units/{unit.id}/",
                f"/api/v1/models/{unit.model}/layers/{unit.layer}/units/{unit.index}/",
                f"/api/v1/models/{unit.model}/layers/{unit.layer}/",
                f"/api/v1/models/{unit.model}/",
                f"/api/v1/notes/{rng.choice(c.note_ids)}/",
                f"/api/v1/comments/{rng.choice(c.unit_comment_ids)}/",
            )
        )

    def comment_body() -> str:
        roll = rng.random()
        text = "Load test comment {n}: " + rng.choice(LABELS) + "?"
        if roll < 0.7:
            where: dict[str, Any] = {"unit": rng.choice(c.units).id}
        elif roll < 0.9:
            where = {"note": rng.choice(c.note_ids)}
        else:
            where = {"parent": rng.choice(c.unit_comment_ids)}
        return json.dumps({**where, "body": text})

    built: dict[str, list[Request]] = {
        "unit_page": [
            Request("unit_page", "GET", f"/models/{u.model}/{u.layer}/{u.index}/") for u in c.units
        ],
        "layer_page": [Request("layer_page", "GET", layer_path()) for _ in range(per_kind)],
        "search": [Request("search", "GET", search_path()) for _ in range(per_kind)],
        "api_list": [
            Request("api_list", "GET", api_list_path(), token=reader()) for _ in range(per_kind)
        ],
        "api_detail": [
            Request("api_detail", "GET", api_detail_path(), token=reader()) for _ in range(per_kind)
        ],
        "comment_post": [
            Request(
                "comment_post",
                "POST",
                "/api/v1/comments/",
                comment_body(),
                rng.choice(c.write_tokens),
            )
            for _ in range(per_kind)
        ],
    }
    return {kind: built[kind] for kind in WEIGHTS}


_TSV_SAFE = re.compile(r"[^\t\r\n]*")


def requests_tsv(weights: Mapping[str, int], requests: Mapping[str, Sequence[Request]]) -> str:
    """The request list load.lua reads: `weight<TAB>kind<TAB>n` lines, then one
    `request<TAB>kind<TAB>method<TAB>path<TAB>token<TAB>body` line per request."""
    lines = []
    for kind, weight in weights.items():
        if not re.fullmatch(r"[a-z_]+", kind):
            raise ValueError(f"a kind is named with a-z and _ only (load.lua's counters): {kind!r}")
        if weight <= 0:
            raise ValueError(f"the weight of {kind!r} must be positive, not {weight}")
        if not requests.get(kind):
            raise ValueError(f"no requests of kind {kind!r}")
        lines.append(f"weight\t{kind}\t{weight}")
    for kind in weights:
        for r in requests[kind]:
            cells = (r.kind, r.method, r.path, r.token, r.body)
            if not all(_TSV_SAFE.fullmatch(cell) for cell in cells) or not r.path.startswith("/"):
                raise ValueError(f"cannot write {r!r} on one line of the request list")
            lines.append("request\t" + "\t".join(cells))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class KindStats:
    """One request kind as load.lua counted it."""

    kind: str
    sent: int
    responses: int
    no_response: int  # timeouts and socket errors (the request got no answer)
    cut_off: int  # still in flight when the time was up (the server may yet answer them)
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int] = field(default_factory=dict)
    page_cache_hits: int = 0  # answers with X-Page-Cache: hit (neurons.pagecache)
    page_cache_misses: int = 0

    @property
    def page_cache(self) -> str:
        """Hit rate of the whole-page cache, or "-" for answers it does not keep."""
        seen = self.page_cache_hits + self.page_cache_misses
        return f"{100 * self.page_cache_hits / seen:.0f}%" if seen else "-"

    def unexpected(self, expected: set[int]) -> dict[int, int]:
        return {code: n for code, n in self.statuses.items() if code not in expected}

    @property
    def status_5xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if 500 <= code <= 599)


_LUA_LINE = re.compile(
    r"^load\.lua kind=(?P<kind>\S+) sent=(?P<sent>\d+) responses=(?P<responses>\d+)"
    r" no_response=(?P<no_response>\d+) cut_off=(?P<cut_off>\d+) p50_ms=(?P<p50>[\d.]+|nan) p99_ms=(?P<p99>[\d.]+|nan)"
    r" statuses=(?P<statuses>\S*) page_cache=hit:(?P<hits>\d+),miss:(?P<misses>\d+)$",
    re.MULTILINE,
)


def lua_report_parse(output: str) -> dict[str, KindStats]:
    """The `load.lua kind=…` lines load.lua's done() prints after wrk's own report."""
    stats = {}
    for m in _LUA_LINE.finditer(output):
        statuses = {}
        for pair in filter(None, m["statuses"].split(",")):
            code, _, count = pair.partition(":")
            statuses[int(code)] = int(count)
        stats[m["kind"]] = KindStats(
            kind=m["kind"],
            sent=int(m["sent"]),
            responses=int(m["responses"]),
            no_response=int(m["no_response"]),
            cut_off=int(m["cut_off"]),
            p50_ms=float(m["p50"]),
            p99_ms=float(m["p99"]),
            statuses=statuses,
            page_cache_hits=int(m["hits"]),
            page_cache_misses=int(m["misses"]),
        )
    if not stats:
        raise ValueError(f"no `load.lua kind=` lines in wrk's output:\n{output}")
    return stats


@dataclass(frozen=True)
class Window:
    """Some seconds of a run, all kinds together, as load.lua counted them."""

    start_s: int
    end_s: int
    responses: int
    p50_ms: float
    p99_ms: float
    at_run_p99: int  # answers as slow as the whole run's p99 or slower


_WINDOW_LINE = re.compile(
    r"^load\.lua window_s=(?P<start>\d+)-(?P<end>\d+) responses=(?P<responses>\d+)"
    r" p50_ms=(?P<p50>[\d.]+|nan) p99_ms=(?P<p99>[\d.]+|nan) at_run_p99=(?P<slow>\d+)$",
    re.MULTILINE,
)


def lua_windows_parse(output: str) -> list[Window]:
    """The `load.lua window_s=…` lines, in time order (none from an older load.lua)."""
    windows = [
        Window(
            start_s=int(m["start"]),
            end_s=int(m["end"]),
            responses=int(m["responses"]),
            p50_ms=float(m["p50"]),
            p99_ms=float(m["p99"]),
            at_run_p99=int(m["slow"]),
        )
        for m in _WINDOW_LINE.finditer(output)
    ]
    return sorted(windows, key=lambda window: window.start_s)


def windows_lines(windows: Sequence[Window], elapsed_s: float | None = None) -> list[str]:
    """The run's time line: where its slowest answers were (the first seconds after a cache
    flush, or all along). The last window ends with the run (`elapsed_s`), usually mid-way."""
    if not windows:
        return []
    lines = [
        f"{'seconds':<13} {'answers':>10} {'req/s':>10} {'p50 ms':>10} {'p99 ms':>10}"
        f" {'at run p99':>10}"
    ]
    for w in windows:
        end = (
            w.end_s if elapsed_s is None else max(round(min(w.end_s, elapsed_s), 1), w.start_s + 1)
        )
        span = f"{w.start_s}-{end:g}"
        rate = w.responses / (end - w.start_s)
        lines.append(
            f"{span:<13} {w.responses:>10} {rate:>10.1f} {w.p50_ms:>10.1f}"
            f" {w.p99_ms:>10.1f} {w.at_run_p99:>10}"
        )
    slow = sum(w.at_run_p99 for w in windows)
    first = windows[0].at_run_p99
    lines.append(
        "time line: answers by when they came; at run p99: answers as slow as the phase's"
        f" p99 or slower, within 2 % ({first} of {slow} in the first window)"
    )
    return lines


def summary_line(totals: WrkTotals, kinds: Mapping[str, KindStats], name: str = "summary") -> str:
    status_5xx = sum(k.status_5xx for k in kinds.values())
    return (
        f"{name} rps={totals.requests_per_s:.1f} p50_ms={totals.p50_ms:.2f}"
        f" p99_ms={totals.p99_ms:.2f} errors={totals.errors} status_5xx={status_5xx}"
    )


def weights_parse(text: str, base: Mapping[str, int] = WEIGHTS) -> dict[str, int]:
    """`kind=weight,…` changes to the mix (`comment_post=0` leaves posts out)."""
    weights = dict(base)
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, value = item.partition("=")
        if kind not in base:
            raise ValueError(f"unknown request kind {kind!r}; the kinds are {', '.join(base)}")
        if not value.isdigit():
            raise ValueError(f"{item!r}: write kind=weight with a whole number >= 0")
        weights[kind] = int(value)
    weights = {kind: weight for kind, weight in weights.items() if weight > 0}
    if not weights:
        raise ValueError("every weight is 0: nothing to request")
    return weights


def comments_line(posts: KindStats | None, before: int, after: int) -> str:
    """Comments stored against comments answered 201. Posts cut off by the end of the run may
    still be stored (the server answers them after wrk has gone), so up to that many more."""
    created = posts.statuses.get(201, 0) if posts else 0
    cut_off = posts.cut_off if posts else 0
    stored = after - before
    consistent = created <= stored <= created + cut_off
    return (
        f"comments in the database: {before} before, {after} after: {stored} stored during the"
        f" run; 201 answers: {created}, posts cut off by the end: {cut_off}"
        + ("" if consistent else "  <-- MISMATCH: rows and answers disagree")
    )


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds used so far: by the machine, gunicorn's workers, this database's
    PostgreSQL backends, and this script's finished children (wrk)."""

    machine: float
    workers: float
    postgres: float
    children: float

    def __sub__(self, earlier: "CpuUse") -> "CpuUse":
        return CpuUse(
            self.machine - earlier.machine,
            self.workers - earlier.workers,
            self.postgres - earlier.postgres,
            self.children - earlier.children,
        )


def cpu_line(used: CpuUse, *, requests: int, seconds: float, cpus: int) -> str:
    """Where the CPUs went during the run: ours per request, and what everyone else took."""
    per = 1000 / requests if requests else math.nan
    others = used.machine - used.workers - used.postgres - used.children
    return (
        f"CPU during the run: the machine {used.machine:.1f} s of {cpus * seconds:.0f} s"
        f" ({100 * used.machine / (cpus * seconds):.0f}% busy); gunicorn workers"
        f" {used.workers:.1f} s ({used.workers * per:.1f} ms per request), PostgreSQL"
        f" {used.postgres:.1f} s ({used.postgres * per:.1f} ms per request), wrk"
        f" {used.children:.1f} s, other processes (Redis, other users) {others:.1f} s"
    )


def capacity_line(used: CpuUse, *, requests: int, cpus: int, connections: int) -> str:
    """What idle CPUs could serve at the CPU cost per request measured (gunicorn, PostgreSQL
    and wrk together), and the mean latency that leaves at `connections` (Little's law): a
    bound that does not depend on what else ran on the machine."""
    if not requests:
        return "no answers: no cost per request to measure"
    cost_s = (used.workers + used.postgres + used.children) / requests
    capacity = cpus / cost_s
    return (
        f"at {1000 * cost_s:.1f} ms of CPU per request, {cpus} idle CPUs would answer at most"
        f" {capacity:.0f} req/s, so {connections} connections would wait at least"
        f" {1000 * connections / capacity:.0f} ms per request on average"
    )


def redis_db(redis_url: str) -> int:
    """The database number of a redis:// URL; the bench flushes it, so it must be explicit."""
    parsed = urlparse(redis_url)
    path = parsed.path.strip("/")
    if parsed.scheme not in ("redis", "rediss") or not path.isdigit() or int(path) == 0:
        raise ValueError(
            f"{redis_url!r}: give the bench its own Redis database, e.g. redis://127.0.0.1:6379/4"
            " (it is flushed at the start of every run)"
        )
    return int(path)


# --- the data set: built through the real services, skipping what exists ---------------------


def prepare(env: dict[str, str]) -> None:
    """Migrate, import both models, render, connect, collect static files; skip what exists."""
    started = time.perf_counter()
    manage(env, "migrate", "--verbosity", "0")
    django_setup(env)
    from neurons.models import NetworkModel
    from rendering.models import LayerConnection

    for slug in MODELS:
        if not NetworkModel.objects.filter(slug=slug, status=NetworkModel.Status.READY).exists():
            manage(env, "import_model", slug, "--weights", "random", "--seed", "0")
    for slug, layer in RENDERED:
        renders_ensure(env, slug, layer, RENDERED_UNITS)
    if not LayerConnection.objects.filter(target__model__slug="inceptionv1").exists():
        manage(env, "connections", "inceptionv1", "--here")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    people_and_writing_build()
    from django.db import connections

    planner_statistics_refresh()
    connections.close_all()
    print(f"prepared in {time.perf_counter() - started:.1f} s")


def django_setup(env: Mapping[str, str]) -> None:
    """Django in this process, with the same settings as gunicorn (reads the bench database)."""
    os.environ.update(env)
    import django

    django.setup()


def _progress(what: str, done: int, total: int, started: float) -> None:
    if done == total or done % 250 == 0:
        print(f"  {what}: {done}/{total} ({time.perf_counter() - started:.0f} s)", flush=True)


def people_and_writing_build() -> None:
    """People, labels, notes and comments through the annotations services; only what is missing."""
    from django.contrib.auth import get_user_model
    from django.test.utils import override_settings

    from annotations.comments import comment_create
    from annotations.models import Comment, Institution, Membership, Note
    from annotations.moderation import unit_label_set
    from annotations.notes import note_create
    from annotations.people import user_signup
    from neurons.models import Unit

    rng = random.Random(SEED)
    institutions = [
        Institution.objects.get_or_create(slug=slug, defaults={"name": name, "email_domains": d})[0]
        for slug, name, d in INSTITUTIONS
    ]
    users = get_user_model().objects
    existing = set(users.filter(username__startswith="load-").values_list("username", flat=True))
    started = time.perf_counter()
    # The bench's people never sign in with a password (they use tokens): a fast hasher here
    # saves PBKDF2's half second per account.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        for i in range(PEOPLE):
            name = USERNAME.format(i)
            if name in existing:
                continue
            # Nine in ten at one of the two institutions, the rest unaffiliated.
            domain = "example.org" if i % 10 == 9 else INSTITUTIONS[i % 2][2]
            user_signup(
                username=name,
                email=f"{name}@{domain}",
                password=f"{name}-not-a-secret",
                display_name=f"Load Tester {i}",
                email_verified=True,
            )
            _progress("people", i + 1, PEOPLE, started)
    people = list(users.filter(username__startswith="load-").order_by("username"))
    curators = people[:CURATORS]
    Membership.objects.filter(user__in=curators).update(role=Membership.Role.CURATOR)
    print(f"people: {len(people)} ({len(curators)} curators) in {len(institutions)} institutions")

    unit_ids = list(Unit.objects.filter(layer__model__slug__in=MODELS).values_list("pk", flat=True))
    labelled = set(Unit.objects.exclude(curator_label="").values_list("pk", flat=True))
    started = time.perf_counter()
    to_label = [pk for pk in rng.sample(unit_ids, LABELLED_UNITS) if pk not in labelled]
    for n, unit in enumerate(Unit.objects.filter(pk__in=to_label).select_related("layer"), 1):
        label = f"{rng.choice(LABELS)} ({rng.choice(('strong', 'weak', 'mixed', 'clean'))})"
        unit_label_set(unit=unit, label=label, user=rng.choice(curators))
        _progress("labels", n, len(to_label), started)
    labelled_units = list(
        Unit.objects.exclude(curator_label="").select_related("layer__model").order_by("pk")
    )
    print(f"curator labels: {len(labelled_units)} units")

    notes = Note.objects.filter(author__in=people)
    missing = NOTES - notes.count()
    started = time.perf_counter()
    for n in range(1, missing + 1):
        picked = rng.sample(labelled_units, rng.randint(2, 4))
        units = "\n".join(
            f"{u.layer.model.slug}/{u.layer.name}/{u.index}" + (", input" if i == 0 else "")
            for i, u in enumerate(picked)
        )
        words = rng.sample(NOTE_WORDS, 3)
        visibility = rng.choices(("public", "institution", "private"), (7, 2, 1))[0]
        note_create(
            author=rng.choice(people),
            title=f"{words[0].capitalize()} {words[1]} circuit #{n}",
            body=(
                f"We see a **{words[0]}** {words[1]} here, fed by a {words[2]} unit.\n\n"
                f"- {picked[0].curator_label}\n- compare with {picked[1].curator_label}\n"
            ),
            units=units,
            edges="1 -> 2" if rng.random() < 0.7 else "1 -| 2",
            visibility=visibility,
            publish=rng.random() < 0.9,
        )
        _progress("notes", n, missing, started)
    public = list(
        notes.filter(published__isnull=False, visibility="public", hidden=False).values_list(
            "pk", flat=True
        )
    )
    print(f"notes: {notes.count()} ({len(public)} public)")

    comments = Comment.objects.filter(author__in=people)
    missing = COMMENTS - comments.count()
    started = time.perf_counter()
    public_notes = list(Note.objects.filter(pk__in=public).order_by("pk"))
    on_units = list(
        comments.filter(unit__isnull=False, deleted__isnull=True, hidden=False).order_by("pk")
    )
    for n in range(1, missing + 1):
        roll = rng.random()
        where: dict[str, Any]
        if roll < 0.15 and on_units:
            where = {"parent": rng.choice(on_units)}
        elif roll < 0.4:
            where = {"note": rng.choice(public_notes)}
        else:
            where = {"unit": rng.choice(labelled_units)}
        comment = comment_create(
            author=rng.choice(people),
            body=f"Seen this one: looks like a {rng.choice(LABELS)} to me (#{n}).",
            **where,
        )
        if comment.unit_id is not None:
            on_units.append(comment)
        _progress("comments", n, missing, started)
    print(f"comments: {comments.count()}")


def catalogue_read(rng: random.Random) -> Catalogue:
    """Sample what the requests will name; new tokens for the posters and the readers."""
    from django.contrib.auth import get_user_model

    from annotations.models import ApiToken, Comment, Note, NoteUnit
    from annotations.tokens import token_create, token_revoke
    from neurons.models import Layer, Unit

    units: list[UnitRow] = []
    for slug in MODELS:
        rows = list(
            Unit.objects.filter(layer__model__slug=slug)
            .order_by("pk")
            .values_list("pk", "layer__name", "index")
        )
        units += [
            UnitRow(pk, slug, layer, index) for pk, layer, index in rng.sample(rows, UNITS_SAMPLED)
        ]
    layers = list(
        Layer.objects.filter(model__slug__in=MODELS)
        .order_by("model__slug", "order")
        .values_list("model__slug", "name", "num_units")
    )
    public = Note.objects.filter(published__isnull=False, visibility="public", hidden=False)
    note_ids = list(public.order_by("pk").values_list("pk", flat=True))
    comment_ids = list(
        Comment.objects.filter(unit__isnull=False, deleted__isnull=True, hidden=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    noted = NoteUnit.objects.filter(note__in=public).values_list("unit_id", flat=True)
    commented = Comment.objects.filter(unit__isnull=False).values_list("unit_id", flat=True)
    discussed = sorted(set(noted) | set(commented))
    people = list(
        get_user_model().objects.filter(username__startswith="load-").order_by("username")
    )
    # Secrets exist only when made: revoke the last run's, make this run's.
    for token in ApiToken.objects.filter(user__in=people, name=TOKEN_NAME, revoked__isnull=True):
        token_revoke(token=token, user=token.user)
    write = [
        token_create(user=u, name=TOKEN_NAME, scope=ApiToken.Scope.WRITE)[1]
        for u in people[:POSTERS]
    ]
    read = [
        token_create(user=u, name=TOKEN_NAME, scope=ApiToken.Scope.READ)[1]
        for u in people[-READERS:]
    ]
    terms = [
        *(label.split()[0] for label in LABELS),
        *LABELS,
        *NOTE_WORDS,
        "curve detector circuit",
    ]
    return Catalogue(
        units=units,
        layers=layers,
        search_terms=terms,
        note_ids=note_ids,
        unit_comment_ids=comment_ids,
        discussed_unit_ids=discussed,
        read_tokens=read,
        write_tokens=write,
    )


def comments_settled(base: str, timeout: float = 120) -> int:
    """The number of comments once the server has worked through what wrk left queued.

    wrk stops with requests in flight and more waiting in gunicorn's backlog; the sync
    workers still answer them. A request sent now waits behind them; then the count must
    hold still for a second (the other worker may be finishing its last one)."""
    from django.db import connections

    from annotations.models import Comment

    fetch(base + "/api/v1/models/", timeout=timeout)
    deadline = time.monotonic() + timeout
    count = Comment.objects.count()
    while time.monotonic() < deadline:
        time.sleep(1)
        again = Comment.objects.count()
        if again == count:
            break
        count = again
    connections.close_all()
    return count


# --- the run -----------------------------------------------------------------------------


def answer_problem(request: Request, status: int, body: str) -> str:
    """Why an answer with an expected status is still not the page or data asked for ("" if
    it is): error pages must never be what is measured."""
    if request.kind == "unit_page":
        layer, index = request.path.strip("/").split("/")[-2:]
        return "" if f"{layer}:{index}" in body else f"it does not name unit {layer}:{index}"
    if request.kind == "layer_page":
        path = request.path.partition("?")[0]
        return "" if f'href="{path}' in body else f"it does not link to {path}"
    if request.kind.startswith("api") or request.kind == "comment_post":
        try:
            data = json.loads(body)
        except ValueError:
            return "its body is not JSON"
        wanted = "results" if request.kind == "api_list" else "url"
        return "" if isinstance(data, dict) and wanted in data else f"its JSON has no {wanted!r}"
    return ""


def request_check(base: str, request: Request) -> None:
    """One request of a kind, as load.lua sends it; the run stops unless the answer is right."""
    headers = {"Authorization": f"Token {request.token}"} if request.token else {}
    data = None
    if request.body:
        headers["Content-Type"] = "application/json"
        data = request.body.replace("{n}", "check").encode()
    status, body, _ = fetch(base + request.path, method=request.method, headers=headers, data=data)
    if status not in EXPECTED[request.kind]:
        sys.exit(f"{request.method} {request.path} answered {status}:\n{body[:2000]}")
    problem = answer_problem(request, status, body)
    if problem:
        sys.exit(f"{request.method} {request.path} answered {status} but {problem}:\n{body[:2000]}")
    print(f"checked {request.kind:<12} {request.method} {request.path[:70]}: {status}")


def cpu_use(master: int, database_url: str) -> CpuUse:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CpuUse(
        machine=machine_cpu_busy_s(),
        workers=workers_cpu_s(master),
        postgres=postgres_cpu_s(urlparse(database_url).path.lstrip("/")),
        children=children.ru_utime + children.ru_stime,
    )


@contextmanager
def cache_flushed(redis_url: str) -> Iterator[None]:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
        yield
    finally:
        client.close()


def wrk_run(
    wrk: str, base: str, request_list: Path, *, duration: int, connections: int, seed: int
) -> str:
    """One thread per connection: a thread then has at most one request in flight, which is
    how load.lua knows which request each answer belongs to. `seed` fixes the draws; the
    warm-up takes another, so it does not fill the cache with the measured run's pages."""
    options = [
        *(f"-t{connections}", f"-c{connections}", f"-d{duration}s", f"--timeout={WRK_TIMEOUT_S}s"),
        *("--latency", "-s", str(LUA_SCRIPT), base, "--", str(request_list), str(seed)),
    ]
    print(f"$ wrk {' '.join(options)}", flush=True)
    done = subprocess.run([wrk, *options], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def log_report(log: Path, offset: int, shown: int = 12) -> None:
    """What gunicorn and the site logged during the measured run (warnings and errors)."""
    with log.open(errors="replace") as lines:
        lines.seek(offset)
        written = [line.rstrip() for line in lines if line.strip()]
    print(f"{log}: {len(written)} lines logged during the run" + (":" if written else ""))
    for line in written[:shown]:
        print(f"  {line[:200]}")
    if len(written) > shown:
        print(f"  … {len(written) - shown} more")


def report(
    totals: WrkTotals,
    kinds: Mapping[str, KindStats],
    *,
    windows: Sequence[Window] = (),
    elapsed: float,
    cpu: CpuUse,
    connections: int,
    comments: tuple[int, int],
    summary: str = "summary",
) -> None:
    header = ("requests", "share", "p50 ms", "p99 ms", "no answer", "unexpected", "page cache")
    print(f"{'kind':<13}" + "".join(f" {h:>10}" for h in header) + "  statuses")
    answered = sum(k.responses for k in kinds.values()) or 1
    for name in [kind for kind in WEIGHTS if kind in kinds]:
        k = kinds[name]
        unexpected = k.unexpected(EXPECTED[name])
        cells = (
            f"{k.responses}",
            f"{100 * k.responses / answered:.1f}%",
            f"{k.p50_ms:.1f}",
            f"{k.p99_ms:.1f}",
            f"{k.no_response}",
            f"{sum(unexpected.values())}",
            k.page_cache,
        )
        statuses = " ".join(f"{code}:{n}" for code, n in sorted(k.statuses.items()))
        print(f"{name:<13}" + "".join(f" {c:>10}" for c in cells) + f"  {statuses}")
    print(
        "per kind: latency from load.lua's request() to response() (wrk's thread loop); "
        "unexpected: answers other than "
        + ", ".join(
            f"{kind} {'/'.join(map(str, sorted(codes)))}" for kind, codes in EXPECTED.items()
        )
    )
    for line in windows_lines(windows, elapsed):
        print(line)
    print(
        f"overall (wrk): {totals.requests} answers in {elapsed:.0f} s, {totals.requests_per_s:.1f}"
        f" req/s, p50 {totals.p50_ms:.1f} ms, p99 {totals.p99_ms:.1f} ms, errors"
        f" {totals.errors} ({totals.error_detail or 'none'})"
    )
    cpus = os.cpu_count() or 1
    print(cpu_line(cpu, requests=totals.requests, seconds=elapsed, cpus=cpus))
    print(capacity_line(cpu, requests=totals.requests, cpus=cpus, connections=connections))
    print(comments_line(kinds.get("comment_post"), *comments))
    status_5xx = sum(k.status_5xx for k in kinds.values())
    met = totals.p99_ms < GOAL_P99_MS and totals.errors == 0 and status_5xx == 0
    print(f"goal: zero errors, zero 5xx, p99 < {GOAL_P99_MS} ms: {'met' if met else 'not met'}")
    print(summary_line(totals, kinds, summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=60, help="seconds of measured load")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections")
    parser.add_argument(
        "--cold",
        type=int,
        default=60,
        help="seconds of the first phase, measured from the cache flush and reported on its own"
        " (`cold_summary`); 0 leaves it out, so the measured run starts on an empty cache",
    )
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/microscope_load"
    )
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/4", help="Django cache (flushed per run)"
    )
    parser.add_argument(
        "--var-dir", type=Path, default=ROOT / "var" / "load", help="media, static, logs"
    )
    parser.add_argument("--rebuild", action="store_true", help="drop the data set, build anew")
    parser.add_argument(
        "--weights",
        default="",
        help="changes to the mix, e.g. comment_post=0,search=20 (default: "
        + ",".join(f"{kind}={weight}" for kind, weight in WEIGHTS.items())
        + ")",
    )
    args = parser.parse_args()
    if args.duration < 1 or args.connections < 1 or args.cold < 0:
        parser.error("--duration and --connections must be positive, --cold not negative")
    try:
        redis_db(args.redis_url)
        weights = weights_parse(args.weights)
    except ValueError as error:
        parser.error(str(error))
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows up in logs too
    stop_on_sigterm()

    wrk = wrk_ensure()
    var_dir: Path = args.var_dir.resolve()
    if args.rebuild:
        database_drop(args.database_url)
        shutil.rmtree(var_dir / "media", ignore_errors=True)
    var_dir.mkdir(parents=True, exist_ok=True)
    database_create(args.database_url)
    env = bench_environment(
        args.database_url, args.redis_url, var_dir, {**RATE_LIMITS_RAISED, **CONNECTIONS_KEPT}
    )
    with cache_flushed(args.redis_url):
        prepare(env)
    from django.conf import settings
    from django.db import connections

    catalogue = catalogue_read(random.Random(SEED))
    requests = requests_build(catalogue, random.Random(SEED))
    request_list = var_dir / "load-requests.tsv"
    request_list.write_text(requests_tsv(weights, requests))
    request_list.chmod(0o600)  # it holds this run's API tokens
    print(
        f"request list: {request_list} ("
        + ", ".join(f"{kind} {len(rs)}" for kind, rs in requests.items())
        + "); weights: "
        + ", ".join(f"{kind} {w}" for kind, w in weights.items())
    )
    print(
        "rate limits raised for the bench (it measures the site, not the throttle): "
        + " ".join(f"{name}={value}" for name, value in RATE_LIMITS_RAISED.items())
    )
    print(f"cache: {settings.CACHES['default']['BACKEND']} at {args.redis_url}")
    connections.close_all()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = var_dir / "gunicorn.log"
    with (
        cache_flushed(args.redis_url),
        gunicorn(env, port, workers=WORKERS, log=log, capture_output=True) as server,
    ):
        wait_until_serving(server, base + "/", log)
        for kind in weights:
            for request in requests[kind][:3]:
                request_check(base, request)
        phases = [("cold", args.cold, SEED + 1)] if args.cold else []
        phases.append(("summary", args.duration, SEED))
        measured = [
            measure(server.pid, base, wrk, request_list, log, args, name, duration, seed)
            for name, duration, seed in phases
        ]
    for name, (output, elapsed, cpu, comments) in zip(
        (name for name, _, _ in phases), measured, strict=True
    ):
        try:
            totals = wrk_totals_parse(output)
            kinds = lua_report_parse(output)
        except ValueError as error:
            sys.exit(str(error))
        print()
        print(PHASES[name])
        report(
            totals,
            kinds,
            windows=lua_windows_parse(output),
            elapsed=elapsed,
            cpu=cpu,
            connections=args.connections,
            comments=comments,
            summary="cold_summary" if name == "cold" else "summary",
        )


PHASES = {
    "cold": "first phase: from the cache flush (every page and API answer built once before"
    " it can be a hit), different draws from the same request list",
    "summary": "measured run: the site as it serves once the pages it is asked for have been"
    " built (what a running site sees between deploys)",
}


def measure(
    pid: int,
    base: str,
    wrk: str,
    request_list: Path,
    log: Path,
    args: argparse.Namespace,
    name: str,
    duration: int,
    seed: int,
) -> tuple[str, float, CpuUse, tuple[int, int]]:
    """One measured wrk run: its output, seconds, CPU use and comments before and after."""
    before = comments_settled(base)
    workers = workers_count(pid)
    load = os.getloadavg()
    print(
        f"{name}: {duration} s at {args.connections} connections; gunicorn: {WORKERS} sync"
        f" workers asked, {workers} running; load average before: {load[0]:.2f} {load[1]:.2f}"
        f" {load[2]:.2f} on {os.cpu_count()} CPUs shared by wrk, gunicorn, PostgreSQL, Redis"
        " and whatever else runs here"
    )
    log_offset = log.stat().st_size if log.exists() else 0
    cpu_before = cpu_use(pid, args.database_url)
    started = time.monotonic()
    output = wrk_run(
        wrk, base, request_list, duration=duration, connections=args.connections, seed=seed
    )
    cpu = cpu_use(pid, args.database_url) - cpu_before
    elapsed = time.monotonic() - started
    after = comments_settled(base)
    log_report(log, log_offset)
    return output, elapsed, cpu, (before, after)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted")
