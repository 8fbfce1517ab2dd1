"""The two environment endpoints: the runner's (project token) and the members' (session).

Both resolve through orgenv.selectors.layers.load_layers (two queries, values still encrypted),
decrypt the winners, then write one RESOLUTION audit event, and only once it is committed
build the answer: if the event cannot be written, the caller gets a 500 without secrets.

The reads are deliberately outside that transaction. On SQLite a transaction that reads and
then writes must hold the write lock from its start (or risk SQLITE_BUSY on the upgrade), so
wrapping the whole resolution serialised every worker behind the slowest project
(bench/resolve.py measured big/floor 0.53); on PostgreSQL, READ COMMITTED gives each
statement its own snapshot anyway, so the wider transaction bought no consistency.
"""

from __future__ import annotations

import hashlib
import logging

from django.db import DatabaseError, transaction
from django.http import Http404, HttpResponseNotModified
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orgenv.audit import events as audit
from orgenv.forensics.manifests import manifest_id
from orgenv.selectors.layers import ProjectLayers, load_layers, reveal

from ..access import project_access
from ..crypto import DecryptionError
from ..formats import FORMATS, environment_payload
from ..models import AuditEvent, ProjectToken
from .authentication import HasProjectToken, ProjectTokenAuthentication
from .renderers import RUNNER_RENDERERS, FormatParameter
from .serializers import DetailSerializer, EnvironmentSerializer
from .throttling import MemberRateThrottle, TokenRateThrottle

logger = logging.getLogger(__name__)

RESOLUTION_HEADER = "X-Orgenv-Resolution"


class ResolutionFailed(exceptions.APIException):
    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    default_detail = (
        "The environment could not be resolved and recorded, so none is served; try again "
        "or ask an administrator to check the server log."
    )
    default_code = "resolution_failed"


class OrgenvAPIView(APIView):
    content_negotiation_class = FormatParameter

    def finalize_response(self, request, response, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Errors are JSON whatever format was asked for: runners parse `detail`.
        if isinstance(response, Response) and response.status_code >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response


def environment_etag(layers: ProjectLayers, fmt: str) -> str:
    """From the fingerprint of the stored rows (no decryption), plus what else the body
    shows: the slugs and the format. Weak, because the body carries a fresh resolution_id
    each time: only its meaning repeats."""
    project = layers.project
    seed = f"{layers.fingerprint}|{project.organization.slug}/{project.slug}|{fmt}"
    return f'W/"{hashlib.sha256(seed.encode()).hexdigest()[:40]}"'


def etag_matches(request: Request, etag: str) -> bool:
    header = request.META.get("HTTP_IF_NONE_MATCH", "")
    if not header:
        return False
    opaque = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == opaque:
            return True
    return False


def record_resolution(
    request: Request,
    layers: ProjectLayers,
    *,
    actor: str,
    token: ProjectToken | None = None,
    **detail: object,
) -> AuditEvent:
    """The access event of one resolution: its manifest (names, sources, versions), never a
    value."""
    project = layers.project
    with transaction.atomic():  # committed, or rolled back alone, before any answer
        return audit.record(
            AuditEvent.Kind.RESOLUTION,
            actor=actor,
            user=request.user if request.user and request.user.is_authenticated else None,
            token=token,
            token_prefix=token.prefix if token else "",
            token_name=token.name if token else "",
            project=project,
            organization=project.organization,
            manifest_id=manifest_id(layers),
            request=request,  # address and user agent
            detail=detail,
        )


def answer(
    layers: ProjectLayers, values: dict[str, str | None], event: AuditEvent, **headers: str
) -> Response:
    """The environment as the API shapes it, traced to its access event."""
    project = layers.project
    payload = environment_payload(
        organization=project.organization.slug,
        project=project.slug,
        resolution=layers.resolution,
        values=values,
    )
    payload["resolution_id"] = event.pk
    return Response(payload, headers={**headers, RESOLUTION_HEADER: str(event.pk)})


FORMAT_PARAMETER = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    enum=list(FORMATS),
    default="json",
    description='json (default); dotenv: NAME="value" lines, double-quoted with backslash '
    "escapes; shell: export NAME='value' lines for POSIX sh.",
)
# Errors are JSON whatever the format (OrgenvAPIView.finalize_response).
ERRORS = {
    (400, "application/json"): OpenApiResponse(
        DetailSerializer, "Unknown format, or a token in the query string."
    ),
    (401, "application/json"): OpenApiResponse(
        DetailSerializer, "Missing, invalid, expired or revoked token."
    ),
    (429, "application/json"): OpenApiResponse(
        DetailSerializer, "Too many requests; see Retry-After."
    ),
    (500, "application/json"): OpenApiResponse(
        DetailSerializer, "The access event could not be written."
    ),
}


class RunnerEnvironmentView(OrgenvAPIView):
    """The resolved environment of the project the token belongs to, secrets included."""

    authentication_classes = [ProjectTokenAuthentication]
    permission_classes = [HasProjectToken]
    throttle_classes = [TokenRateThrottle]
    renderer_classes = RUNNER_RENDERERS

    @extend_schema(
        operation_id="runner_environment",
        summary="The environment of the token's project",
        parameters=[FORMAT_PARAMETER],
        responses={
            (200, "application/json"): OpenApiResponse(
                EnvironmentSerializer, "The resolved environment (format=json, the default)."
            ),
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.STR, "format=dotenv or format=shell: one variable per line."
            ),
            304: OpenApiResponse(description="If-None-Match matched the ETag: unchanged."),
            **ERRORS,
        },
    )
    def get(self, request: Request) -> Response | HttpResponseNotModified:
        token: ProjectToken = request.auth
        project = token.project
        fmt = request.accepted_renderer.format
        actor = f"token:{token.prefix}"
        try:
            layers = load_layers(project)
            etag = environment_etag(layers, fmt)
            if etag_matches(request, etag):
                # Every fetch is traced, an unchanged one too; it costs no decryption.
                event = record_resolution(
                    request, layers, actor=actor, token=token, format=fmt, not_modified=True
                )
                response = HttpResponseNotModified()
                response["ETag"] = etag
                response[RESOLUTION_HEADER] = str(event.pk)
                return response
            values = {n: reveal(r) for n, r in layers.resolution.variables.items()}
            event = record_resolution(request, layers, actor=actor, token=token, format=fmt)
        except (DatabaseError, DecryptionError):
            logger.exception("Resolution of %s for token %s failed", project, token.prefix)
            raise ResolutionFailed() from None
        return answer(layers, values, event, ETag=etag)


class MemberEnvironmentView(OrgenvAPIView):
    """The environment of one project for a signed-in member; secret values are null unless
    the caller administers the organization."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [MemberRateThrottle]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="member_project_environment",
        summary="A project's environment, for signed-in members (session)",
        responses={
            200: EnvironmentSerializer,
            403: OpenApiResponse(DetailSerializer, "Not signed in."),
            404: OpenApiResponse(DetailSerializer, "No such project among yours."),
            500: ERRORS[(500, "application/json")],
        },
    )
    def get(self, request: Request, org: str, project: str) -> Response:
        found = project_access(request.user, organization=org, project=project)
        if found is None:
            raise Http404("No such project among yours.")
        project, show_secrets = found.project, found.administers
        try:
            layers = load_layers(project)
            values = {
                name: reveal(r) if show_secrets or not r.is_secret else None
                for name, r in layers.resolution.variables.items()
            }
            event = record_resolution(
                request, layers, actor=request.user.get_username(), secrets_shown=show_secrets
            )
        except (DatabaseError, DecryptionError):
            logger.exception("Resolution of %s for %s failed", project, request.user)
            raise ResolutionFailed() from None
        return answer(layers, values, event)
