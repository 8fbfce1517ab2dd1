"""The Django admin for organization admins: one module per concept, one scoped base."""

from django.contrib import admin
from django.urls import path

from . import groups, organizations, projects, tokens  # noqa: F401  (registers the admins)

_site_urls = admin.site.get_urls


def _get_urls() -> list:
    """The admin's own URLs plus the organization pages that are not a model's: the People
    page (`admin:orgenv_people`). admin_view asks for an active staff user; the view itself
    answers 404 to anyone who does not administer that organization (orgenv.access)."""
    from orgenv.people.views import people

    return [
        path(
            "orgs/<slug:org_slug>/people/",
            admin.site.admin_view(people),
            name="orgenv_people",
        ),
        *_site_urls(),
    ]


admin.site.get_urls = _get_urls

admin.site.site_header = "orgenv administration"
admin.site.site_title = "orgenv"
admin.site.index_title = "Organizations, groups and variables"
