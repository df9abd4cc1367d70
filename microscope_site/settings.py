"""Microscope settings: one module, driven by the environment.

With no environment at all this is the embedded default (SQLite, local media folder, a Celery
broker on the local filesystem, local-memory cache). Production sets the variables listed in the
README (DATABASE_URL, CELERY_BROKER_URL, REDIS_URL, AWS_*, SECRET_KEY, ALLOWED_HOSTS, …).
"""

from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from microscope_site.database import database_from_url
from microscope_site.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MICROSCOPE_VAR_DIR", str(BASE_DIR / "var")))

VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", default=not env_str("SECRET_KEY"))
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-embedded-default-key-for-local-use-only"
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
    "rest_framework",
    "neurons",
    "rendering",
    "annotations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "neurons.pagecache.PageCache",  # whole anonymous pages, before sessions, CSRF and auth
    "django.middleware.http.ConditionalGetMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "neurons.middleware.RenamedRedirect",
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
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
DATABASES: dict[str, dict[str, Any]] = {
    "default": database_from_url(DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 60))
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
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Media: a local folder by default, an S3-compatible bucket when AWS_STORAGE_BUCKET_NAME is set.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
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
    "reap-stale-render-jobs": {
        "task": "rendering.tasks.reap_stale_render_jobs",
        "schedule": 60.0,
        "options": {"queue": "default"},
    },
    "reap-stale-exports": {
        "task": "neurons.tasks.reap_stale_exports",
        "schedule": 300.0,
        "options": {"queue": "default"},
    },
}

# Rendering. "auto" renders on the GPU when torch sees one.
RENDER_DEVICE = env_str("RENDER_DEVICE", "auto")
RENDER_COMPILE = env_bool("RENDER_COMPILE", False)  # torch.compile on CUDA (warm-up per shape)
RENDER_BF16 = env_bool("RENDER_BF16", False)  # bf16 autocast on CUDA
RENDER_BATCH_SIZE = env_int("RENDER_BATCH_SIZE", 8)  # images per optimization (GPU: 256)
RENDER_UNITS_PER_JOB = env_int("RENDER_UNITS_PER_JOB", 64)
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

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)

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
INSTALLED_APPS += ["django_filters", "drf_spectacular", "drf_spectacular_sidecar"]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotations.tokens.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": env_int("API_PAGE_SIZE", 50),
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["annotations.tokens.ApiThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "60/minute"),
        "user": env_str("API_THROTTLE_USER", "600/minute"),
        "token": env_str("API_THROTTLE_TOKEN", "1200/minute"),
    },
    "EXCEPTION_HANDLER": "neurons.api.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
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
