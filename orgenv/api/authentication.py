"""Runner authentication: `Authorization: Bearer <project token>` and nothing else.

A token in the query string is refused (it would end up in proxy and server logs). Every
rejected token is written down as a RESOLUTION_DENIED audit event and counted against the
client address (orgenv.api.throttling.AuthFailureThrottle).
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, transaction
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
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
    request: Request, reason: str, *, prefix: str = "", token: ProjectToken | None = None
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


class ProjectTokenAuthentication(BaseAuthentication):
    """Authenticates a runner: request.auth is the ProjectToken, request.user anonymous."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ProjectToken] | None:
        in_query = any(name in request.query_params for name in QUERY_STRING_NAMES)
        header = get_authorization_header(request)
        if not header and not in_query:
            return None  # 401 with WWW-Authenticate, not counted as a failure
        failures = AuthFailureThrottle()
        wait = failures.blocked(request)
        if wait is not None:
            raise exceptions.Throttled(wait)
        if in_query:
            self._fail(request, failures, "query_string")
            if self._revoke_exposed(request):
                raise TokenInQueryString(EXPOSED_DETAIL)
            raise TokenInQueryString()

        scheme, _, raw = header.partition(b" ")
        raw = raw.strip()
        if scheme.lower() != b"bearer" or not raw:
            self._fail(request, failures, TokenRejected.MALFORMED)
            raise exceptions.AuthenticationFailed(
                "Use 'Authorization: Bearer <token>' with a project token."
            )
        try:
            token = token_authenticate(raw.decode("ascii"))
        except UnicodeDecodeError:
            self._fail(request, failures, TokenRejected.MALFORMED)
            raise exceptions.AuthenticationFailed(MESSAGES[TokenRejected.MALFORMED]) from None
        except TokenRejected as rejected:
            self._fail(request, failures, rejected.reason, rejected.prefix, rejected.token)
            raise exceptions.AuthenticationFailed(MESSAGES[rejected.reason]) from None
        return AnonymousUser(), token

    def _revoke_exposed(self, request: Request) -> bool:
        """A valid token sent in a URL is already in somebody's logs: revoke it now, as a
        leaked credential, rather than wait for someone to find it there."""
        exposed = False
        for name in QUERY_STRING_NAMES:
            try:
                token = token_authenticate(request.query_params.get(name, ""))
            except TokenRejected:
                continue
            with acting_as(f"token:{token.prefix}"):
                token_revoke(token=token)
            exposed = True
        return exposed

    def _fail(self, request, failures, reason, prefix="", token=None) -> None:  # type: ignore[no-untyped-def]
        wait = failures.fail(request)
        record_denied(request, reason, prefix=prefix, token=token)
        if wait is not None:  # one failure too many: the answer is 429, not why it failed
            raise exceptions.Throttled(wait)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="orgenv"'


class HasProjectToken(BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.auth, ProjectToken)


class ProjectTokenScheme(OpenApiAuthenticationExtension):
    """Documents the bearer scheme in the OpenAPI schema."""

    target_class = ProjectTokenAuthentication
    name = "projectToken"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        scheme = build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix="Bearer"
        )
        scheme["description"] = "A project token, `oev_<key>.<secret>`, from issue_token."
        return scheme
