"""orgenv settings: every value comes from the environment (docs/configuration.md).

A `.env` file at the repository root is read when present; `make run` writes one with
freshly generated keys the first time.
"""

from __future__ import annotations

import re
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _names_in(path: Path) -> frozenset[str]:
    """The names a dotenv file defines (NAME=… or export NAME=…)."""
    if not path.is_file():
        return frozenset()
    names = re.findall(
        r"^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*=",
        path.read_text(encoding="utf-8", errors="replace"),
        flags=re.MULTILINE,
    )
    return frozenset(names)


# The server's own settings, which apply_config's `value_from_env` must never copy into a
# variable that members and runners see (orgenv.configuration.validation): the secrets, and
# whatever the server's .env defines.
ORGENV_SERVER_ENV_NAMES = frozenset(
    {
        "SECRET_KEY",
        "FERNET_KEYS",
        "DATABASE_URL",
        "CACHE_URL",
        "EMAIL_URL",
        "METRICS_TOKEN",
        "TASKS_REDIS_URL",
    }
) | _names_in(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)


def _required(name: str, how: str, dev_default: str) -> str:
    """A setting that protects data: mandatory unless DEBUG is on."""
    value = env.str(name, default="").strip()
    if value:
        return value
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(
        f"{name} is not set. Generate one with: {how} "
        f"and put {name}=<value> in the environment or in {BASE_DIR / '.env'}."
    )


SECRET_KEY = _required(
    "SECRET_KEY",
    "python -c 'import secrets; print(secrets.token_urlsafe(50))'",
    "django-insecure-development-only-key",
)
# Comma-separated Fernet keys: the first encrypts, all decrypt (orgenv.crypto).
# The development default is a fixed, public key: never use DEBUG with real secrets.
FERNET_KEYS = [
    key.strip()
    for key in _required(
        "FERNET_KEYS",
        "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'",
        "ZGV2ZWxvcG1lbnQtb25seS1rZXktbm90LXNlY3JldCE=",
    ).split(",")
    if key.strip()
]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "axes",
    "django_prometheus",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_tasks",
    "orgenv",
    # After orgenv: orgenv's db_worker (the library's worker plus the periodic tasks) takes
    # the command's name (the first app listed wins).
    "django_tasks_db",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Database or cache unreachable: 503 with Retry-After, JSON under /api/.
    "orgenv.api.unavailable.BackendUnavailableMiddleware",
    # Records this server's key ring for rotate_keys (orgenv.rotation).
    "orgenv.rotation.Heartbeat",
    # GET /api/v1/environment, the runners' hot path, answered here: the middleware below is
    # for pages (orgenv.api.runner).
    "orgenv.api.runner.RunnerEndpoint",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed a second factor.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # An admin an organization requires a second factor of enrols before reaching the admin.
    "orgenv.accounts.two_factor.TwoFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Axes must come last: it turns a lockout into a response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "orgenv.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several gunicorn workers write audit events at once: WAL lets readers go on during a
    # write, IMMEDIATE takes the write lock up front instead of failing on an upgrade, and
    # the timeout makes a busy writer wait rather than answer "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # psycopg prepares a statement only with a threshold set, and Django leaves it None; its
    # own queries bind on the client and are never prepared either way. With one, the few raw
    # statements of the runner's hot path are prepared on their first use on a connection
    # (orgenv.selectors.statements). `?prepare_threshold=off` in DATABASE_URL turns that off
    # (PgBouncer before 1.21 in transaction mode).
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _threshold = str(_options.get("prepare_threshold", 5)).strip().lower()
    _options["prepare_threshold"] = None if _threshold in ("", "none", "off") else int(_threshold)
# Keep connections open between requests: opening one costs a PostgreSQL backend process per
# request otherwise, and on SQLite the connection set-up (WAL pragma, functions) and the
# checkpoint on close cost more than the runner's whole request (bench/resolve.py).
# `?conn_max_age=N` in DATABASE_URL overrides it.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://orgenv")}
# django-environ passes `?key_prefix=` on in lower case, where Django does not look for it.
if "key_prefix" in CACHES["default"]:
    CACHES["default"]["KEY_PREFIX"] = CACHES["default"].pop("key_prefix")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

SESSION_COOKIE_HTTPONLY = True
# A sign-in lasts 8 hours by default, not Django's two weeks: these sessions administer secrets.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 60 * 60)

# Served over HTTPS (behind a proxy that terminates TLS, or directly): cookies only over
# HTTPS, HSTS for a year (subdomains included), plain HTTP redirected.
HTTPS = env.bool("HTTPS", default=False)
if HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    # Load balancers probe over plain HTTP and expect an answer, not a redirect.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = 365 * 24 * 60 * 60
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Only an apex domain can be submitted to browsers' preload lists (hstspreload.org, by
    # its owner): on orgenv.example.com the directive is inert, and it clears W021.
    SECURE_HSTS_PRELOAD = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Every response gets a Content-Security-Policy (django-csp): scripts and styles only from our
# own static files, never inline, so an injected <script> or style attribute does nothing.
# JavaScript goes in static/*.js (data-* attributes carry its parameters); the browser tests
# fail on any CSP violation (tests/browser/conftest.py). img-src allows data: for the icons
# Swagger UI's stylesheet embeds.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {
        "token": env.str("THROTTLE_TOKEN_RATE", default="600/min"),
        "auth_failure": env.str("THROTTLE_AUTH_FAILURE_RATE", default="30/min"),
        "member": env.str("THROTTLE_MEMBER_RATE", default="120/min"),
        # Reveals per user: a deliberate act, one value at a time, never a bulk path.
        "reveal": env.str("THROTTLE_REVEAL_RATE", default="30/hour"),
    },
}
# How many reverse proxies in front of the app append to X-Forwarded-For. 0 (the default)
# ignores the header: any client can write it, and it decides audit addresses and throttling.
ORGENV_TRUSTED_PROXIES = env.int("TRUSTED_PROXIES", default=0)
if HTTPS and ORGENV_TRUSTED_PROXIES > 0:
    # The proxy terminates TLS and says so; without a trusted proxy a client could claim it.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

SPECTACULAR_SETTINGS = {
    "TITLE": "orgenv API",
    "DESCRIPTION": "Organization-level environment variables and secrets for ML and CI projects.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Sign-in lockout (django-axes): after AXES_FAILURE_LIMIT failures, AXES_COOLOFF_MINUTES of lockout.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_MINUTES", default=15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The client's address by the one rule of audit events and throttles (TRUSTED_PROXIES): with
# the proxy's address instead, failures from one client would lock out every other.
AXES_CLIENT_IP_CALLABLE = "orgenv.audit.events.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# A locked-out sign-in gets a page in the site's layout that says why and for how long.
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# How this process names itself to rotate_keys; host:pid when empty.
SERVER_NAME = env.str("SERVER_NAME", default="")
# How often (at most) a serving process records its key ring for rotate_keys; 0: never.
HEARTBEAT_SECONDS = env.int("HEARTBEAT_SECONDS", default=10)

# Memory for decrypted current values, per process (orgenv.crypto.PlaintextCache).
DECRYPTION_CACHE_BYTES = env.int("DECRYPTION_CACHE_BYTES", default=32 * 1024 * 1024)

AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)

# Prometheus metrics at /metrics, served only to `Authorization: Bearer <METRICS_TOKEN>`;
# unset (the default), /metrics is a 404 and no request pays for counting.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="").strip()
if METRICS_TOKEN:
    MIDDLEWARE = [
        "django_prometheus.middleware.PrometheusBeforeMiddleware",
        *MIDDLEWARE,
        "orgenv.operations.metrics.ApiStatusMiddleware",
        "django_prometheus.middleware.PrometheusAfterMiddleware",
    ]
PROMETHEUS_EXPORT_MIGRATIONS = False

LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")

# A new project token expires after this many days unless its issuer asks for another
# lifetime or, explicitly, for none (issue_token --never-expires, "Never expires").
TOKEN_DEFAULT_DAYS = env.int("TOKEN_DEFAULT_DAYS", default=90)
if TOKEN_DEFAULT_DAYS < 1:
    raise ImproperlyConfigured(
        f"TOKEN_DEFAULT_DAYS must be a number of days of at least 1, not {TOKEN_DEFAULT_DAYS}: "
        "a token that should never expire is issued so explicitly."
    )

# TOTP: the name authenticator apps show beside the code.
OTP_TOTP_ISSUER = "orgenv"

# Mail for password resets and notifications (orgenv.notifications). Without EMAIL_URL the
# reset pages do not exist (a form that promises a mail nobody sends would only log failed
# SMTP connections) and notifications go to webhooks only. `make run` writes
# EMAIL_URL=consolemail:// into a new .env: mails are printed by the worker.
EMAIL_URL = env.str("EMAIL_URL", default="").strip()
if EMAIL_URL:
    vars().update(env.email_url("EMAIL_URL"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="orgenv@localhost")
# Password reset requests per client address and per e-mail address, per hour.
PASSWORD_RESET_RATE = env.int("PASSWORD_RESET_RATE", default=5)

# Background work (orgenv.background): Django's tasks framework through the django-tasks
# backport. The database backend needs nothing more than the database: `python manage.py
# db_worker` runs the tasks. TASKS_BACKEND=rq sends them to Redis instead (django-tasks-rq,
# `pip install 'orgenv[rq]'`; docs/webhooks.md "Workers"), run by `python manage.py rqworker
# --job-class django_tasks_rq.Job --with-scheduler`.
TASKS_BACKEND = env.str("TASKS_BACKEND", default="database").strip().lower()
if TASKS_BACKEND == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
elif TASKS_BACKEND == "rq":
    _cache = env.str("CACHE_URL", default="")
    _redis = env.str("TASKS_REDIS_URL", default="") or (
        _cache if _cache.startswith("redis") else ""
    )
    if not _redis:
        raise ImproperlyConfigured(
            "TASKS_BACKEND=rq needs a Redis: set TASKS_REDIS_URL=redis://… (or a redis:// "
            "CACHE_URL, which it then shares)."
        )
    _at = INSTALLED_APPS.index("django_tasks")
    INSTALLED_APPS[_at:_at] = ["django_rq", "django_tasks_rq"]
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}
    RQ_QUEUES = {"default": {"URL": _redis}}
else:
    raise ImproperlyConfigured(f"TASKS_BACKEND must be database or rq, not {TASKS_BACKEND!r}.")
# Periodic tasks (dotted path → seconds between runs), enqueued by the first db_worker to
# find one due (`python manage.py run_periodic` does the same from cron, for the RQ backend).
ORGENV_PERIODIC_TASKS = {
    # Outbox rows whose task was lost (a worker killed, an enqueue after commit that failed).
    "orgenv.notifications.tasks.recover": 60,
    # Delivered notifications and finished task results past their retention.
    "orgenv.notifications.tasks.prune": 60 * 60,
    # Open change requests past their 7 days: closed, their authors mailed.
    "orgenv.changes.tasks.expire": 10 * 60,
    # Endpoints failing for WEBHOOK_DISABLE_AFTER_DAYS disabled, their admins mailed.
    "orgenv.notifications.tasks.disable_failing": 10 * 60,
}
# How often a db_worker's scheduler looks for due periodic tasks.
PERIODIC_TICK_SECONDS = env.float("PERIODIC_TICK_SECONDS", default=10)
# An outbox row still waiting this long after it was due is taken for lost and enqueued
# again (its task never ran, or its worker died).
NOTIFICATION_RECOVER_AFTER_SECONDS = env.float("NOTIFICATION_RECOVER_AFTER_SECONDS", default=60)
# Retries of a failed webhook delivery or notification mail: exponential backoff from this
# first wait (doubling, at most 6 h apart, with jitter) for this many hours.
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=30)
WEBHOOK_RETRY_HOURS = env.float("WEBHOOK_RETRY_HOURS", default=24)
# Webhook deliveries (orgenv.notifications.sending): the whole attempt's time limit, and the
# hosts that may be reached over http or at a private address (a comma-separated list of
# host names or addresses, such as `hooks.internal,10.0.0.7`); every other destination must
# be https and resolve to a public address.
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10)
WEBHOOK_ALLOWED_HOSTS = [
    h.strip().lower() for h in env.list("WEBHOOK_ALLOWED_HOSTS", default=[]) if h.strip()
]
# An endpoint whose every attempt failed for this many days is disabled (its admins mailed).
WEBHOOK_DISABLE_AFTER_DAYS = env.float("WEBHOOK_DISABLE_AFTER_DAYS", default=3)
# Days a notification (and its delivery log) is kept once every part of it is done.
NOTIFICATION_RETENTION_DAYS = env.int("NOTIFICATION_RETENTION_DAYS", default=30)
# The address links in notifications point to (https://orgenv.example.com); without it, the
# address of the request that made the change, else http://127.0.0.1:8000.
SITE_URL = env.str("SITE_URL", default="").strip().rstrip("/")

# How recent a password entry (and second factor, when enrolled) a reveal needs.
REVEAL_REAUTH_SECONDS = env.int("REVEAL_REAUTH_SECONDS", default=600)

# apply_config refuses larger files (orgenv.configuration.loading): a file is parsed whole and
# checked before anything is written, at about 100 bytes of memory per byte of file (an L
# organization's export, 4.3 MB: about 400 MB for the whole apply). 16 MiB holds an
# organization of 10,000 projects; a denser or aliased file is refused whatever its size.
CONFIG_MAX_BYTES = env.int("CONFIG_MAX_BYTES", default=16 * 1024 * 1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "orgenv.operations.logs.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            **({"formatter": "json"} if LOG_FORMAT == "json" else {}),
        }
    },
    "filters": {"forbidden_on_one_line": {"()": "orgenv.audit.forbidden.ForbiddenOnOneLine"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # A 403 is one line (who, what, path), not a traceback.
        "django.request": {"filters": ["forbidden_on_one_line"]},
        # Axes logs every attempt at INFO; warnings are enough.
        "axes": {"level": "WARNING"},
    },
}
