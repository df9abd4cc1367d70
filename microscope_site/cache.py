"""A Redis cache that a dead or hung Redis cannot take the site down with.

The site only caches what it can recompute (whole pages, rate-limit counters, throttles), so
while Redis is unreachable every read is a miss and every write is dropped: pages get slower,
never broken. Three things keep a dead Redis from stalling requests:

- short socket timeouts (connect 0.25 s, read 0.5 s) and no redis-py retries;
- a circuit breaker: after a failure, Redis is skipped for `circuit_breaker_s` seconds (5 by
  default), so a request touching the cache ten times waits at most once;
- one log line per `log_every_s` seconds (60) while it lasts, with the count of failures since.

The breaker is shared by the threads of a process (Django makes one cache object per thread).

    CACHES = {"default": {"BACKEND": "microscope_site.cache.ResilientRedisCache",
                          "LOCATION": "redis://127.0.0.1:6379/0"}}
"""

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

logger = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT_S = 0.25
SOCKET_TIMEOUT_S = 0.5
CIRCUIT_BREAKER_S = 5.0
LOG_EVERY_S = 60.0


@dataclass
class _Breaker:
    """Whether to skip Redis now, and when the outage was last logged (one per LOCATION)."""

    open_until: float = 0.0
    failures: int = 0  # since the last log line
    last_logged: float = float("-inf")
    down: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


_breakers: dict[str, _Breaker] = {}
_breakers_lock = threading.Lock()


def _breaker(location: str) -> _Breaker:
    with _breakers_lock:
        return _breakers.setdefault(location, _Breaker())


class ResilientRedisCache(RedisCache):
    """Django's `RedisCache` that treats an unreachable Redis as an empty, read-only cache.

    OPTIONS may set `circuit_breaker_s` and `log_every_s`; the rest go to redis-py's
    connection pool as usual (`socket_connect_timeout`, `socket_timeout` and `retry` have
    short defaults here).
    """

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS", {}))
        self.circuit_breaker_s = float(options.pop("circuit_breaker_s", CIRCUIT_BREAKER_S))
        self.log_every_s = float(options.pop("log_every_s", LOG_EVERY_S))
        options.setdefault("socket_connect_timeout", CONNECT_TIMEOUT_S)
        options.setdefault("socket_timeout", SOCKET_TIMEOUT_S)
        options.setdefault("retry", Retry(NoBackoff(), 0))  # the breaker decides when to retry
        super().__init__(server, {**params, "OPTIONS": options})
        self._location = server if isinstance(server, str) else ",".join(server)

    # --- the breaker ----------------------------------------------------------------------

    def redis_available(self) -> bool:
        """False while the breaker is open (Redis failed less than `circuit_breaker_s` ago)."""
        return time.monotonic() >= _breaker(self._location).open_until

    def _guarded(self, call: Callable[[], T], fallback: T, operation: str) -> T:
        breaker = _breaker(self._location)
        if time.monotonic() < breaker.open_until:
            with breaker.lock:
                breaker.failures += 1
            return fallback
        try:
            result = call()
        except (RedisError, OSError) as error:
            self._failed(breaker, operation, error)
            return fallback
        if breaker.down:
            with breaker.lock:
                was_down, breaker.down = breaker.down, False
                skipped, breaker.failures = breaker.failures, 0
            if was_down:
                logger.warning(
                    "cache: Redis at %s answers again (%d cache operations skipped meanwhile)",
                    self._location,
                    skipped,
                )
        return result

    def _failed(self, breaker: _Breaker, operation: str, error: Exception) -> None:
        now = time.monotonic()
        with breaker.lock:
            breaker.open_until = now + self.circuit_breaker_s
            breaker.down = True
            breaker.failures += 1
            report = now - breaker.last_logged >= self.log_every_s
            if report:
                breaker.last_logged = now
                count, breaker.failures = breaker.failures, 0
        if report:
            logger.warning(
                "cache: Redis at %s unreachable (%s on %s: %s); serving without the cache, "
                "retrying every %.0f s (%d failed or skipped operations since the last report)",
                self._location,
                type(error).__name__,
                operation,
                error,
                self.circuit_breaker_s,
                count,
            )

    # --- reads are misses ------------------------------------------------------------------

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self._guarded(lambda: RedisCache.get(self, key, default, version), default, "get")

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        keys = list(keys)
        return self._guarded(lambda: RedisCache.get_many(self, keys, version), {}, "get_many")

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return self._guarded(lambda: RedisCache.has_key(self, key, version), False, "has_key")

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """As on a miss while Redis is unreachable: ValueError, which callers already handle."""
        unreachable = object()
        value = self._guarded(
            lambda: RedisCache.incr(self, key, delta, version), unreachable, "incr"
        )
        if value is unreachable:
            raise ValueError(f"Key '{key}' not found (the cache is unreachable)")
        return int(value)  # type: ignore[call-overload]

    # --- writes are dropped ------------------------------------------------------------------

    def add(
        self,
        key: Any,
        value: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> bool:
        return self._guarded(
            lambda: RedisCache.add(self, key, value, timeout, version), False, "add"
        )

    def set(
        self,
        key: Any,
        value: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> None:
        self._guarded(lambda: RedisCache.set(self, key, value, timeout, version), None, "set")

    def set_many(
        self,
        data: dict[Any, Any],
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> list[Any]:
        failed = list(data)  # Django's contract: the keys that were not stored
        return self._guarded(
            lambda: RedisCache.set_many(self, data, timeout, version), failed, "set_many"
        )

    def touch(
        self, key: Any, timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        return self._guarded(lambda: RedisCache.touch(self, key, timeout, version), False, "touch")

    def delete(self, key: Any, version: int | None = None) -> bool:
        return self._guarded(lambda: RedisCache.delete(self, key, version), False, "delete")

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        keys = list(keys)
        self._guarded(lambda: RedisCache.delete_many(self, keys, version), None, "delete_many")

    def clear(self) -> None:
        self._guarded(lambda: RedisCache.clear(self), None, "clear")
