"""The two environment endpoints: the runner's (project token) and the members' (session).

Both load the layers (orgenv.selectors.layers, two queries, values still encrypted) and
deliver them through orgenv.audit.resolutions: if the access event cannot be written, the
caller gets a 500 without secrets.

The reads are deliberately outside that transaction. On SQLite a transaction that reads and
then writes must hold the write lock from its start (or risk SQLITE_BUSY on the upgrade), so
wrapping the whole resolution serialised every worker behind the slowest project
(bench/resolve.py measured big/floor 0.53); on PostgreSQL, READ COMMITTED gives each
statement its own snapshot anyway, so the wider transaction bought no consistency.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.views.defaults import page_not_found
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orgenv.audit.resolutions import Delivery, resolution_deliver
from orgenv.selectors.layers import cached_layers
from orgenv.selectors.reach import why_name

from ..access import project_access
from ..crypto import DecryptionError
from ..formats import FORMATS
from .authentication import HasProjectToken, ProjectTokenAuthentication
from .renderers import RUNNER_RENDERERS, FormatParameter
from .runner import RESOLUTION_HEADER, ResolutionFailed, environment_response
from .serializers import DetailSerializer, EnvironmentSerializer
from .throttling import MemberRateThrottle, TokenRateThrottle
from .unavailable import is_unreachable

logger = logging.getLogger(__name__)


class OrgenvAPIView(APIView):
    content_negotiation_class = FormatParameter

    def finalize_response(
        self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        # Errors are JSON whatever format was asked for: runners parse `detail`. So is the
        # description OPTIONS answers (the text formats render environments only).
        if isinstance(response, Response) and (
            response.status_code >= 400 or request.method == "OPTIONS"
        ):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response


def answer(delivery: Delivery, **headers: str) -> Response:
    """The payload, traced to its access event in the body and a header."""
    event_id = str(delivery.event.pk)
    body = {**delivery.payload, "resolution_id": delivery.event.pk}
    return Response(body, headers={**headers, RESOLUTION_HEADER: event_id})


FORMAT_PARAMETER = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    enum=list(FORMATS),
    default="json",
    description="json (default); dotenv: NAME='value' lines (double-quoted with backslash "
    "escapes when single quotes cannot hold the value); shell: export NAME='value' lines "
    "for POSIX sh.",
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
    (503, "application/json"): OpenApiResponse(
        DetailSerializer, "The database or the cache cannot be reached; see Retry-After."
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
    def get(self, request: Request) -> HttpResponse:
        # GET reaches this view only with a token in the query string (refused before
        # this); HEAD always: orgenv.api.runner serves GET ahead of the middleware stack.
        return environment_response(request, request.auth, request.accepted_renderer.format)


class MemberEnvironmentView(OrgenvAPIView):
    """The environment of one project for a signed-in user; every secret value is null, for
    every user, admins and superusers included: secrets leave a session only one at a time,
    through the audited reveal (orgenv.api.reveal)."""

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
            503: ERRORS[(503, "application/json")],
        },
    )
    def get(self, request: Request, org: str, project: str) -> Response:
        found = project_access(request.user, organization=org, project=project)
        if found is None:
            raise Http404("No such project among yours.")
        project = found.project
        try:
            delivery = resolution_deliver(
                layers=cached_layers(project),
                secrets=False,  # never in bulk through a session: see orgenv.api.reveal
                actor=request.user.get_username(),
                user=request.user,
                request=request,
                detail={},
            )
        except (DatabaseError, DecryptionError) as exc:
            if is_unreachable(exc):
                raise  # 503, try again (orgenv.api.unavailable)
            logger.exception("Resolution of %s for %s failed", project, request.user)
            raise ResolutionFailed() from None
        return answer(delivery)


class MemberWhyView(OrgenvAPIView):
    """Why NAME reaches one project of the signed-in member, or why not, and what an admin
    would do. Names and rules only: never a value, for anyone."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [MemberRateThrottle]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="member_project_why",
        summary="Why NAME reaches a project or not (session; never a value)",
        responses={
            200: OpenApiTypes.OBJECT,
            403: OpenApiResponse(DetailSerializer, "Not signed in."),
            404: OpenApiResponse(DetailSerializer, "No such project among yours."),
        },
    )
    def get(self, request: Request, org: str, project: str, name: str) -> Response:
        found = project_access(request.user, organization=org, project=project)
        if found is None:
            raise Http404("No such project among yours.")
        why = why_name(found.project, name)
        return Response(why.as_dict(admin=found.administers))


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: under /api/ a URL that matches no route (a project slug that is no slug)
    gets the API's JSON 404, as documented, not the HTML page."""
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": "Not found."}, status=404)
        response["Cache-Control"] = "no-store"
        return response
    return page_not_found(request, exception)
