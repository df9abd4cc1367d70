"""`DATABASE_URL` → Django DATABASES entry (PostgreSQL or SQLite; nothing else is supported)."""

from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

# On PostgreSQL, each connection prepares a statement the second time it is asked (psycopg's
# `prepare_threshold`), with its parameters bound by the server: the database then plans it
# once per connection instead of on every execution. Planning was most of PostgreSQL's time
# here (a unit with its layer and model: ~0.4 ms to plan, ~0.05 ms to run): replaying
# bench/load.py's mix from a cache flush in one process, PostgreSQL's CPU per request went
# 2.4-2.7 -> 1.0-1.1 ms and the web process's 8.0-8.6 -> 5.7-6.7 ms.
PREPARE_THRESHOLD = 1


def database_from_url(url: str, *, conn_max_age: int, prepared: bool = True) -> dict[str, Any]:
    """`prepared=False` keeps statements unprepared and parameters bound by psycopg (Django's
    default), as a connection pooler in transaction mode (PgBouncer before 1.21) needs."""
    parsed = urlparse(url)
    if parsed.scheme in {"postgres", "postgresql"}:
        options: dict[str, Any] = {
            key: values[-1] for key, values in parse_qs(parsed.query).items()
        }
        if prepared:
            options.update(server_side_binding=True, prepare_threshold=PREPARE_THRESHOLD)
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": conn_max_age,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    if parsed.scheme == "sqlite":
        # sqlite:////abs/path.db (absolute) or sqlite:///relative.db
        path = url.removeprefix("sqlite:///")
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path or ":memory:"}
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {parsed.scheme!r} is not supported: use postgresql://… or sqlite:///…"
    )
