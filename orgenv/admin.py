from django.contrib import admin

from . import models

admin.site.site_header = "orgenv administration"
admin.site.site_title = "orgenv"
admin.site.index_title = "Organizations, groups and variables"

for model in (
    models.Organization,
    models.Membership,
    models.Team,
    models.Project,
    models.VariableGroup,
    models.Variable,
    models.ProjectVariable,
):
    admin.site.register(model)
