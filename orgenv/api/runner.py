"""GET /api/v1/environment, the runner's endpoint: the product's hot path, served lean.

Every CI job of every project calls it, often hundreds at the same second. `RunnerEndpoint`,
a middleware placed right after the ones every answer needs (security headers, 503 when a
backend is unreachable, the app server's heartbeat for rotate_keys), answers a GET itself,
as a plain Django view: none of the session, CSRF, sign-in, two-factor, messages, history
and lockout middleware the pages need, no URL resolution, no DRF request, negotiation or
renderer. What it does is what the DRF view did, in the same order, with the same answers
(tests/api/test_runner_endpoint.py compares the two, header by header):

1. `?format=` (json, dotenv, shell), else 400 — before any token is looked at;
2. the token (orgenv.api.authentication.authenticate_runner: Bearer header only, failures
   recorded and counted per address, one prepared statement that reads the token, its
   project and the organization's generation);
3. the token's rate (an atomic counter, Redis INCR with CACHE_URL=redis://…);
4. the project's layers, kept by this process under (project, generation); the ETag; a 304
   or the values; the access event, one INSERT committed before any byte of the answer
   (a 500 without secrets when it cannot be written, a 503 when the database cannot be
   reached).

A token in the query string, HEAD and OPTIONS go on through the whole stack to the DRF view
(orgenv.api.views.RunnerEnvironmentView), which also describes the endpoint in the OpenAPI
schema and answers through `environment_response` below. With METRICS_TOKEN set, the
request and response counters of django-prometheus and orgenv's 304/429 counters see these
answers as they see the others'.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import DatabaseError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.urls import resolve
from rest_framework import exceptions, status

from orgenv.audit.resolutions import (
    repeat_record,
    resolution_deliver,
    resolution_record,
)
from orgenv.selectors.layers import ProjectLayers, cached_layers

from .. import crypto
from ..crypto import DecryptionError
from ..formats import FORMATS, render_dotenv, render_shell
from ..models import ProjectToken
from ..tokens import TokenRejected, digest, parse
from .authentication import authenticate_header, authenticate_runner
from .renderers import UnknownFormat
from .throttling import TokenRateThrottle, admit_runner
from .unavailable import is_unreachable, unavailable_response

logger = logging.getLogger(__name__)

PATH = "/api/v1/environment"
RESOLUTION_HEADER = "X-Orgenv-Resolution"
QUERY_STRING_NAMES = ("token", "access_token")


class ResolutionFailed(exceptions.APIException):
    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    default_detail = (
        "The environment could not be resolved and recorded, so none is served; try again "
        "or ask an administrator to check the server log."
    )
    default_code = "resolution_failed"


def environment_etag(layers: ProjectLayers, fmt: str) -> str:
    """From the fingerprint of the stored rows (no decryption), plus what else the body
    shows: the slugs and the format. Weak, because the body carries a fresh resolution_id
    each time: only its meaning repeats."""
    project = layers.project
    seed = f"{layers.fingerprint}|{project.organization.slug}/{project.slug}|{fmt}"
    return f'W/"{hashlib.sha256(seed.encode()).hexdigest()[:40]}"'


def etag_matches(request: HttpRequest, etag: str) -> bool:
    header = request.META.get("HTTP_IF_NONE_MATCH", "")
    if not header:
        return False
    opaque = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == opaque:
            return True
    return False


def json_text(data: Any) -> str:
    """What DRF's JSONRenderer writes (compact, U+2028/U+2029 escaped), without it."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def environment_response(request: HttpRequest, token: ProjectToken, fmt: str) -> HttpResponse:
    """The answer for an authenticated, unthrottled runner: 304 when If-None-Match holds the
    ETag, else the environment in `fmt`; either way after its access event is committed."""
    project = token.project
    actor = f"token:{token.prefix}"
    try:
        layers = cached_layers(project)
        etag = environment_etag(layers, fmt)
        if etag_matches(request, etag):
            # Every fetch is traced, an unchanged one too; it costs no decryption.
            event = resolution_record(
                layers=layers,
                actor=actor,
                token=token,
                request=request,
                detail={"format": fmt, "not_modified": True},
            )
            remember(token, fmt, etag, event.manifest_id)
            return not_modified(etag, event.pk)
        crypto.key_ring()  # a new key ring empties the caches of plaintext
        key = (project.pk, fmt)
        text = crypto.answers.get(key, etag)
        if text is None:
            delivery = resolution_deliver(
                layers=layers,
                secrets=True,
                actor=actor,
                token=token,
                request=request,
                detail={"format": fmt},
            )
            event = delivery.event
            text = render_answer(fmt, delivery.payload)
            crypto.answers.put(key, etag, text)
        else:
            # The same answer as the last time, already decrypted and rendered: only its
            # access event is new.
            event = resolution_record(
                layers=layers, actor=actor, token=token, request=request, detail={"format": fmt}
            )
    except (DatabaseError, DecryptionError) as exc:
        if is_unreachable(exc):
            raise  # 503, try again (orgenv.api.unavailable)
        logger.exception("Resolution of %s for token %s failed", project, token.prefix)
        raise ResolutionFailed() from None
    remember(token, fmt, etag, event.manifest_id)
    return rendered(fmt, text, etag, event.pk)


def rendered(fmt: str, text: str, etag: str, event_id: int) -> HttpResponse:
    if fmt == "json":
        # The body ends with the event's id: {…,"resolution_id":<id>}.
        body = f"{text}{event_id}}}".encode()
        response = HttpResponse(body, content_type="application/json")
    else:
        response = HttpResponse(text.encode(), content_type="text/plain; charset=utf-8")
    response["ETag"] = etag
    response[RESOLUTION_HEADER] = str(event_id)
    return response


def not_modified(etag: str, event_id: int) -> HttpResponse:
    response = HttpResponseNotModified()
    response["ETag"] = etag
    response[RESOLUTION_HEADER] = str(event_id)
    return response


# --- the same answer again, in one statement ----------------------------------------


@dataclass(frozen=True)
class Answered:
    """What this process last answered a token with, per format: the ETag, the generation
    it was made under and the manifest of that state."""

    token_id: int
    digest: str
    project_id: int
    organization_id: int
    by_format: dict[str, tuple[str, int, int]]


# token prefix → Answered, for this process (digests only, as the database keeps them).
_answered: dict[str, Answered] = {}
_ANSWERED_MAX = 10_000


def remember(token: ProjectToken, fmt: str, etag: str, manifest: int | None) -> None:
    if manifest is None:
        return
    generation = token.project.organization.generation
    known = _answered.get(token.prefix)
    if known is None or known.token_id != token.pk:
        if len(_answered) >= _ANSWERED_MAX:
            _answered.clear()
        known = _answered[token.prefix] = Answered(
            token.pk, token.digest, token.project_id, token.project.organization_id, {}
        )
    known.by_format[fmt] = (etag, generation, manifest)


def answer_again(request: HttpRequest, fmt: str) -> HttpResponse | None:
    """What this process last answered the runner's token with, again, in one statement
    (orgenv.audit.resolutions.repeat_record: the token still valid and the organization's
    generation unchanged, checked as the access event is written): a 304 when If-None-Match
    holds that ETag, else the answer as rendered then. None, having written nothing, when it
    cannot be answered so: the long way then reads the token and the state afresh. The
    token's secret is checked here, in constant time, against the digest of the token that
    got that answer."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    try:
        prefix, secret = parse(raw.strip())
    except TokenRejected:
        return None
    known = _answered.get(prefix)
    if known is None or fmt not in known.by_format:
        return None
    etag, generation, manifest = known.by_format[fmt]
    if not hmac.compare_digest(known.digest, digest(secret)):
        return None
    unchanged = etag_matches(request, etag)
    text = None
    if not unchanged:
        crypto.key_ring()  # a new key ring empties the caches of plaintext
        text = crypto.answers.get((known.project_id, fmt), etag, count_miss=False)
        if text is None:
            return None
    # An address over its failures is refused with a valid token too: the long way says so.
    admitted = admit_runner(request, known.token_id)
    if admitted is None:
        return None
    request.runner_throttle = admitted
    if not admitted[0]:
        return None  # the long way answers 429 (or 401 if the token went meanwhile)
    detail: dict[str, Any] = {"format": fmt}
    if unchanged:
        detail["not_modified"] = True
    try:
        event_id = repeat_record(
            token_id=known.token_id,
            token_digest=known.digest,
            project_id=known.project_id,
            organization_id=known.organization_id,
            generation=generation,
            manifest=manifest,
            actor=f"token:{prefix}",
            request=request,
            detail=detail,
        )
    except DatabaseError as exc:
        if is_unreachable(exc):
            raise  # 503, try again
        event_id = None  # the long way tries again, and answers 500 if it cannot record
    if event_id is None:
        return None
    if text is None:
        return not_modified(etag, event_id)
    return rendered(fmt, text, etag, event_id)


def render_answer(fmt: str, payload: dict[str, Any]) -> str:
    """The answer's text but for its resolution_id: JSON stops right before the id's digits
    (json_text of the payload with "resolution_id" as its last key, cut there)."""
    if fmt == "json":
        return json_text(payload)[:-1] + ',"resolution_id":'
    render = render_dotenv if fmt == "dotenv" else render_shell
    return render(payload["variables"])


def error_response(exc: exceptions.APIException) -> HttpResponse:
    """An APIException as DRF's exception handler answers it: JSON, whatever the format."""
    data = exc.detail if isinstance(exc.detail, list | dict) else {"detail": exc.detail}
    response = HttpResponse(
        json_text(data).encode(), status=exc.status_code, content_type="application/json"
    )
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response["WWW-Authenticate"] = authenticate_header()
    wait = getattr(exc, "wait", None)
    if wait:
        response["Retry-After"] = f"{wait:d}"
    return response


def requested_format(request: HttpRequest) -> str:
    wanted = request.GET.get("format") or "json"
    if wanted not in FORMATS:
        raise UnknownFormat(
            f"format: {wanted[:40]!r} is not a format; use one of {', '.join(FORMATS)}."
        )
    return wanted


def serve_environment(request: HttpRequest) -> HttpResponse:
    """The view: every answer of GET /api/v1/environment, 200, 304, 400, 401, 429, 500 and
    503, with the headers the DRF view gave it."""
    request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware checks it for the other views
    try:
        try:
            fmt = requested_format(request)
            response = answer_again(request, fmt)
            if response is None:
                token = authenticate_runner(request)
                if token is None:
                    raise exceptions.NotAuthenticated()
                # Counted already when the same answer again was tried.
                counted = getattr(request, "runner_throttle", None)
                if counted is None:
                    throttle = TokenRateThrottle()
                    allowed = throttle.allow_key(throttle.key_of(token))
                    counted = (allowed, None if allowed else throttle.wait())
                if not counted[0]:
                    raise exceptions.Throttled(counted[1])
                response = environment_response(request, token, fmt)
        except exceptions.APIException as exc:
            response = error_response(exc)
    except Exception as exc:
        if not is_unreachable(exc):
            raise
        # As orgenv.api.unavailable.BackendUnavailableMiddleware does for the other views.
        logger.error("%s %s: a backend is unreachable (%s)", request.method, request.path, exc)
        response = unavailable_response(request)
    else:
        response["Allow"] = "GET, HEAD, OPTIONS"  # as DRF's view says them
        response["Vary"] = "Accept"
        response["Cache-Control"] = "no-store"
    for name, value in _headers().items():
        response[name] = value
    response["Content-Length"] = str(len(response.content))
    return response


# The headers the middleware after RunnerEndpoint adds to every answer, computed once per
# process: the Content-Security-Policy (django-csp; no nonce is ever used here) and
# X-Frame-Options.
_fixed_headers: dict[str, str] | None = None


def _headers() -> dict[str, str]:
    global _fixed_headers
    if _fixed_headers is None:
        from csp.constants import HEADER, HEADER_REPORT_ONLY
        from csp.utils import build_policy

        headers = {}
        if policy := build_policy():
            headers[HEADER] = policy
        if policy := build_policy(report_only=True):
            headers[HEADER_REPORT_ONLY] = policy
        headers["X-Frame-Options"] = settings.X_FRAME_OPTIONS.upper()
        _fixed_headers = headers
    return _fixed_headers


@receiver(setting_changed)
def _forget_headers(*, setting: str, **kwargs: object) -> None:
    global _fixed_headers
    if setting.startswith("CONTENT_SECURITY_POLICY") or setting == "X_FRAME_OPTIONS":
        _fixed_headers = None


class RunnerEndpoint:
    """Middleware: answers GET /api/v1/environment (see the module's docstring); any other
    request goes on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.serve = _counted(serve_environment) if settings.METRICS_TOKEN else serve_environment

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method != "GET"
            or request.path_info != PATH
            or (request.META.get("QUERY_STRING") and _token_in_query(request))
        ):
            return self.get_response(request)
        return self.serve(request)


def _token_in_query(request: HttpRequest) -> bool:
    # Refused, counted, and a valid one revoked, by the DRF view: a rare path.
    return any(name in request.GET for name in QUERY_STRING_NAMES)


def _counted(
    serve: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """`serve` between django-prometheus's per-view middleware and orgenv's 304/429 counters,
    as the view behind the whole stack is (the URL's name labels its metrics)."""
    from django_prometheus.middleware import PrometheusAfterMiddleware

    from orgenv.operations.metrics import ApiStatusMiddleware

    match = resolve(PATH)

    def view(request: HttpRequest) -> HttpResponse:
        after.process_view(request, match.func, (), {})
        return serve(request)

    after = PrometheusAfterMiddleware(ApiStatusMiddleware(view))

    def counted(request: HttpRequest) -> HttpResponse:
        request.resolver_match = match
        return after(request)

    return counted
