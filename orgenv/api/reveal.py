"""Reveal: one secret value, to one organization admin, for a stated reason, recorded.

This is the only way a secret value reaches a browser (SPEC "Secret exposure"). The caller
must administer the project's organization (orgenv.access.project_access), have entered their
password -- and their second-factor code, when they have a device -- within
REVEAL_REAUTH_SECONDS (orgenv.accounts.freshness), and give a reason. The event is committed
before the value leaves: no record, no value.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, transaction
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from orgenv import access
from orgenv.accounts.freshness import is_fresh
from orgenv.audit import events as audit
from orgenv.crypto import DecryptionError
from orgenv.models import AuditEvent
from orgenv.notifications import emit
from orgenv.selectors.layers import load_layers, reveal

from .serializers import (
    DetailSerializer,
    ReauthSerializer,
    RevealRequestSerializer,
    RevealSerializer,
)
from .throttling import RevealRateThrottle
from .views import ERRORS, OrgenvAPIView, ResolutionFailed

logger = logging.getLogger(__name__)

REASON_MAX = 500


class RevealView(OrgenvAPIView):
    # DRF's session authentication enforces CSRF on this POST.
    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [RevealRateThrottle]
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    content_negotiation_class = DefaultContentNegotiation  # this one reads a JSON body

    @extend_schema(
        operation_id="reveal_secret",
        summary="Reveal one variable's effective value (organization admins, audited)",
        request=RevealRequestSerializer,
        responses={
            200: RevealSerializer,
            400: OpenApiResponse(DetailSerializer, "The reason is missing or empty."),
            403: OpenApiResponse(
                ReauthSerializer,
                "Not an admin of the organization, or the password (and code) must be "
                "entered again at reauth_url.",
            ),
            404: OpenApiResponse(
                DetailSerializer, "No such project among yours, or NAME does not reach it."
            ),
            429: ERRORS[(429, "application/json")],
            500: ERRORS[(500, "application/json")],
        },
    )
    def post(self, request: Request, org: str, project: str, name: str) -> Response:
        found = access.project_access(request.user, organization=org, project=project)
        if found is None:
            raise NotFound("No such project among yours.")
        project_obj = found.project
        if not found.administers:
            raise PermissionDenied(f"Only an admin of {org} may reveal a value of its projects.")
        reason = request.data.get("reason") if hasattr(request.data, "get") else None
        if not isinstance(reason, str) or not reason.strip():
            return Response(
                {
                    "detail": "reason: say why you need to see this value; it is recorded in "
                    "the audit log.",
                    "reason": ["This field is required."],
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        if len(reason) > REASON_MAX:
            return Response(
                {
                    "detail": f"reason: at most {REASON_MAX} characters.",
                    "reason": [f"Ensure this field has no more than {REASON_MAX} characters."],
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        if not is_fresh(request):
            return Response(
                {
                    "detail": "Confirm your password (and your authentication code, if you "
                    "use one) to reveal a value, then try again.",
                    "reauth_url": reverse("reauth"),
                },
                status=status.HTTP_403_FORBIDDEN,
            )
        try:
            layers = load_layers(project_obj)
            resolved = layers.resolution.variables.get(name)
            if resolved is None:
                raise NotFound(f"No variable named {name} reaches {org}/{project}.")
            value = reveal(resolved)
            with transaction.atomic():
                event = audit.record(
                    AuditEvent.Kind.SECRET_REVEALED,
                    actor=request.user.get_username(),
                    user=request.user,
                    project=project_obj,
                    organization=project_obj.organization,
                    variables={name: resolved.source},
                    request=request,
                    detail={
                        "name": name,
                        "source": resolved.source,
                        "secret": resolved.is_secret,
                        "reason": reason.strip(),
                    },
                )
                emit.secret_revealed(
                    project=project_obj,
                    name=name,
                    source=resolved.source,
                    actor=request.user,
                    audit_event=event.pk,
                )
        except (DatabaseError, DecryptionError):
            logger.exception("Reveal of %s in %s failed", name, project_obj)
            raise ResolutionFailed() from None
        return Response(
            {"name": name, "value": value, "source": resolved.source, "event": event.pk}
        )
