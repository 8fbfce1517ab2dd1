"""The admin's URLs: the organization workspace first, then Django's admin.

The workspace pages are pages of the admin site (same layout, same sign-in, names in the
`admin` namespace, e.g. `admin:orgenv_workspace`), wrapped by `admin.site.admin_view`: only
active staff users reach them, and each view checks the organization with orgenv.access.
Add a workspace page to WORKSPACE_PATTERNS; config/urls.py mounts `urls()` at /admin/.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from orgenv.people.views import people

from . import reviewing, webhooks, workspace


def _view(view: object) -> object:
    return admin.site.admin_view(view)


WORKSPACE_PATTERNS = [
    # The admin's front page: an admin of one organization lands straight in it.
    path("", _view(workspace.index), name="index"),
    path("orgs/<slug:org_slug>/", _view(workspace.groups), name="orgenv_workspace"),
    path(
        "orgs/<slug:org_slug>/projects/",
        _view(workspace.projects),
        name="orgenv_workspace_projects",
    ),
    path(
        "orgs/<slug:org_slug>/compare/",
        _view(workspace.compare),
        name="orgenv_workspace_compare",
    ),
    # The People tab (orgenv.people): the view answers 404 to anyone who does not
    # administer that organization (orgenv.access).
    path("orgs/<slug:org_slug>/people/", _view(people), name="orgenv_people"),
    path("orgs/<slug:org_slug>/tokens/", _view(workspace.tokens), name="orgenv_workspace_tokens"),
    path("orgs/<slug:org_slug>/audit/", _view(workspace.audit), name="orgenv_workspace_audit"),
    path(
        "orgs/<slug:org_slug>/requests/",
        _view(reviewing.requests_tab),
        name="orgenv_change_requests",
    ),
    path(
        "orgs/<slug:org_slug>/requests/<int:pk>/",
        _view(reviewing.request_page),
        name="orgenv_change_request",
    ),
    # The Webhooks tab (orgenv.admin.webhooks).
    path("orgs/<slug:org_slug>/webhooks/", _view(webhooks.webhooks), name="orgenv_webhooks"),
    path("orgs/<slug:org_slug>/webhooks/add/", _view(webhooks.add), name="orgenv_webhook_add"),
    path(
        "orgs/<slug:org_slug>/webhooks/<int:endpoint_id>/",
        _view(webhooks.endpoint),
        name="orgenv_webhook",
    ),
    path(
        "orgs/<slug:org_slug>/webhooks/<int:endpoint_id>/do/",
        _view(webhooks.action),
        name="orgenv_webhook_action",
    ),
    path(
        "orgs/<slug:org_slug>/webhooks/<int:endpoint_id>/delete/",
        _view(webhooks.delete),
        name="orgenv_webhook_delete",
    ),
]


def urls() -> tuple[list, str, str]:
    """What `path("admin/", …)` includes: the workspace, then the admin's own URLs (whose
    index the workspace's front page replaces: the first match wins)."""
    return [*WORKSPACE_PATTERNS, *admin.site.get_urls()], "admin", admin.site.name
