"""The Django admin for organization admins: one module per concept, one scoped base."""

from django.contrib import admin

from . import groups, organizations, projects, tokens  # noqa: F401  (registers the admins)

admin.site.site_header = "orgenv administration"
admin.site.site_title = "orgenv"
admin.site.index_title = "Organizations, groups and variables"
# The workspace's tabs (orgenv.admin.workspace) are the navigation; the model sidebar would
# take a quarter of the width from every table, and all of it at 360 px.
admin.site.enable_nav_sidebar = False
