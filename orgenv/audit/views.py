"""The audit pages of an organization, for its admins: the timeline (HTML and CSV) and the
grants view. Anyone else gets 404, as on the member pages: a page never confirms that an
organization the reader may not administer exists."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from orgenv import access
from orgenv.audit import timeline
from orgenv.forensics.exposure import Exposure, exposure, find_target
from orgenv.formats import spreadsheet_safe
from orgenv.models import Organization
from orgenv.selectors.as_of import AsOfError, parse_when
from orgenv.selectors.reach import grant_matrix

PAGE_SIZE = 50
CSV_COLUMNS = ("at", "kind", "actor", "what", "changes", "project", "group", "address")


def organization_for_admin(request: HttpRequest, slug: str) -> Organization:
    org = Organization.objects.filter(slug=slug).first()
    if org is None or not access.is_org_admin(request.user, org):
        raise Http404("No such organization.")
    return org


_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
_LAST_DAY = _END_OF_TIME.replace(hour=0, minute=0, second=0, microsecond=0)


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=200)
    kind = forms.ChoiceField(required=False)
    project = forms.CharField(required=False, max_length=64)
    group = forms.CharField(required=False, max_length=100)
    # A date picker; the query string also takes an ISO 8601 time (2026-01-31T14:05Z).
    since = forms.CharField(
        required=False, label="From (UTC)", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.CharField(
        required=False, label="To (UTC)", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", "any kind"), *timeline.kind_choices()]

    def _when(self, name: str, end_of_day: bool) -> object:
        text = self.cleaned_data.get(name, "").strip()
        if not text:
            return None
        try:
            value = parse_when(text)
        except AsOfError:
            raise forms.ValidationError(
                f"{self.fields[name].label}: {text!r} is not an ISO 8601 date or time "
                "between the years 1 and 9999 (for example 2026-01-31 or 2026-01-31T14:05Z)."
            ) from None
        if end_of_day and len(text) == 10 and value.time() == time.min:
            # A whole day, inclusive (9999-12-31 has no next day to stop before).
            last = value >= _LAST_DAY
            value = _END_OF_TIME if last else value + timedelta(days=1, microseconds=-1)
        return value

    def clean_since(self) -> object:
        return self._when("since", end_of_day=False)

    def clean_until(self) -> object:
        return self._when("until", end_of_day=True)

    def filters(self) -> timeline.Filters:
        data = self.cleaned_data
        return timeline.Filters(
            actor=data["actor"].strip(),
            kind=data["kind"],
            project=data["project"].strip(),
            group=data["group"].strip(),
            since=data["since"],
            until=data["until"],
        )


def timeline_context(request: HttpRequest, organization: Organization) -> tuple[dict, int]:
    """The context of one page of the audit log (filters from the query string) and its
    status: 400 when a filter is invalid. Shared by this page and the admin's Audit tab."""
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return {"organization": organization, "form": form}, 400
    filters = form.filters() if form.is_bound else timeline.Filters()
    index = timeline.Index.of(organization)  # names of past and present objects, asked once
    total = timeline.count(organization, filters, index)
    pages = max(1, -(-total // PAGE_SIZE))
    try:
        number = min(max(int(request.GET.get("page", "1")), 1), pages)
    except ValueError:
        number = 1
    query = urlencode({k: v for k, v in request.GET.items() if k not in ("page", "format") and v})
    context = {
        "organization": organization,
        "form": form,
        "show": True,
        "entries": timeline.page(organization, filters, number - 1, PAGE_SIZE, index),
        "total": total,
        "number": number,
        "pages": pages,
        "query": query,
    }
    return context, 200


@never_cache
@login_required
def audit_log(request: HttpRequest, org: str) -> HttpResponse:
    organization = organization_for_admin(request, org)
    if request.GET.get("format") == "csv":
        form = AuditFilterForm(request.GET)
        if form.is_valid():
            return _csv(organization, form.filters())
    context, status = timeline_context(request, organization)
    return render(request, "audit/log.html", context, status=status)


@never_cache
@login_required
def audit_csv(request: HttpRequest, org: str) -> HttpResponse:
    organization = organization_for_admin(request, org)
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        errors = " ".join(e for errs in form.errors.values() for e in errs)
        return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
    return _csv(organization, form.filters() if form.is_bound else timeline.Filters())


class _Echo:
    def write(self, value: str) -> str:
        return value


def _rows(organization: Organization, filters: timeline.Filters) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for e in timeline.all_entries(organization, filters):
        yield writer.writerow(
            [
                e.at.isoformat(),
                spreadsheet_safe(e.kind),
                spreadsheet_safe(e.actor),
                spreadsheet_safe(e.what),
                spreadsheet_safe("; ".join(e.changes)),
                spreadsheet_safe(e.project),
                spreadsheet_safe(e.group),
                e.address,
            ]
        )


def _csv(organization: Organization, filters: timeline.Filters) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(
        _rows(organization, filters), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{organization.slug}-{stamp}.csv"'
    )
    return response


class ExposureForm(forms.Form):
    """Who received NAME: from a project (whatever the source) or from a group."""

    target = forms.ChoiceField(label="Project or group")
    name = forms.CharField(label="Variable", max_length=255)
    since = forms.CharField(required=False, label="From", help_text="ISO 8601 date or time, UTC")

    def __init__(self, organization: Organization, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        projects = organization.projects.order_by("slug").values_list("slug", flat=True)
        groups = organization.groups.order_by("name").values_list("name", flat=True)
        self.fields["target"].choices = [
            ("Projects", [(f"project:{slug}", slug) for slug in projects]),
            ("Groups", [(f"group:{name}", name) for name in groups]),
        ]

    def clean_since(self) -> object:
        text = self.cleaned_data.get("since", "").strip()
        if not text:
            return None
        try:
            return parse_when(text)
        except AsOfError:
            raise forms.ValidationError(
                f"From: {text!r} is not an ISO 8601 date or time (for example 2026-01-31)."
            ) from None

    def exposure(self) -> Exposure:
        project, group = find_target(self.organization, self.cleaned_data["target"])
        return exposure(
            self.organization,
            self.cleaned_data["name"].strip(),
            project=project,
            group=group,
            since=self.cleaned_data["since"],
        )


@never_cache
@login_required
def exposure_view(request: HttpRequest, org: str) -> HttpResponse:
    """ "Who received this": every resolution that delivered a variable, and a summary."""
    organization = organization_for_admin(request, org)
    form = ExposureForm(organization, request.GET or None)
    result = form.exposure() if form.is_bound and form.is_valid() else None
    status = 400 if form.is_bound and not form.is_valid() else 200
    context = {"organization": organization, "form": form, "result": result}
    return render(request, "audit/exposure.html", context, status=status)


@never_cache
@login_required
def grants(request: HttpRequest, org: str) -> HttpResponse:
    organization = organization_for_admin(request, org)
    return render(
        request,
        "audit/grants.html",
        {"organization": organization, "matrix": grant_matrix(organization)},
    )
