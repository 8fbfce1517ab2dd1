"""Runner authentication: `Authorization: Bearer <project token>` and nothing else.

A token in the query string is refused (it would end up in proxy and server logs). Every
rejected token is written down as a RESOLUTION_DENIED audit event and counted against the
client address (orgenv.api.throttling.AuthFailureThrottle).
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, transaction
from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import HTTP_HEADER_ENCODING, exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from orgenv.audit import events as audit

from ..actors import acting_as
from ..models import AuditEvent, ProjectToken
from ..tokens import TokenRejected, token_authenticate, token_revoke
from .throttling import AuthFailureThrottle

logger = logging.getLogger(__name__)

QUERY_STRING_NAMES = ("token", "access_token")

MESSAGES = {
    TokenRejected.MALFORMED: "Invalid token: send 'Authorization: Bearer oev_<key>.<secret>'.",
    TokenRejected.UNKNOWN: "Invalid token.",
    TokenRejected.EXPIRED: "This token has expired: ask an organization admin for a new one.",
    TokenRejected.REVOKED: "This token has been revoked: ask an organization admin for a new one.",
}


class TokenInQueryString(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = (
        "Send the token in the Authorization header ('Authorization: Bearer <token>'), never "
        "in the URL: URLs end up in logs."
    )
    default_code = "token_in_query_string"


EXPOSED_DETAIL = (
    "This token was sent in the URL, where logs keep it, so it has been revoked: issue a new "
    "one and send it in the Authorization header ('Authorization: Bearer <token>')."
)


def record_denied(
    request: HttpRequest | Request,
    reason: str,
    *,
    prefix: str = "",
    token: ProjectToken | None = None,
) -> None:
    """One RESOLUTION_DENIED event: prefix when parseable, reason, address, user agent."""
    try:
        with transaction.atomic():
            audit.record(
                AuditEvent.Kind.RESOLUTION_DENIED,
                actor=f"token:{prefix}" if prefix else "anonymous",
                token=token,
                token_prefix=prefix,
                request=request,  # address and user agent
                detail={"reason": reason},
            )
    except DatabaseError:
        # The caller is refused either way; a 500 instead of the 401 would only hide why.
        logger.exception("Could not record a rejected token (%s, %s)", prefix or "-", reason)


def authenticate_header() -> str:
    return 'Bearer realm="orgenv"'


def authenticate_runner(request: HttpRequest | Request) -> ProjectToken | None:
    """The runner's token, None when none was sent (a 401 that is not counted as a failure),
    or an APIException: 400 for a token in the query string (a valid one is revoked), 401
    saying why a token was rejected (recorded as RESOLUTION_DENIED and counted against the
    client address), 429 for an address over its failures (AuthFailureThrottle). The DRF
    authenticator and the runner endpoint's lean view (orgenv.api.runner) share it."""
    in_query = any(name in request.GET for name in QUERY_STRING_NAMES)
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header and not in_query:
        return None  # 401 with WWW-Authenticate, not counted as a failure
    failures = AuthFailureThrottle()
    wait = failures.blocked(request)
    if wait is not None:
        raise exceptions.Throttled(wait)
    if in_query:
        _fail(request, failures, "query_string")
        if _revoke_exposed(request):
            raise TokenInQueryString(EXPOSED_DETAIL)
        raise TokenInQueryString()

    # As DRF's get_authorization_header reads it: the header's bytes (latin-1).
    header_bytes = header.encode(HTTP_HEADER_ENCODING) if isinstance(header, str) else header
    scheme, _, raw = header_bytes.partition(b" ")
    raw = raw.strip()
    if scheme.lower() != b"bearer" or not raw:
        _fail(request, failures, TokenRejected.MALFORMED)
        raise exceptions.AuthenticationFailed(
            "Use 'Authorization: Bearer <token>' with a project token."
        )
    try:
        return token_authenticate(raw.decode("ascii"))
    except UnicodeDecodeError:
        _fail(request, failures, TokenRejected.MALFORMED)
        raise exceptions.AuthenticationFailed(MESSAGES[TokenRejected.MALFORMED]) from None
    except TokenRejected as rejected:
        _fail(request, failures, rejected.reason, rejected.prefix, rejected.token)
        raise exceptions.AuthenticationFailed(MESSAGES[rejected.reason]) from None


def _revoke_exposed(request: HttpRequest | Request) -> bool:
    """A valid token sent in a URL is already in somebody's logs: revoke it now, as a
    leaked credential, rather than wait for someone to find it there."""
    exposed = False
    for name in QUERY_STRING_NAMES:
        try:
            token = token_authenticate(request.GET.get(name, ""))
        except TokenRejected:
            continue
        with acting_as(f"token:{token.prefix}"):
            token_revoke(token=token)
        exposed = True
    return exposed


def _fail(
    request: HttpRequest | Request,
    failures: AuthFailureThrottle,
    reason: str,
    prefix: str = "",
    token: ProjectToken | None = None,
) -> None:
    wait = failures.fail(request)
    record_denied(request, reason, prefix=prefix, token=token)
    if wait is not None:  # one failure too many: the answer is 429, not why it failed
        raise exceptions.Throttled(wait)


class ProjectTokenAuthentication(BaseAuthentication):
    """Authenticates a runner: request.auth is the ProjectToken, request.user anonymous."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ProjectToken] | None:
        token = authenticate_runner(request)
        return None if token is None else (AnonymousUser(), token)

    def authenticate_header(self, request: Request) -> str:
        return authenticate_header()


class HasProjectToken(BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.auth, ProjectToken)


class ProjectTokenScheme(OpenApiAuthenticationExtension):
    """Documents the bearer scheme in the OpenAPI schema."""

    target_class = ProjectTokenAuthentication
    name = "projectToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        scheme = build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix="Bearer"
        )
        scheme["description"] = "A project token, `oev_<key>.<secret>`, from issue_token."
        return scheme
