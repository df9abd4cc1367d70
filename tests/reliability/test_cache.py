"""Redis stops: the cache answers misses and drops writes, pages keep serving, nothing raises."""

import logging
import threading
import time
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client

from microscope_site.ratelimit import hits_in_window
from neurons.services import model_import
from rendering.engine.zoo import WeightsSpec
from tests.reliability.conftest import RedisServer, SilentServer

BACKEND = "microscope_site.cache.ResilientRedisCache"


def _caches(url: str, **options: Any) -> dict[str, Any]:
    """The site's caches with `default` on `url` (the per-process fragments stay as they are)."""
    from django.conf import settings

    return {**settings.CACHES, "default": {"BACKEND": BACKEND, "LOCATION": url, "OPTIONS": options}}


def _outage_lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "microscope_site.cache" and text in r.getMessage()
    ]


def test_a_dead_redis_reads_as_misses_and_drops_writes_then_heals(
    private_redis: RedisServer, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CACHES = _caches(private_redis.url(12), circuit_breaker_s=0.3)
    cache = caches["default"]
    cache.set("note", "kept", 60)
    assert cache.get("note") == "kept"
    assert cache.add("note-count", 0) is True
    assert cache.incr("note-count") == 1

    private_redis.kill()
    caplog.set_level(logging.WARNING, logger="microscope_site.cache")
    for _ in range(20):  # a request touches the cache several times; none of it may raise
        assert cache.get("note") is None
        assert cache.get("note", "default") == "default"
        assert cache.get_many(["note", "other"]) == {}
        assert cache.has_key("note") is False
        assert cache.add("new", 1) is False
        cache.set("new", 1)
        assert cache.set_many({"a": 1, "b": 2}) == ["a", "b"]
        assert cache.delete("note") is False
        cache.delete_many(["a", "b"])
        assert cache.touch("note") is False
        with pytest.raises(ValueError):
            cache.incr("note-count")  # as for a missing key, which callers handle
    assert hits_in_window("render-now:1.2.3.4", 60) == 1  # rate limits fail open
    assert len(_outage_lines(caplog, "unreachable")) == 1  # logged once, not per operation

    private_redis.start()  # same port, empty (no persistence)
    time.sleep(0.4)  # past the circuit breaker
    cache.set("note", "again", 60)
    assert cache.get("note") == "again"
    assert _outage_lines(caplog, "answers again")


def test_a_hung_redis_costs_one_short_timeout_then_is_skipped(
    silent_server: SilentServer, settings: Any
) -> None:
    settings.CACHES = _caches(f"redis://127.0.0.1:{silent_server.port}/0")
    cache = caches["default"]
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.extend(cache.get(f"k{i}") for i in range(50)))
    worker.start()
    worker.join(timeout=10)  # without timeouts, the first read would wait forever
    assert not worker.is_alive()
    assert results == [None] * 50
    # One connection for 50 reads: after the first timed out, the breaker skipped Redis.
    assert silent_server.accepted() == 1


@pytest.mark.django_db
def test_pages_and_the_api_keep_serving_while_redis_is_down(
    private_redis: RedisServer, settings: Any, tinynet: Any, client: Client
) -> None:
    settings.CACHES = _caches(private_redis.url(12))
    model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=3))
    url = "/models/tinynet/conv2/5/"
    assert client.get(url)["X-Page-Cache"] == "miss"
    assert client.get(url)["X-Page-Cache"] == "hit"  # Redis works
    assert client.get("/api/v1/models/")["X-Page-Cache"] == "miss"
    assert client.get("/api/v1/models/")["X-Page-Cache"] == "hit"
    private_redis.kill()
    down = client.get(url)
    assert down.status_code == 200 and down["X-Page-Cache"] == "miss"
    assert b"conv2" in down.content
    assert client.get("/models/tinynet/").status_code == 200
    api = client.get("/api/v1/models/")  # throttles and the API's read cache use it too
    assert api.status_code == 200 and api["X-Page-Cache"] == "miss"
    assert "tinynet" in {row["slug"] for row in api.json()["results"]}
