"""Browsing speed in a real browser: how long a reader waits between a key press and the next
page painted, walking through InceptionV1 as a researcher would.

Sets up what it needs with the helpers of bench/pages.py and bench/load.py (bench/_common.py):
its own PostgreSQL database (`--database-url`, created if missing, never dropped), Redis as the
Django cache (`--redis-url`), its own var folder (`--var-dir`), DEBUG off. The data, built
through the real commands and skipped where it exists: InceptionV1 with random weights (seed 0),
channel renders of the first 24 units of conv2d2 and mixed3a (8 steps, 64 px), the connections
between layers, the demo dataset with dataset examples and tuning curves of conv2d2.
gunicorn (2 sync workers) serves it; Playwright drives Debian's Chromium (never a downloaded
browser).

The walk: `--steps` actions drawn with a fixed seed from what the page offers: the next unit
(`j`), a technique tab (a click), the next layer (`]`), a unit of a layer's grid (a click), the
browser's back button, and a search for a unit by its shorthand (typed, then Enter). Each is
timed from the key press or click to the new content painted: the page's own
`performance.mark("microscope:swapped")` (set two animation frames after the page's script
swapped the new content in) or, for a whole new document, its first contentful paint; the
start is the key or click event's own time stamp, as the browser received it (for "back",
the moment before Playwright pressed it). The
same walk runs twice: once to fill the page cache (not measured), then measured in a fresh
browser, so the server cache is warm and the browser's is not. Between actions the reader
looks at the page for `--think-ms` (default 1 s, a glance at a unit's images; the page's
script fetches the neighbours meanwhile, as it would for a person).

Also counted: console errors and Content-Security-Policy violations on every page of both
walks, and the horizontal overflow (document width beyond the viewport) of the home, model,
layer and unit pages (every tab), search and compare at 360, 390 and 430 px wide.

Prints p50/p95 per action, then a last line
`summary next_unit_p50_ms=… next_unit_p95_ms=… tab_p50_ms=… tab_p95_ms=… search_p50_ms=…
overflow_px_max=… errors=…`. Goals on the shared 2-core machine: next unit p95 ≤ 150 ms,
technique tab p95 ≤ 100 ms, zero console errors or CSP violations, zero overflow at 390 px.

    .venv/bin/python bench/browse.py [--steps 100] [--database-url …] [--redis-url …]

Needs PostgreSQL (127.0.0.1:5432, user postgres, trust auth), Redis (127.0.0.1:6379) and
Chromium at /usr/bin/chromium (`apt-get install -y chromium`; or set CHROMIUM).
"""

import argparse
import io
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    bench_environment,
    database_create,
    free_port,
    gunicorn,
    manage,
    planner_statistics_refresh,
    renders_ensure,
    stop_on_sigterm,
    wait_until_serving,
)

MODEL = "inceptionv1"
RENDERED = ("conv2d2", "mixed3a")
RENDERED_UNITS = 24
EXAMPLES_LAYER = "conv2d2"
START = f"/models/{MODEL}/conv2d2/0/"
WORKERS = 2
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PHONE_WIDTHS = (360, 390, 430)
GOALS = {"next_unit_p95_ms": 150.0, "tab_p95_ms": 100.0}
# What a reader does, and how often, where the page offers it.
ACTIONS = {"next_unit": 40, "tab": 25, "next_layer": 8, "grid_unit": 8, "back": 12, "search": 7}


def prepare(env: dict[str, str]) -> None:
    """Migrate, import, render, connect, examples and tuning, collect static; skip what exists."""
    started = time.perf_counter()
    manage(env, "migrate", "--verbosity", "0")
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connections

    from neurons.models import NetworkModel
    from rendering.models import Dataset, LayerConnection, TuningCurve, UnitExamples

    models = NetworkModel.objects.filter(slug=MODEL, status=NetworkModel.Status.READY)
    if not models.exists():
        manage(env, "import_model", MODEL, "--weights", "random", "--seed", "0")
    for layer in RENDERED:
        renders_ensure(env, MODEL, layer, RENDERED_UNITS)
    if not LayerConnection.objects.filter(target__model__in=models).exists():
        manage(env, "connections", MODEL, "--top", "20", "--here")
    if not Dataset.objects.filter(slug="demo").exists():
        from django.conf import settings

        from rendering.demo_dataset import demo_dataset_build

        folder = settings.VAR_DIR / "datasets" / "demo"
        demo_dataset_build(folder)
        manage(env, "dataset_register", "demo", str(folder), "--name", "Demo images")
    layer_units = {"unit__layer__model__in": models, "unit__layer__name": EXAMPLES_LAYER}
    if not UnitExamples.objects.filter(**layer_units).exists():
        manage(env, "examples", MODEL, "--dataset", "demo", "--layers", EXAMPLES_LAYER, "--here")
    if not TuningCurve.objects.filter(**layer_units).exists():
        manage(env, "examples", MODEL, "--layers", EXAMPLES_LAYER, "--tuning", "--here")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    planner_statistics_refresh()
    connections.close_all()
    print(f"prepared in {time.perf_counter() - started:.1f} s")


# Run in the page before each action: the moment of the key press or click.
_MARK_START = "() => performance.timeOrigin + performance.now()"
# When the content that followed `start` was painted: waits in the page (a PerformanceObserver,
# no polling that would compete with the page for its main thread).
_PAINTED = """(start) => new Promise((resolve) => {
  const painted = () => {
    if (performance.timeOrigin > start) {
      const fcp = performance.getEntriesByName("first-contentful-paint")[0];
      return fcp ? performance.timeOrigin + fcp.startTime : null;
    }
    const marks = performance.getEntriesByName("microscope:swapped");
    const last = marks.length ? performance.timeOrigin + marks[marks.length - 1].startTime : 0;
    return last > start ? last : null;
  };
  const now = painted();
  if (now !== null) { resolve(now); return; }
  const observer = new PerformanceObserver(() => {
    const at = painted();
    if (at !== null) { observer.disconnect(); resolve(at); }
  });
  observer.observe({ entryTypes: ["mark", "paint"] });
})"""
# Errors the page reports (CSP violations, also in the console), and the moment the browser
# received each key press or click (the event's own time stamp, before any of the page's or
# Playwright's work), kept in sessionStorage so that a new document can still read it.
_WATCH = """() => {
  window.__violations = [];
  document.addEventListener("securitypolicyviolation",
    (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  for (const type of ["keydown", "click"]) {
    document.addEventListener(type, (e) => {
      if (e.isTrusted && !sessionStorage.getItem("bench-start")) {
        sessionStorage.setItem("bench-start", String(performance.timeOrigin + e.timeStamp));
      }
    }, true);
  }
}"""
_EVENT_START = """() => {
  const at = sessionStorage.getItem("bench-start");
  sessionStorage.removeItem("bench-start");
  return at === null ? null : Number(at);
}"""
_OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


@dataclass
class Walk:
    timings: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _painted_ms(page: Any, start: float, timeout_s: float = 10.0) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return float(page.evaluate(_PAINTED, start)) - start
        except Exception:  # the document was replaced while waiting: ask the new one
            time.sleep(0.01)
    raise RuntimeError(f"nothing painted within {timeout_s} s at {page.url}")


def _event_start(page: Any, fallback: float) -> float:
    """When the browser received the key press or click that began the action."""
    for _ in range(200):
        try:
            at = page.evaluate(_EVENT_START)
            return fallback if at is None else float(at)
        except Exception:  # the document is being replaced: ask the new one
            time.sleep(0.005)
    return fallback


def _choices(page: Any) -> dict[str, Any]:
    """The actions this page offers, each with the locator or value it needs."""
    offered: dict[str, Any] = {}
    for action, selector in (
        ("next_unit", 'main nav.steps a[data-key="j"]'),
        ("next_layer", 'main nav.steps a[data-key="]"]'),
    ):
        if page.locator(selector).count():
            offered[action] = selector
    tabs = page.locator("main nav.tabs a:not([aria-current])")
    if tabs.count():
        offered["tab"] = tabs
    if page.locator("main ul.grid a").count():
        offered["grid_unit"] = page.locator("main ul.grid a")
    offered["search"] = "#q"
    return offered


def walk(browser: Any, base: str, steps: int, seed: int, think_ms: int) -> Walk:
    rng = random.Random(seed)
    result = Walk()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.add_init_script(f"({_WATCH})()")
    page.on("console", lambda m: m.type == "error" and result.errors.append(m.text))
    page.on("pageerror", lambda e: result.errors.append(str(e)))
    history: list[str] = []
    page.goto(base + START)
    page.wait_for_load_state("load")
    page_url = page.url
    for _ in range(steps):
        page.wait_for_timeout(think_ms)
        offered = _choices(page)
        if history:
            offered["back"] = None
        names = list(offered)
        action = rng.choices(names, weights=[ACTIONS[name] for name in names])[0]
        page.evaluate("() => sessionStorage.removeItem('bench-start')")
        start = page.evaluate(_MARK_START)  # for "back", which has no event in the page
        target = offered.get(action)
        if action in ("next_unit", "next_layer"):
            expected = page.locator(target).first.evaluate("a => a.href")
            page.keyboard.press("j" if action == "next_unit" else "]")
        elif action in ("tab", "grid_unit"):
            link = target.nth(rng.randrange(target.count()))
            expected = link.evaluate("a => a.href")
            link.click()
        elif action == "back":
            expected = history.pop()
            page.go_back()
        else:
            unit = rng.randrange(RENDERED_UNITS)
            page.fill("#q", f"{MODEL} {EXAMPLES_LAYER}:{unit}")
            page.evaluate("() => sessionStorage.removeItem('bench-start')")
            page.press("#q", "Enter")
            expected = f"{base}/models/{MODEL}/{EXAMPLES_LAYER}/{unit}/"
        if action != "back":
            history.append(page_url)
        page.wait_for_url(expected)
        page_url = page.url
        if action != "back":
            start = _event_start(page, start)
        result.timings.setdefault(action, []).append(_painted_ms(page, start))
        violations = page.evaluate("() => window.__violations || []")
        result.errors += [f"CSP: {v}" for v in violations]
        page.evaluate("() => { window.__violations = []; }")
    context.close()
    return result


def overflow(browser: Any, base: str) -> tuple[int, list[str]]:
    """The largest sideways overflow of the main pages at phone widths, and where it was."""
    paths = ["/", f"/models/{MODEL}/", f"/models/{MODEL}/conv2d2/", f"/models/{MODEL}/mixed4a/"]
    paths += [f"{START}?technique={t}" for t in ("channel", "examples", "tuning", "connections")]
    paths += ["/search/?q=curve", "/models/compare/"]
    worst, where = 0, []
    for width in PHONE_WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 800}, is_mobile=True)
        page = context.new_page()
        for path in paths:
            page.goto(base + path)
            extra = int(page.evaluate(_OVERFLOW))
            if extra > 0:
                where.append(f"{path} at {width} px: {extra} px")
            worst = max(worst, extra)
        context.close()
    return worst, where


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--think-ms", type=int, default=1000, help="how long the reader looks at each page"
    )
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/microscope_browse"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5", help="Django cache")
    parser.add_argument("--var-dir", type=Path, default=ROOT / "var" / "browse")
    args = parser.parse_args()
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    stop_on_sigterm()
    if shutil.which(CHROMIUM) is None:
        sys.exit(f"no Chromium at {CHROMIUM}: apt-get install -y chromium, or set CHROMIUM")

    args.var_dir.mkdir(parents=True, exist_ok=True)
    database_create(args.database_url)
    env = bench_environment(args.database_url, args.redis_url, args.var_dir)
    prepare(env)

    from playwright.sync_api import sync_playwright

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = args.var_dir / "gunicorn.log"
    with gunicorn(env, port, workers=WORKERS, log=log) as server:
        wait_until_serving(server, base + "/", log)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            try:
                warm = walk(browser, base, args.steps, args.seed, args.think_ms)
                measured = walk(browser, base, args.steps, args.seed, args.think_ms)
                worst, where = overflow(browser, base)
            finally:
                browser.close()
    errors = warm.errors + measured.errors
    print(f"{args.steps} steps (seed {args.seed}, {args.think_ms} ms between), warm page cache,")
    print(f"gunicorn {WORKERS} sync workers, Chromium headless, {os.cpu_count()} CPUs shared")
    print(f"{'action':<11} {'count':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for action in ACTIONS:
        values = measured.timings.get(action, [])
        print(
            f"{action:<11} {len(values):>5} {percentile(values, 0.5):>8.1f}"
            f" {percentile(values, 0.95):>8.1f} {max(values, default=math.nan):>8.1f}"
        )
    for line in where:
        print(f"overflow: {line}")
    for error in errors[:20]:
        print(f"error: {error}")
    t = measured.timings
    summary = {
        "next_unit_p50_ms": percentile(t.get("next_unit", []), 0.5),
        "next_unit_p95_ms": percentile(t.get("next_unit", []), 0.95),
        "tab_p50_ms": percentile(t.get("tab", []), 0.5),
        "tab_p95_ms": percentile(t.get("tab", []), 0.95),
        "search_p50_ms": percentile(t.get("search", []), 0.5),
    }
    missed = [
        f"{k} {summary[k]:.1f} > {goal:.0f}" for k, goal in GOALS.items() if summary[k] > goal
    ]
    missed += [f"{len(errors)} errors"] if errors else []
    missed += [f"overflow {worst} px"] if worst else []
    print("goals: " + ("met" if not missed else "missed: " + "; ".join(missed)))
    print(
        "summary "
        + " ".join(f"{k}={v:.1f}" for k, v in summary.items())
        + f" overflow_px_max={worst} errors={len(errors)}"
    )


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted")
