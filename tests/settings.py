"""Settings for the test suite: config.settings with keys generated for this run."""

import os
import secrets

from cryptography.fernet import Fernet

# Fresh keys for every run: no key used by tests is ever written to the repository.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("FERNET_KEYS", Fernet.generate_key().decode())
os.environ.setdefault("AXES_FAILURE_LIMIT", "5")
# The metrics middleware is on in tests, as it is wherever METRICS_TOKEN is set.
os.environ.setdefault("METRICS_TOKEN", secrets.token_urlsafe(24))
# No mail unless a test turns it on: the .env `make run` writes sets EMAIL_URL (consolemail),
# and the password reset pages and notification mails would follow it.
os.environ.setdefault("EMAIL_URL", "")

from config.settings import *  # noqa: E402,F403

# No app-server heartbeat writes in the middle of pinned query counts; the gunicorn servers
# of tests/management/test_rotate_keys_live.py run config.settings, where it is on.
HEARTBEAT_SECONDS = 0

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test sign-ins
ALLOWED_HOSTS = ["*"]

# Tests serve static files straight from the finders; there is no collectstatic output.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True

# Live-server tests open connections from request threads; closing them after each request
# lets the test database be dropped at the end.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not Django's shared-cache in-memory database: that one locks whole tables
    # between connections, where the real (WAL) database lets readers and a writer overlap,
    # and the concurrency tests (tests/concurrency.py) must meet the real behaviour.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(BASE_DIR / "artifacts" / f"test-db-{os.getpid()}.sqlite3")  # noqa: F405
    }
    (BASE_DIR / "artifacts").mkdir(exist_ok=True)  # noqa: F405
