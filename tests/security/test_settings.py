"""Production settings, checked in fresh processes with the environment production sets.

The settings module is read once per process, so everything that depends on DEBUG or on an
environment variable runs in a subprocess: `manage.py check --deploy`, the headers and cookies
a production process sends, and which settings come from which variables.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What a production deployment sets, and nothing from this process's environment (so a
    developer's DATABASE_URL or REDIS_URL cannot leak in)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "DJANGO_SETTINGS_MODULE": "microscope_site.settings",
        "MICROSCOPE_VAR_DIR": str(tmp_path / "var"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "SECRET_KEY": secrets.token_urlsafe(64),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'production.sqlite3'}",
        **extra,
    }


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _settings_under(env: dict[str, str], *names: str) -> dict[str, Any]:
    """The named settings as a process started with `env` computes them (no Django setup)."""
    script = (
        "import json, microscope_site.settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {list(names)!r}}}, default=str))"
    )
    done = _run(["-c", script], env)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_the_deploy_check_is_clean_under_production_settings(tmp_path: Path) -> None:
    done = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], _production_env(tmp_path)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


PRODUCTION_REQUESTS = """
import json
from django.test import Client

client = Client(HTTP_HOST="example.org")
def answer(path, **extra):
    response = client.get(path, **extra)
    return {
        "status": response.status_code,
        "headers": dict(response.headers.items()),
        "cookies": {name: dict(c.items()) for name, c in response.cookies.items()},
    }
print(json.dumps({
    "https": answer("/accounts/login/", secure=True),
    "http": answer("/accounts/login/"),
    "proxied": answer("/accounts/login/", HTTP_X_FORWARDED_PROTO="https"),
}))
"""


def test_production_is_https_only_with_strict_headers_and_cookies(tmp_path: Path) -> None:
    env = _production_env(tmp_path, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    done = _run(["manage.py", "shell", "-c", PRODUCTION_REQUESTS], env)
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout.splitlines()[-1])

    http = answers["http"]
    assert http["status"] == 301
    assert http["headers"]["Location"] == "https://example.org/accounts/login/"

    https = answers["https"]
    assert https["status"] == 200
    headers = https["headers"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    policy = dict(
        (part.split(" ", 1) + [""])[:2] for part in headers["Content-Security-Policy"].split("; ")
    )
    assert policy["script-src"] == "'self'" and "upgrade-insecure-requests" in policy
    csrf = https["cookies"]["csrftoken"]
    assert csrf["secure"] is True and csrf["httponly"] is True and csrf["samesite"] == "Lax"

    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto, no redirect loop.
    assert answers["proxied"]["status"] == 200
    assert "Strict-Transport-Security" in answers["proxied"]["headers"]


def test_production_cookies_and_redirects_follow_debug(tmp_path: Path) -> None:
    names = (
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SECURE_PROXY_SSL_HEADER",
    )
    production = _settings_under(_production_env(tmp_path), *names)
    assert production == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SECURE_PROXY_SSL_HEADER": None,  # never trusted unless the operator names the header
    }
    embedded = {"PATH": os.environ["PATH"], "MICROSCOPE_VAR_DIR": str(tmp_path / "embedded")}
    local = _settings_under(embedded, *names)
    assert local["SECURE_SSL_REDIRECT"] is False and local["SECURE_HSTS_SECONDS"] == 0
    assert local["SESSION_COOKIE_SECURE"] is False  # runserver over http still logs in


def test_secrets_come_only_from_the_environment(tmp_path: Path) -> None:
    names = (
        "SECRET_KEY",
        "SECRET_KEY_FALLBACKS",
        "EMAIL_HOST_PASSWORD",
        "DATABASES",
        "STORAGES",
    )
    env = _production_env(
        tmp_path,
        SECRET_KEY="k" * 60 + "-from-env",
        SECRET_KEY_FALLBACKS="old-key-1,old-key-2",
        EMAIL_HOST_PASSWORD="mail-secret-from-env",
        DATABASE_URL="postgresql://app:db-secret-from-env@db.internal:5432/microscope",
        AWS_STORAGE_BUCKET_NAME="bucket",
        AWS_ACCESS_KEY_ID="AKIAFROMENV",
        AWS_SECRET_ACCESS_KEY="aws-secret-from-env",
    )
    values = _settings_under(env, *names)
    assert values["SECRET_KEY"] == "k" * 60 + "-from-env"
    assert values["SECRET_KEY_FALLBACKS"] == ["old-key-1", "old-key-2"]
    assert values["EMAIL_HOST_PASSWORD"] == "mail-secret-from-env"
    assert values["DATABASES"]["default"]["PASSWORD"] == "db-secret-from-env"
    options = values["STORAGES"]["default"]["OPTIONS"]
    assert (options["access_key"], options["secret_key"]) == ("AKIAFROMENV", "aws-secret-from-env")
    # Without the variables there is no secret at all (and production refuses to start).
    bare = _production_env(tmp_path)
    del bare["SECRET_KEY"]
    values = _settings_under({**bare, "DEBUG": "1"}, "EMAIL_HOST_PASSWORD", "STORAGES")
    assert values["EMAIL_HOST_PASSWORD"] == ""
    assert "OPTIONS" not in values["STORAGES"]["default"]
    refused = _run(["-c", "import microscope_site.settings"], bare)
    assert refused.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in refused.stderr


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, ["'self'", "data:"]),
        (
            {"MEDIA_URL": "https://media.example.org/m/"},
            ["'self'", "data:", "https://media.example.org"],
        ),
        (
            {"AWS_STORAGE_BUCKET_NAME": "renders", "AWS_S3_CUSTOM_DOMAIN": "cdn.example.org"},
            ["'self'", "data:", "https://cdn.example.org"],
        ),
        (
            {"AWS_STORAGE_BUCKET_NAME": "renders", "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9000"},
            ["'self'", "data:", "http://127.0.0.1:9000"],
        ),
        (
            {"AWS_STORAGE_BUCKET_NAME": "renders", "AWS_S3_REGION_NAME": "eu-west-1"},
            [
                "'self'",
                "data:",
                "https://renders.s3.amazonaws.com",
                "https://renders.s3.eu-west-1.amazonaws.com",
            ],
        ),
    ],
)
def test_pages_may_load_images_from_the_media_bucket_and_nothing_else(
    tmp_path: Path, extra: dict[str, str], expected: list[str]
) -> None:
    values = _settings_under(_production_env(tmp_path, **extra), "CONTENT_SECURITY_POLICY")
    directives = values["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]
    assert directives["img-src"] == expected
    for name in ("script-src", "style-src-elem", "connect-src", "font-src", "default-src"):
        assert directives[name] == ["'self'"], name


def test_redis_is_the_cache_through_the_resilient_backend(tmp_path: Path) -> None:
    env = _production_env(tmp_path, REDIS_URL="redis://127.0.0.1:6379/11")
    caches = _settings_under(env, "CACHES")["CACHES"]
    assert caches["default"] == {
        "BACKEND": "microscope_site.cache.ResilientRedisCache",
        "LOCATION": "redis://127.0.0.1:6379/11",
    }
    local = _settings_under(_production_env(tmp_path), "CACHES")["CACHES"]
    assert local["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("X-Forwarded-Proto", ["HTTP_X_FORWARDED_PROTO", "https"]), ("", None)],
)
def test_the_proxy_header_is_named_by_the_operator(
    tmp_path: Path, value: str, expected: list[str] | None
) -> None:
    env = _production_env(tmp_path, SECURE_PROXY_SSL_HEADER=value)
    assert _settings_under(env, "SECURE_PROXY_SSL_HEADER") == {"SECURE_PROXY_SSL_HEADER": expected}


def test_a_malformed_proxy_header_stops_the_process_with_a_clear_message(tmp_path: Path) -> None:
    env = _production_env(tmp_path, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https")
    done = _run(["-c", "import microscope_site.settings"], env)
    assert done.returncode != 0
    assert "is not a header name (e.g. X-Forwarded-Proto)" in done.stderr
