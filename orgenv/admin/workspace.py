"""The organization workspace: tabs Environment Variables, Projects, People, Tokens, Change
requests, Audit, Webhooks.

Each tab is a page of the admin site (orgenv.admin.site) scoped to one organization: the
organization comes from the URL and orgenv.access decides, for every request, whether the
signed-in staff user administers it; anyone else gets 404, as on the member pages, so a page
never confirms that an organization the reader may not administer exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse

from orgenv import access
from orgenv.audit.views import timeline_context
from orgenv.models import (
    ChangeRequest,
    Organization,
    Project,
    ProjectToken,
    ProjectVariable,
    Variable,
    VariableGroup,
)
from orgenv.selectors import workspace as selectors

from .tokens import without_token_secret

TABS = (
    ("variables", "Environment Variables"),
    ("projects", "Projects"),
    ("people", "People"),
    ("tokens", "Tokens"),
    ("requests", "Change requests"),
    ("audit", "Audit"),
    ("webhooks", "Webhooks"),
)


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    url: str
    current: bool
    count: int | None = None  # shown beside the label (open change requests)


def workspace_organization(request: HttpRequest, org_slug: str) -> Organization:
    """The organization of a workspace URL, if the user administers it; 404 otherwise."""
    organization = Organization.objects.filter(slug=org_slug).first()
    if organization is None or not access.is_org_admin(request.user, organization):
        raise Http404("No such organization.")
    return organization


def people_url(organization: Organization) -> str:
    """The People tab: its own page once it exists, else the organization's memberships."""
    try:
        return reverse("admin:orgenv_people", kwargs={"org_slug": organization.slug})
    except NoReverseMatch:
        return reverse("admin:orgenv_organization_change", args=(organization.pk,))


def tabs(organization: Organization, current: str) -> list[Tab]:
    slug = organization.slug
    urls = {
        "variables": reverse("admin:orgenv_workspace", args=(slug,)),
        "projects": reverse("admin:orgenv_workspace_projects", args=(slug,)),
        "people": people_url(organization),
        "tokens": reverse("admin:orgenv_workspace_tokens", args=(slug,)),
        "requests": reverse("admin:orgenv_change_requests", args=(slug,)),
        "audit": reverse("admin:orgenv_workspace_audit", args=(slug,)),
        "webhooks": reverse("admin:orgenv_webhooks", args=(slug,)),
    }
    counts = {"requests": ChangeRequest.objects.filter(organization=organization).open().count()}
    return [Tab(key, label, urls[key], key == current, counts.get(key)) for key, label in TABS]


def audit_url(organization: Organization, obj: Model | None = None) -> str:
    """The workspace's Audit tab, filtered to what concerns `obj` (a group and its
    variables, a project and its variables and tokens)."""
    url = reverse("admin:orgenv_workspace_audit", args=(organization.slug,))
    if isinstance(obj, VariableGroup | Variable):
        name = obj.name if isinstance(obj, VariableGroup) else obj.group.name
        return f"{url}?{urlencode({'group': name})}"
    if isinstance(obj, Project):
        return f"{url}?{urlencode({'project': obj.slug})}"
    if isinstance(obj, ProjectVariable | ProjectToken):
        return f"{url}?{urlencode({'project': obj.project.slug})}"
    return url


def frame_context(request: HttpRequest, organization: Organization, current: str) -> dict:
    """What the workspace's frame (templates/admin/orgenv/workspace/frame.html) shows: the
    organization, its tabs, and the other organizations the user may switch to. Object
    pages of the admin (a group, a project, a token) show it too."""
    return {
        "organization": organization,
        "workspace_tabs": tabs(organization, current),
        "current_tab": current,
        "other_organizations": access.administered_organizations(request.user)
        .exclude(pk=organization.pk)
        .order_by("slug"),
    }


def workspace_context(
    request: HttpRequest, organization: Organization, current: str, title: str
) -> dict[str, Any]:
    """A workspace page's context: the admin's own, a title, and the frame."""
    return {
        **admin.site.each_context(request),
        "title": title,
        **frame_context(request, organization, current),
    }


def _render(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    request.current_app = admin.site.name
    return TemplateResponse(request, f"admin/orgenv/workspace/{template}", context, status=status)


def index(request: HttpRequest) -> HttpResponse:
    """The admin's front page. An admin of exactly one organization lands in its workspace;
    an admin of several (or a superuser) picks one here, above the admin's model index."""
    organizations = access.administered_organizations(request.user).order_by("slug")
    if not request.user.is_superuser and len(organizations) == 1:
        return redirect("admin:orgenv_workspace", organizations[0].slug)
    return admin.site.index(request, extra_context={"workspace_organizations": organizations})


def groups(request: HttpRequest, org_slug: str) -> HttpResponse:
    organization = workspace_organization(request, org_slug)
    context = workspace_context(request, organization, "variables", "Environment Variables")
    context["groups"] = selectors.group_summaries(organization)
    return _render(request, "groups.html", context)


def projects(request: HttpRequest, org_slug: str) -> HttpResponse:
    organization = workspace_organization(request, org_slug)
    context = workspace_context(request, organization, "projects", "Projects")
    context["projects"] = selectors.project_summaries(organization)
    return _render(request, "projects.html", context)


def compare(request: HttpRequest, org_slug: str) -> HttpResponse:
    organization = workspace_organization(request, org_slug)
    environment = request.GET.get("environment")
    comparison = selectors.compare_projects(organization, environment)
    if environment is not None and environment not in comparison.environments:
        environment, comparison = None, selectors.compare_projects(organization)
    context = workspace_context(request, organization, "projects", "Compare projects")
    context.update(comparison=comparison, environment=environment)
    return _render(request, "compare.html", context)


def tokens(request: HttpRequest, org_slug: str) -> HttpResponse:
    organization = workspace_organization(request, org_slug)
    cleaned = without_token_secret(request)
    if cleaned is not None:
        return redirect(cleaned)
    search = request.GET.get("q", "").strip()
    rows = [(token, token.status) for token in selectors.organization_tokens(organization, search)]
    context = workspace_context(request, organization, "tokens", "Tokens")
    context.update(rows=rows, search=search, searched=bool(search))
    return _render(request, "tokens.html", context)


def audit(request: HttpRequest, org_slug: str) -> HttpResponse:
    organization = workspace_organization(request, org_slug)
    timeline, status = timeline_context(request, organization)
    context = workspace_context(request, organization, "audit", "Audit")
    context.update(timeline)
    return _render(request, "audit.html", context, status=status)
