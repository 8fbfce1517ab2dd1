"""Last-line integrity checks on grants, whatever path writes them (admin, services,
shell): a grant never crosses organizations and never breaks the environment guard."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from .models import Project, Team, VariableGroup
from .validators import environment_guard_errors


def _check_same_org(owner_org_id: int, model: type, pks: set[int], what: str) -> None:
    stray = model.objects.filter(pk__in=pks).exclude(organization_id=owner_org_id)
    if stray.exists():
        names = ", ".join(sorted(str(o) for o in stray))
        raise ValidationError(f"{what} {names} belongs to another organization.")


@receiver(m2m_changed, sender=VariableGroup.projects.through)
def group_projects_changed(
    sender: type,
    instance: Any,
    action: str,
    reverse: bool,
    model: type,
    pk_set: set[int] | None,
    **kwargs: Any,
) -> None:
    if action != "pre_add" or not pk_set:
        return
    if reverse:  # project.granted_groups.add(group, …)
        groups = VariableGroup.objects.filter(pk__in=pk_set)
        pairs = [(g, [instance]) for g in groups]
    else:
        pairs = [(instance, list(Project.objects.filter(pk__in=pk_set)))]
    for group, projects in pairs:
        stray = [p for p in projects if p.organization_id != group.organization_id]
        if stray:
            raise ValidationError(
                f"Project {stray[0].slug!r} belongs to another organization "
                f"than group {group.name!r}."
            )
        errors = environment_guard_errors(
            group.name, group.environment, [(p.slug, p.environment) for p in projects]
        )
        if errors:
            raise ValidationError(errors)


def _check_team_links(owner: type, label: str) -> Any:
    """A receiver for the team links of `owner` (groups granted to teams, projects in
    teams): both ends belong to one organization."""

    def check(
        sender: type,
        instance: Any,
        action: str,
        reverse: bool,
        model: type,
        pk_set: set[int] | None,
        **kwargs: Any,
    ) -> None:
        if action != "pre_add" or not pk_set:
            return
        if reverse:  # team.<owner>_set.add(…)
            _check_same_org(instance.organization_id, owner, pk_set, label)
        else:
            _check_same_org(instance.organization_id, Team, pk_set, "Team")

    return check


group_teams_changed = _check_team_links(VariableGroup, "Group")
project_teams_changed = _check_team_links(Project, "Project")
m2m_changed.connect(group_teams_changed, sender=VariableGroup.teams.through)
m2m_changed.connect(project_teams_changed, sender=Project.teams.through)
