"""Last-line integrity checks on grants, whatever path writes them (admin, services,
shell): a grant never crosses organizations and never breaks the environment guard.

And the organization's generation, replaced in the same transaction as every write that can
change a resolution of one of its projects (a definition, a group, a grant, a team link, a
project or the organization itself): app servers key the layers they keep by it
(orgenv.selectors.layers.cached_layers), so the next request after the commit, on any server,
reads the new generation with its token and resolves afresh. Writes that bypass signals
(`QuerySet.update()`, `bulk_create`) must call `generation_bump` themselves.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from simple_history.signals import pre_create_historical_record

from .actors import current_actor
from .models import (
    Organization,
    Project,
    ProjectVariable,
    Team,
    Variable,
    VariableGroup,
    new_generation,
)
from .validators import environment_guard_errors


def _check_same_org(owner_org_id: int, model: type, pks: set[int], what: str) -> None:
    stray = model.objects.filter(pk__in=pks).exclude(organization_id=owner_org_id)
    if stray.exists():
        names = ", ".join(sorted(str(o) for o in stray))
        raise ValidationError(f"{what} {names} belongs to another organization.")


@receiver(m2m_changed, sender=VariableGroup.projects.through)
def group_projects_changed(sender, instance, action, reverse, model, pk_set, **kwargs):  # type: ignore[no-untyped-def]
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


@receiver(m2m_changed, sender=VariableGroup.teams.through)
def group_teams_changed(sender, instance, action, reverse, model, pk_set, **kwargs):  # type: ignore[no-untyped-def]
    if action != "pre_add" or not pk_set:
        return
    if reverse:
        _check_same_org(instance.organization_id, VariableGroup, pk_set, "Group")
    else:
        _check_same_org(instance.organization_id, Team, pk_set, "Team")


@receiver(m2m_changed, sender=Project.teams.through)
def project_teams_changed(sender, instance, action, reverse, model, pk_set, **kwargs):  # type: ignore[no-untyped-def]
    if action != "pre_add" or not pk_set:
        return
    if reverse:
        _check_same_org(instance.organization_id, Project, pk_set, "Project")
    else:
        _check_same_org(instance.organization_id, Team, pk_set, "Team")


@receiver(pre_create_historical_record)
def attribute_history(sender, history_instance, **kwargs):  # type: ignore[no-untyped-def]
    """Every history row says who acted, even when no user did (a command, a runner)."""
    actor = current_actor()
    if actor is not None:
        history_instance.history_actor = actor.label
    elif history_instance.history_user is not None:
        history_instance.history_actor = history_instance.history_user.get_username()


def generation_bump(organizations: Q) -> None:
    """A new generation for the organizations matching `organizations` (one UPDATE)."""
    Organization.objects.filter(organizations).update(generation=new_generation())


@receiver(post_save, sender=Variable)
@receiver(post_delete, sender=Variable)
def variable_changed(sender, instance, **kwargs):  # type: ignore[no-untyped-def]
    # By the group's id, in the UPDATE itself: no query to load the group first.
    generation_bump(Q(groups__pk=instance.group_id))


@receiver(post_save, sender=ProjectVariable)
@receiver(post_delete, sender=ProjectVariable)
def project_variable_changed(sender, instance, **kwargs):  # type: ignore[no-untyped-def]
    generation_bump(Q(projects__pk=instance.project_id))


@receiver(post_save, sender=VariableGroup)
@receiver(post_delete, sender=VariableGroup)
@receiver(post_save, sender=Project)
@receiver(post_delete, sender=Project)
@receiver(post_save, sender=Team)
@receiver(post_delete, sender=Team)
def owned_changed(sender, instance, **kwargs):  # type: ignore[no-untyped-def]
    generation_bump(Q(pk=instance.organization_id))


@receiver(post_save, sender=Organization)
def organization_changed(sender, instance, created, **kwargs):  # type: ignore[no-untyped-def]
    if not created:  # its slug is in every answer
        generation_bump(Q(pk=instance.pk))


@receiver(m2m_changed, sender=VariableGroup.projects.through)
@receiver(m2m_changed, sender=VariableGroup.teams.through)
@receiver(m2m_changed, sender=Project.teams.through)
def link_changed(sender, instance, action, **kwargs):  # type: ignore[no-untyped-def]
    if action in ("post_add", "post_remove", "post_clear"):
        generation_bump(Q(pk=instance.organization_id))
