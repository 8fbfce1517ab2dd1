"""Member pages: thin and read-only (docs/access.md).

Who may read a project is orgenv.access's answer (projects_for, project_access); any other
project, of any organization, existing or not, answers 404, so a page never confirms that a
project the reader may not see exists. Secret values never reach these pages, not even for
organization admins: resolutions hold ciphertext, and only public values are revealed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LogoutView
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from orgenv.people.selectors import invitations_for
from orgenv.selectors.layers import ProjectLayers, load_layers, reveal_for_display
from orgenv.selectors.reach import environment_counts, why_name

from . import access
from .models import Organization, Project
from .resolution import PROJECT_SOURCE, Conflict, Definition, Resolved

GROUP_PREFIX = "group:"


@dataclass
class ProjectSummary:
    project: Project
    variables: int
    secrets: int


@dataclass
class OrganizationProjects:
    organization: Organization
    administered: bool
    projects: list[ProjectSummary]


@dataclass
class ShownDefinition:
    """A definition as the page shows it: the value is None when it is secret."""

    name: str
    source: str
    priority: int | None
    value: str | None
    is_secret: bool
    edit_url: str = ""


@dataclass
class VariableRow(ShownDefinition):
    shadowed: list[ShownDefinition] = field(default_factory=list)
    conflict: str = ""


@never_cache
@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = list(
        access.projects_for(request.user)
        .select_related("organization")
        .order_by("organization__slug", "slug")
    )
    admin_ids = access.admin_organization_ids(request.user)
    counts = environment_counts(projects)  # names and flags only, nothing decrypted
    organizations = [
        OrganizationProjects(
            organization,
            organization.pk in admin_ids,
            [ProjectSummary(p, *counts[p.pk]) for p in items],
        )
        for organization, items in groupby(projects, key=lambda p: p.organization)
    ]
    invitations = list(invitations_for(request.user))
    context = {"organizations": organizations, "invitations": invitations}
    return render(request, "orgenv/home.html", context)


@never_cache
@login_required
def environment(request: HttpRequest, org: str, project: str) -> HttpResponse:
    found = access.project_access(request.user, organization=org, project=project)
    if found is None:
        raise Http404("No such project among yours.")
    project_obj, is_admin = found.project, found.administers
    layers = load_layers(project_obj)
    context = {
        "project": project_obj,
        "is_admin": is_admin,
        "rows": environment_rows(layers, admin_links=is_admin),
        "skipped_groups": [
            g for g in layers.groups if g.reach.skipped_because.startswith("environment guard")
        ]
        if is_admin
        else [],
        "project_edit_url": _admin_url("project", project_obj.pk) if is_admin else "",
    }
    asked = request.GET.get("why", "").strip()
    if asked:
        why = why_name(project_obj, asked[:255])
        context.update(
            why=why,
            why_asked=asked[:255],
            why_causes=[c.shown(admin=is_admin) for c in why.causes],
            why_steps=why.steps_for(admin=is_admin),
        )
    return render(request, "orgenv/environment.html", context)


def environment_rows(layers: ProjectLayers, *, admin_links: bool) -> list[VariableRow]:
    """The rows of the environment page: public values decrypted, secret values left out."""
    group_ids = {g.name: g.id for g in layers.groups}
    priorities = {g.name: g.priority for g in layers.groups}
    conflicts = {c.name: c for c in layers.resolution.conflicts}

    def shown(item: Resolved | Definition) -> dict[str, object]:
        group = item.source.removeprefix(GROUP_PREFIX) if item.source != PROJECT_SOURCE else ""
        if not admin_links:
            url = ""
        elif group:
            url = _admin_url("variablegroup", group_ids[group])
        else:
            url = _admin_url("project", layers.project.pk)
        return {
            "name": item.name,
            "source": group or PROJECT_SOURCE,
            "priority": priorities.get(group) if group else None,
            "value": None if item.is_secret else reveal_for_display(item),
            "is_secret": item.is_secret,
            "edit_url": url,
        }

    rows = []
    for resolved in layers.resolution.variables.values():
        conflict = conflicts.get(resolved.name)
        rows.append(
            VariableRow(
                **shown(resolved),
                shadowed=[ShownDefinition(**shown(d)) for d in resolved.shadowed],
                conflict=conflict_sentence(conflict, priorities) if conflict else "",
            )
        )
    return rows


def conflict_sentence(conflict: Conflict, priorities: dict[str, int]) -> str:
    """'X is defined by groups a and b at the same priority 0; a wins because its name sorts
    first.'"""
    winner = conflict.winner.removeprefix(GROUP_PREFIX)
    names = [winner, *(s.removeprefix(GROUP_PREFIX) for s in conflict.shadowed)]
    listed = ", ".join(names[:-1]) + " and " + names[-1]
    return (
        f"{conflict.name} is defined by groups {listed} at the same priority "
        f"{priorities.get(winner, 0)}; {winner} wins because its name sorts first."
    )


def _admin_url(model: str, pk: int) -> str:
    # Built from the admin's root rather than reversed by name, so the link does not depend
    # on how the admin registers the model.
    return f"{reverse('admin:index')}orgenv/{model}/{pk}/change/"


@never_cache
def sign_out(request: HttpRequest) -> HttpResponse:
    """A GET (a bookmark, a typed URL) asks for confirmation: signing out on a GET would let
    any page sign a user out. The POST is Django's LogoutView."""
    if request.method != "POST":
        return render(request, "registration/sign_out.html")
    response = LogoutView.as_view()(request)
    messages.info(request, "You have signed out.")
    return response
