"""The `limit` reference of bench/resolve.py: a bare Django app answering a fixed body.

No database, no middleware, no app: one view returning, from memory, the body that orgenv
answered for the big project (a file named by BENCH_LIMIT_BODY). Served by the same gunicorn
settings as orgenv, it is what Django and gunicorn cost on this machine for that answer: the
ceiling the runner endpoint is measured against.
"""

from __future__ import annotations

import os

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-limit-reference",
    ALLOWED_HOSTS=["127.0.0.1"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={},
)

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

with open(os.environ["BENCH_LIMIT_BODY"], "rb") as file:
    BODY = file.read()
CONTENT_TYPE = os.environ.get("BENCH_LIMIT_CONTENT_TYPE", "application/json")


def environment(request: HttpRequest) -> HttpResponse:
    return HttpResponse(BODY, content_type=CONTENT_TYPE)


urlpatterns = [path("api/v1/environment", environment)]
application = get_wsgi_application()
