"""The hygiene page of an organization, for its admins (404 for anyone else, like the audit
pages)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from orgenv.audit.views import organization_for_admin

from .public_values import organization_findings
from .report import EXPIRING_DAYS, UNUSED_DAYS, report


@never_cache
@login_required
def hygiene(request: HttpRequest, org: str) -> HttpResponse:
    organization = organization_for_admin(request, org)
    context = {
        "organization": organization,
        "report": report(organization, now=timezone.now()),
        "findings": organization_findings([organization]),
        "unused_days": UNUSED_DAYS,
        "expiring_days": EXPIRING_DAYS,
    }
    return render(request, "hygiene/report.html", context)
