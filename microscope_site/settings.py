"""Microscope settings: one module, driven by the environment.

With no environment at all this is the embedded default (SQLite, local media folder, a Celery
broker on the local filesystem, local-memory cache). Production sets the variables listed in the
README (DATABASE_URL, CELERY_BROKER_URL, REDIS_URL, AWS_*, SECRET_KEY, ALLOWED_HOSTS, …).
"""

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from microscope_site.database import database_from_url
from microscope_site.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MICROSCOPE_VAR_DIR", str(BASE_DIR / "var")))

VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", default=not env_str("SECRET_KEY"))
# Secrets come only from the environment (SECRET_KEY, DATABASE_URL, EMAIL_HOST_PASSWORD,
# AWS_SECRET_ACCESS_KEY): nothing secret is written in this file or the repository.
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-embedded-default-key-for-local-use-only"
# Old keys still accepted for sessions, password resets and signed values while rotating.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sitemaps",
    "csp",  # its system checks and the {% csp_nonce %} tag
    "rest_framework",
    "microscope_site",  # no models: the job lifecycle's periodic tasks (tasks.py)
    "neurons",
    "rendering",
    "annotations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Under /api/: refuses NUL bytes and oversized bodies, and answers every error as JSON.
    "microscope_site.api_errors.ApiErrorsAsJson",
    # Outside PageCache, so a page served from the cache carries the policy too.
    "csp.middleware.CSPMiddleware",
    # A lost database answers 503 (with Retry-After), the page cache's lookup included.
    "microscope_site.database_down.DatabaseUnavailable",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "microscope_site.nul_bytes.RefuseNulBytes",  # PostgreSQL refuses NUL in text: 400, not 500
    "neurons.pagecache.PageCache",  # whole anonymous pages, before sessions, CSRF and auth
    "django.middleware.http.ConditionalGetMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "neurons.renamed.RenamedRedirect",
]
# No page may be framed by another site, except the embeddable unit card (/embed/…).
X_FRAME_OPTIONS = "DENY"

ROOT_URLCONF = "microscope_site.urls"
WSGI_APPLICATION = "microscope_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # `{% url %}` answered from `reverse()` kept per process (microscope_site/links.py).
            "builtins": ["microscope_site.links"],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
DATABASES: dict[str, dict[str, Any]] = {
    "default": database_from_url(
        DATABASE_URL,
        conn_max_age=env_int("CONN_MAX_AGE", 60),
        prepared=env_bool("DATABASE_PREPARED", default=True),
    )
    if DATABASE_URL
    else {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR_DIR / "microscope.sqlite3")}
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file (not memory) for the test database, so a test's Celery worker process can open it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    # Let the web process and the local worker write the same file without "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
CACHES = {
    # Redis with a fallback: when Redis is down the cache answers misses instead of errors.
    "default": {"BACKEND": "microscope_site.cache.ResilientRedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Page fragments many pages share (a model's layer navigation), kept in each process: their
    # keys name every version they show, so a changed model gets new keys, never a stale copy.
    "fragments": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "fragments",
        "TIMEOUT": 24 * 3600,
        "OPTIONS": {"MAX_ENTRIES": 2000},
    },
}

# Media: a local folder by default, an S3-compatible bucket when AWS_STORAGE_BUCKET_NAME is set.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Label files that only come with a model's own release (Places365's categories_places365.txt,
# InceptionV1's class names): read by the import and `manage.py class_names`.
LABELS_DIR = Path(env_str("MICROSCOPE_LABELS_DIR", str(VAR_DIR / "labels")))
MEDIA_URL = env_str("MEDIA_URL", "/media/")
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if AWS_STORAGE_BUCKET_NAME:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
            "custom_domain": env_str("AWS_S3_CUSTOM_DOMAIN") or None,
            "querystring_auth": env_bool("AWS_QUERYSTRING_AUTH", False),
            "file_overwrite": False,
        },
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Celery. The embedded default is kombu's filesystem transport: a real broker protocol and a
# real worker process, with no server to run. Production: Redis or RabbitMQ via the env.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = (
    {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "control_folder": str(BROKER_DIR / "control"),
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    # Longer than the longest job, so a slow render is not redelivered while it runs.
    else {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 6 * 3600)}
)
if CELERY_BROKER_URL.startswith("filesystem"):
    (BROKER_DIR / "control").mkdir(parents=True, exist_ok=True)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3 * 3600)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3 * 3600 + 300)

CELERY_TASK_ROUTES = {"rendering.tasks.*": {"queue": "gpu"}}
CELERY_BEAT_SCHEDULE = {
    # Every job kind (renders, imports, exports): requeue the stale, resend the never-sent.
    "reap-stale-jobs": {
        "task": "microscope_site.tasks.reap_stale_jobs",
        "schedule": 60.0,
        "options": {"queue": "default"},
    },
    "purge-idempotency-keys": {
        "task": "neurons.tasks.purge_idempotency_keys",
        "schedule": 3600.0,
        "options": {"queue": "default"},
    },
}

# Jobs, per kind: attempts before a failure is final, and how long a running job's heartbeat
# may be silent before the reaper takes its worker for dead (longer than any one batch).
IMPORT_MAX_ATTEMPTS = env_int("IMPORT_MAX_ATTEMPTS", 3)
IMPORT_STALE_AFTER_S = env_int("IMPORT_STALE_AFTER_S", 600)
EXPORT_MAX_ATTEMPTS = env_int("EXPORT_MAX_ATTEMPTS", 3)
EXPORT_STALE_AFTER_S = env_int("EXPORT_STALE_AFTER_S", 600)

# Rendering. "auto" renders on the GPU when torch sees one.
RENDER_DEVICE = env_str("RENDER_DEVICE", "auto")
# CUDA only (the CPU path ignores both): the whole optimization step compiled (torch.compile,
# CUDA graphs, fused Adam) and the model run in bf16 autocast.
RENDER_COMPILE = env_bool("RENDER_COMPILE", True)
RENDER_BF16 = env_bool("RENDER_BF16", True)
# torch.compile's mode on CUDA: "reduce-overhead" replays each step as a CUDA graph.
RENDER_COMPILE_MODE = env_str("RENDER_COMPILE_MODE", "reduce-overhead")
# Inductor's (and Triton's) cache, kept across worker restarts so a restart does not compile again.
RENDER_COMPILE_CACHE_DIR = Path(env_str("RENDER_COMPILE_CACHE_DIR", str(VAR_DIR / "inductor")))
# Images per optimization; 0: the render device's default (256 on CUDA, 8 on the CPU). Jobs hold
# RENDER_BATCHES_PER_JOB whole batches (0: 4 on CUDA, 8 on the CPU) unless RENDER_UNITS_PER_JOB
# (0: unset) says otherwise; it is rounded up to whole batches. See rendering.services.
RENDER_BATCH_SIZE = env_int("RENDER_BATCH_SIZE", 0)
RENDER_BATCHES_PER_JOB = env_int("RENDER_BATCHES_PER_JOB", 0)
RENDER_UNITS_PER_JOB = env_int("RENDER_UNITS_PER_JOB", 0)
# Threads that encode PNGs and write files while the next batch renders (rendering.pipeline).
RENDER_WRITER_THREADS = env_int("RENDER_WRITER_THREADS", 4)
RENDER_MAX_ATTEMPTS = env_int("RENDER_MAX_ATTEMPTS", 3)
RENDER_STALE_AFTER_S = env_int("RENDER_STALE_AFTER_S", 600)
RENDER_NOW_STEPS = env_int("RENDER_NOW_STEPS", 512)
RENDER_NOW_PER_MINUTE = env_int("RENDER_NOW_PER_MINUTE", 6)
# Layers rendered (channel technique, default parameters) right after an import: names or "all".
RENDER_AFTER_IMPORT = env_list("RENDER_AFTER_IMPORT", [])
# Dataset passes: images per forward, DataLoader worker processes decoding images.
EXAMPLES_BATCH_SIZE = env_int("EXAMPLES_BATCH_SIZE", 32)
EXAMPLES_LOADER_WORKERS = env_int("EXAMPLES_LOADER_WORKERS", 2)

# Where pretrained weights are cached (torch.hub's folder by default).
TORCH_HOME = env_str("TORCH_HOME")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# HTTPS and cookies (docs/SECURITY.md). Production (DEBUG off) is HTTPS-only by default; the
# embedded default (DEBUG on, runserver over http) keeps all of this off.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
# The header only allows a later submission to the browsers' preload list; nothing is enrolled
# until the operator submits the domain (https://hstspreload.org).
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = env_str("SECURE_REFERRER_POLICY", "strict-origin-when-cross-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"


def _proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """`X-Forwarded-Proto` (the header a TLS-terminating proxy sets) → Django's META form.

    Unset by default: trusting the header without a proxy that overwrites it would let any
    client claim to be on HTTPS."""
    if not name:
        return None
    if not re.fullmatch(r"[A-Za-z0-9-]+", name):
        raise ImproperlyConfigured(
            f"SECURE_PROXY_SSL_HEADER={name!r} is not a header name (e.g. X-Forwarded-Proto)"
        )
    return "HTTP_" + name.upper().replace("-", "_"), "https"


SECURE_PROXY_SSL_HEADER = _proxy_ssl_header(env_str("SECURE_PROXY_SSL_HEADER"))
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
# No script of ours reads the CSRF cookie: forms carry the token, and the API docs page gets it
# in the page itself.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# Request size. The largest honest form is a note (20,000 characters, up to 4 bytes each,
# URL-encoded) at well under 1 MiB; anything larger is refused with 400 before a view runs.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("DATA_UPLOAD_MAX_NUMBER_FIELDS", 1000)
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("FILE_UPLOAD_MAX_MEMORY_SIZE", 1024 * 1024)


def _origin(url: str) -> str | None:
    """`https://cdn.example.org` from an absolute URL; None for a path on this site."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def _media_origins() -> list[str]:
    """Where pages load images from besides this site: the bucket or CDN serving media."""
    origins = [_origin(MEDIA_URL)]
    if AWS_STORAGE_BUCKET_NAME:
        options = STORAGES["default"]["OPTIONS"]
        if options["custom_domain"]:
            origins.append(f"https://{options['custom_domain']}")
        elif options["endpoint_url"]:
            origins.append(_origin(options["endpoint_url"]))
        else:
            origins.append(f"https://{AWS_STORAGE_BUCKET_NAME}.s3.amazonaws.com")
            if options["region_name"]:
                region = options["region_name"]
                origins.append(f"https://{AWS_STORAGE_BUCKET_NAME}.s3.{region}.amazonaws.com")
    origins += env_list("CSP_EXTRA_IMG_ORIGINS", [])
    return list(dict.fromkeys(origin for origin in origins if origin))


# Content-Security-Policy (django-csp 4). Every script and stylesheet is a file of ours (no
# inline <script>, no CDN); style *attributes* are allowed because pages position sprites and
# boxes with them (style-src-attr), style *elements* are not (style-src-elem). `style-src`
# keeps 'unsafe-inline' only for browsers too old to know the -attr/-elem split. Kernels and
# weight previews are data: PNGs. Framing is governed by X-Frame-Options (DENY everywhere but
# the embed card), which the embed view already lifts; see docs/SECURITY.md.
CONTENT_SECURITY_POLICY: dict[str, Any] = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "script-src-attr": [NONE],
        "style-src": [SELF, UNSAFE_INLINE],
        "style-src-elem": [SELF],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:", *_media_origins()],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "upgrade-insecure-requests": SECURE_SSL_REDIRECT,
    },
}
if env_str("CSP_REPORT_URI"):
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["report-uri"] = [env_str("CSP_REPORT_URI")]

# Accounts and annotations. Mail goes to the console unless an SMTP host is configured.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "annotations:notes"
LOGOUT_REDIRECT_URL = "annotations:notes"
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Microscope <microscope@localhost>")
ANNOTATIONS_POSTS_PER_MINUTE = env_int("ANNOTATIONS_POSTS_PER_MINUTE", 10)

# The API (/api/v1/, docs/API.md): personal tokens or the session; cursor pagination on every
# list; one error shape; throttles per token, signed-in user and anonymous address.
INSTALLED_APPS += [
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotations.tokens.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # A cursor over the whole ordering key, strict query strings (microscope_site/api_queries.py).
    "DEFAULT_PAGINATION_CLASS": "microscope_site.api_queries.KeysetCursorPagination",
    "PAGE_SIZE": env_int("API_PAGE_SIZE", 50),
    "DEFAULT_FILTER_BACKENDS": [
        "microscope_site.api_queries.StrictQueryParams",
        "microscope_site.api_queries.StrictFilterBackend",
        "microscope_site.api_queries.StrictOrdering",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["annotations.tokens.ApiThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "60/minute"),
        "user": env_str("API_THROTTLE_USER", "600/minute"),
        "token": env_str("API_THROTTLE_TOKEN", "1200/minute"),
    },
    # drf-standardized-errors' handler, with our handler class and shape (below).
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "microscope_site.api_errors.ApiAutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Microscope API",
    "DESCRIPTION": "Units of vision models, their renders, dataset examples, tuning curves, "
    "connections, circuit notes and comments. Authenticate scripts with `Authorization: Token "
    "<secret>`.",
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/api/v1/",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",  # served from our static files, never a CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# One error shape (`microscope_site.api_errors`, docs/API.md): the package's handler runs ours,
# answers a JSON 500 with DEBUG on too, and documents these statuses where they can happen.
# How long an `Idempotency-Key` answers its first answer again (neurons/idempotency.py).
IDEMPOTENCY_KEY_TTL_S = env_int("IDEMPOTENCY_KEY_TTL_S", 24 * 3600)
API_ERROR_STATUSES = ["400", "401", "403", "404", "405", "406", "415", "429", "500", "503"]
DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "microscope_site.api_exceptions.ApiExceptionHandler",
    "EXCEPTION_FORMATTER_CLASS": "microscope_site.api_errors.ApiErrorFormatter",
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
    "ALLOWED_ERROR_STATUS_CODES": API_ERROR_STATUSES,
    "ERROR_SCHEMAS": {
        code: f"microscope_site.api_errors.Error{code}" for code in API_ERROR_STATUSES
    },
}
