"""bench/load.py's pure parts (the request list, wrk's and load.lua's reports, the summary
line) and load.lua itself against a tiny local server, so the load benchmark cannot rot
unnoticed. No timings are asserted: the numbers are the benchmark's business."""

import json
import random
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench import load
from bench._common import WrkTotals, milliseconds, wrk_totals_parse

WRK_OUTPUT = """\
Running 1m test @ http://127.0.0.1:40123
  64 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    84.21ms   40.10ms   1.20s    80.00%
    Req/Sec     12.00      5.00    40.00     70.00%
  Latency Distribution
     50%   78.50ms
     75%  101.00ms
     90%  140.00ms
     99%    1.02s
  45678 requests in 1.00m, 1.20GB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:    761.30
Transfer/sec:     20.48MB
load.lua kind=api_list sent=8002 responses=7999 no_response=1 cut_off=2 p50_ms=40.12 p99_ms=210.50 statuses=200:7990,429:9 page_cache=hit:0,miss:0
load.lua kind=comment_post sent=3601 responses=3600 no_response=0 cut_off=1 p50_ms=60.00 p99_ms=300.00 statuses=201:3598,500:2 page_cache=hit:0,miss:0
"""


def catalogue(**changes: object) -> load.Catalogue:
    fields: dict[str, object] = {
        "units": [
            load.UnitRow(1, "inceptionv1", "mixed4c", 447),
            load.UnitRow(2, "resnet50", "layer3.0", 12),
        ],
        "layers": [("inceptionv1", "mixed4c", 512), ("resnet50", "layer3.0", 1024)],
        "search_terms": ["curve detector", "dog head"],
        "note_ids": [10, 11],
        "unit_comment_ids": [20],
        "discussed_unit_ids": [1],
        "read_tokens": ["msc_read"],
        "write_tokens": ["msc_write1", "msc_write2"],
    }
    fields.update(changes)
    return load.Catalogue(**fields)  # type: ignore[arg-type]


def test_wrk_report_gives_rate_percentiles_and_every_kind_of_error() -> None:
    totals = wrk_totals_parse(WRK_OUTPUT)
    assert totals.requests == 45678
    assert totals.requests_per_s == 761.30
    assert (totals.p50_ms, totals.p99_ms) == (78.5, 1020.0)
    assert totals.error_counts == {
        "connect": 0,
        "read": 3,
        "write": 0,
        "timeout": 2,
        "non-2xx/3xx": 7,
    }
    assert totals.errors == 12
    assert totals.error_detail == "read 3, timeout 2, non-2xx/3xx 7"


def test_wrk_report_without_error_lines_means_no_errors() -> None:
    clean = "\n".join(
        line for line in WRK_OUTPUT.splitlines() if "errors" not in line and "Non-2xx" not in line
    )
    assert wrk_totals_parse(clean).errors == 0


def test_a_truncated_wrk_report_is_refused() -> None:
    with pytest.raises(ValueError, match="Requests/sec"):
        wrk_totals_parse(WRK_OUTPUT.split("Requests/sec")[0])


@pytest.mark.parametrize(
    ("text", "ms"), [("812.00us", 0.812), ("3.21ms", 3.21), ("1.02s", 1020.0), ("2.00m", 120e3)]
)
def test_wrk_durations_become_milliseconds(text: str, ms: float) -> None:
    assert milliseconds(text) == pytest.approx(ms)


def test_a_duration_wrk_never_prints_is_refused() -> None:
    with pytest.raises(ValueError, match="not a wrk duration"):
        milliseconds("3 ms")


def test_load_lua_lines_give_each_kinds_counts_statuses_and_latency() -> None:
    kinds = load.lua_report_parse(WRK_OUTPUT)
    assert set(kinds) == {"api_list", "comment_post"}
    api = kinds["api_list"]
    assert (api.sent, api.responses, api.no_response, api.cut_off) == (8002, 7999, 1, 2)
    assert (api.p50_ms, api.p99_ms) == (40.12, 210.5)
    assert api.statuses == {200: 7990, 429: 9}
    assert api.unexpected(load.EXPECTED["api_list"]) == {429: 9}
    assert api.status_5xx == 0
    assert kinds["comment_post"].status_5xx == 2


def test_the_page_cache_hit_rate_is_shown_for_pages_it_keeps() -> None:
    line = (
        "load.lua kind=unit_page sent=12 responses=10 no_response=0 cut_off=2 p50_ms=5.00"
        " p99_ms=9.00 statuses=200:10 page_cache=hit:3,miss:7"
    )
    unit = load.lua_report_parse(line)["unit_page"]
    assert (unit.page_cache_hits, unit.page_cache_misses, unit.page_cache) == (3, 7, "30%")
    assert load.lua_report_parse(WRK_OUTPUT)["api_list"].page_cache == "-"


def test_the_time_line_says_when_the_slow_answers_came() -> None:
    output = (
        "load.lua window_s=5-10 responses=900 p50_ms=300.00 p99_ms=420.00 at_run_p99=2\n"
        "load.lua window_s=0-5 responses=500 p50_ms=480.00 p99_ms=650.00 at_run_p99=150\n"
        "load.lua window_s=10-15 responses=1800 p50_ms=170.00 p99_ms=230.00 at_run_p99=0\n"
    )
    windows = load.lua_windows_parse(output)
    assert [(w.start_s, w.end_s, w.responses, w.at_run_p99) for w in windows] == [
        (0, 5, 500, 150),
        (5, 10, 900, 2),
        (10, 15, 1800, 0),
    ]
    lines = load.windows_lines(windows)
    assert lines[1].split() == ["0-5", "500", "100.0", "480.0", "650.0", "150"]
    assert lines[3].split()[:3] == ["10-15", "1800", "360.0"]
    assert lines[-1].endswith("(150 of 152 in the first window)")
    assert load.windows_lines(load.lua_windows_parse(WRK_OUTPUT)) == []  # an older load.lua
    # The last window ends with the run: its rate is over the seconds it had.
    assert load.windows_lines(windows, elapsed_s=12.0)[3].split()[:3] == ["10-12", "1800", "900.0"]


def test_wrk_output_without_load_lua_lines_is_refused() -> None:
    with pytest.raises(ValueError, match="no `load.lua kind="):
        load.lua_report_parse(WRK_OUTPUT.split("load.lua")[0])


def test_stored_comments_are_checked_against_the_201_answers() -> None:
    posts = load.lua_report_parse(WRK_OUTPUT)["comment_post"]  # 3598 answered 201, 1 cut off
    assert load.comments_line(posts, 100, 3698).endswith("posts cut off by the end: 1")
    assert "MISMATCH" not in load.comments_line(posts, 100, 3699)  # the cut-off one stored too
    assert "MISMATCH" in load.comments_line(posts, 100, 3697)  # a 201 without its row
    assert "MISMATCH" in load.comments_line(posts, 100, 3700)  # a row nobody posted


def test_the_cpu_line_says_what_ours_cost_per_request_and_what_others_took() -> None:
    before = load.CpuUse(machine=100.0, workers=10.0, postgres=5.0, children=1.0)
    after = load.CpuUse(machine=220.0, workers=40.0, postgres=20.0, children=3.0)
    line = load.cpu_line(after - before, requests=1000, seconds=60, cpus=2)
    assert "the machine 120.0 s of 120 s (100% busy)" in line
    assert "gunicorn workers 30.0 s (30.0 ms per request)" in line
    assert "PostgreSQL 15.0 s (15.0 ms per request)" in line
    assert "wrk 2.0 s, other processes (Redis, other users) 73.0 s" in line


def test_the_capacity_line_bounds_latency_by_littles_law() -> None:
    used = load.CpuUse(machine=120.0, workers=16.0, postgres=3.0, children=1.0)  # 20 ms/request
    line = load.capacity_line(used, requests=1000, cpus=2, connections=64)
    assert line == (
        "at 20.0 ms of CPU per request, 2 idle CPUs would answer at most 100 req/s,"
        " so 64 connections would wait at least 640 ms per request on average"
    )
    assert "no answers" in load.capacity_line(used, requests=0, cpus=2, connections=64)


def test_the_summary_line_has_the_issues_format() -> None:
    totals = wrk_totals_parse(WRK_OUTPUT)
    line = load.summary_line(totals, load.lua_report_parse(WRK_OUTPUT))
    assert line == "summary rps=761.3 p50_ms=78.50 p99_ms=1020.00 errors=12 status_5xx=2"
    cold = load.summary_line(totals, load.lua_report_parse(WRK_OUTPUT), "cold_summary")
    assert cold == "cold_" + line


def test_the_request_list_has_every_kind_of_the_mix() -> None:
    requests = load.requests_build(catalogue(), random.Random(0), per_kind=50)
    assert list(requests) == list(load.WEIGHTS)
    assert [r.path for r in requests["unit_page"]] == [
        "/models/inceptionv1/mixed4c/447/",
        "/models/resnet50/layer3.0/12/",
    ]
    for kind in ("layer_page", "search", "api_list", "api_detail", "comment_post"):
        assert len(requests[kind]) == 50
    assert all(r.path.startswith("/search/?q=") for r in requests["search"])
    assert {r.path.split("/")[3] for r in requests["api_detail"]} <= {
        "units",
        "models",
        "notes",
        "comments",
    }
    api_tokens = {r.token for kind in ("api_list", "api_detail") for r in requests[kind]}
    assert api_tokens == {"", "msc_read"}  # half anonymous, half with a read token
    assert all(r.method == "GET" for k, rs in requests.items() if k != "comment_post" for r in rs)


def test_comment_posts_name_one_target_and_a_unique_body_each() -> None:
    posts = load.requests_build(catalogue(), random.Random(0), per_kind=60)["comment_post"]
    targets = set()
    for post in posts:
        assert (post.method, post.path) == ("POST", "/api/v1/comments/")
        assert post.token in {"msc_write1", "msc_write2"}
        body = json.loads(post.body)
        (target,) = set(body) - {"body"}
        targets.add(target)
        assert body[target] in {"unit": {1, 2}, "note": {10, 11}, "parent": {20}}[target]
        assert "{n}" in body["body"]  # load.lua numbers each post
    assert targets == {"unit", "note", "parent"}


def test_layer_pages_ask_only_for_pages_the_layer_has() -> None:
    one_page = catalogue(layers=[("inceptionv1", "conv2d0", 64)])
    paths = {r.path for r in load.requests_build(one_page, random.Random(1))["layer_page"]}
    assert paths == {
        "/models/inceptionv1/conv2d0/",
        "/models/inceptionv1/conv2d0/?technique=neuron",
    }


def test_an_empty_catalogue_says_to_build_the_data_set() -> None:
    with pytest.raises(ValueError, match="no note_ids: build the data set first"):
        load.requests_build(catalogue(note_ids=[]), random.Random(0))


def test_the_mix_can_be_changed_and_a_zero_weight_leaves_a_kind_out() -> None:
    weights = load.weights_parse("comment_post=0, search=25")
    assert "comment_post" not in weights
    assert weights["search"] == 25 and weights["unit_page"] == load.WEIGHTS["unit_page"]
    assert load.weights_parse("") == load.WEIGHTS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("posts=3", "unknown request kind 'posts'"),
        ("search=-1", "whole number"),
        ("search=lots", "whole number"),
        (",".join(f"{kind}=0" for kind in load.WEIGHTS), "nothing to request"),
    ],
)
def test_a_mix_that_cannot_run_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load.weights_parse(text)


def test_the_request_list_file_declares_weights_then_requests() -> None:
    requests = load.requests_build(catalogue(), random.Random(0), per_kind=3)
    lines = load.requests_tsv(load.WEIGHTS, requests).splitlines()
    assert lines[: len(load.WEIGHTS)] == [f"weight\t{k}\t{w}" for k, w in load.WEIGHTS.items()]
    rows = [line.split("\t") for line in lines[len(load.WEIGHTS) :]]
    assert all(len(row) == 6 and row[0] == "request" for row in rows)
    assert rows[0] == ["request", "unit_page", "GET", "/models/inceptionv1/mixed4c/447/", "", ""]


def test_the_request_list_refuses_what_load_lua_could_not_read() -> None:
    requests = load.requests_build(catalogue(), random.Random(0), per_kind=3)
    with pytest.raises(ValueError, match="must be positive"):
        load.requests_tsv({**load.WEIGHTS, "search": 0}, requests)
    with pytest.raises(ValueError, match="no requests of kind 'search'"):
        load.requests_tsv(load.WEIGHTS, {**requests, "search": []})
    with pytest.raises(ValueError, match="a-z and _ only"):
        load.requests_tsv({"unit:page": 1}, {"unit:page": requests["unit_page"]})
    tab = load.Request("search", "GET", "/search/?q=a\tb")
    with pytest.raises(ValueError, match="on one line"):
        load.requests_tsv(load.WEIGHTS, {**requests, "search": [tab]})


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379", "redis://127.0.0.1:6379/0", "http://x/4"]
)
def test_the_bench_never_flushes_a_redis_database_it_was_not_given(url: str) -> None:
    with pytest.raises(ValueError, match="its own Redis database"):
        load.redis_db(url)


def test_an_error_page_with_the_right_status_is_still_caught() -> None:
    unit = load.Request("unit_page", "GET", "/models/resnet50/layer3.0/12/")
    assert load.answer_problem(unit, 200, "<h1>resnet50 layer3.0:12</h1>") == ""
    assert "does not name unit layer3.0:12" in load.answer_problem(unit, 200, "<h1>Oops</h1>")
    layer = load.Request("layer_page", "GET", "/models/resnet50/layer3.0/?page=2")
    assert load.answer_problem(layer, 200, '<a href="/models/resnet50/layer3.0/?page=1">') == ""
    assert "does not link" in load.answer_problem(layer, 200, "<p>Server error</p>")
    listing = load.Request("api_list", "GET", "/api/v1/notes/")
    assert load.answer_problem(listing, 200, '{"results": [], "next": null}') == ""
    assert "no 'results'" in load.answer_problem(listing, 200, '{"error": {}}')
    assert "not JSON" in load.answer_problem(listing, 200, "<html>")
    post = load.Request("comment_post", "POST", "/api/v1/comments/", '{"unit": 1}')
    assert load.answer_problem(post, 201, '{"id": 5, "url": "/api/v1/comments/5/"}') == ""


def test_an_explicit_redis_database_is_accepted() -> None:
    assert load.redis_db("redis://127.0.0.1:6379/4") == 4


# load.lua itself, driven by wrk against a small server: GET /ok answers 200, GET /missing
# 404, POST /comments 201 when the body is JSON with {n} filled in and the token is there.


class _Site(BaseHTTPRequestHandler):
    posts: list[dict[str, object]] = []
    lock = threading.Lock()

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/ok" else 404)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        good = self.headers["Authorization"] == "Token msc_w" and "{n}" not in body["body"]
        with self.lock:
            self.posts.append(body)
        self._answer(201 if good else 400)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        return None  # keep pytest's output clean


@pytest.fixture
def site() -> Iterator[str]:
    _Site.posts.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_load_lua_counts_every_answer_under_its_kind(site: str, tmp_path: Path) -> None:
    requests = {
        "fine": [load.Request("fine", "GET", "/ok")],
        "broken": [load.Request("broken", "GET", "/missing")],
        "post": [load.Request("post", "POST", "/comments", '{"body": "c {n}"}', "msc_w")],
    }
    weights = {"fine": 2, "broken": 1, "post": 1}
    request_list = tmp_path / "requests.tsv"
    request_list.write_text(load.requests_tsv(weights, requests))
    done = subprocess.run(
        ["wrk", "-t2", "-c2", "-d1s", "--latency", "-s", str(load.LUA_SCRIPT), site]
        + ["--", str(request_list), "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    totals: WrkTotals = wrk_totals_parse(done.stdout)
    kinds = load.lua_report_parse(done.stdout)
    assert set(kinds) == {"fine", "broken", "post"}
    assert set(kinds["fine"].statuses) == {200}
    assert set(kinds["broken"].statuses) == {404}
    assert set(kinds["post"].statuses) == {201}
    assert sum(k.responses for k in kinds.values()) == totals.requests
    assert totals.error_counts.get("non-2xx/3xx") == kinds["broken"].responses
    assert all(k.no_response == 0 and k.sent >= k.responses > 0 for k in kinds.values())
    assert all(k.page_cache == "-" for k in kinds.values())  # no X-Page-Cache header here
    windows = load.lua_windows_parse(done.stdout)  # a 1 s run: one 5 s window
    assert [(w.start_s, w.end_s) for w in windows] == [(0, 5)]
    assert windows[0].responses == totals.requests
    assert 1 <= windows[0].at_run_p99 <= totals.requests
    numbered = [str(post["body"]) for post in _Site.posts]
    assert len(set(numbered)) == len(numbered)  # "{n}" became a different number each time
