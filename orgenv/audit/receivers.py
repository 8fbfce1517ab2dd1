"""Receivers that feed the audit log: sign-ins, and grant changes simple-history misses.

Connected from OrgenvConfig.ready (importing this module registers them).

simple-history records a grant change on the group's history only when it is made from the
group's side (`group.projects.add(project)`). Made from the other side
(`project.granted_groups.add(group)`), or by deleting a team, it would be missing from the
group's past, and `resolve_env --as-of` would resolve a later time with stale grants. The
receivers below write the missing history rows.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, pre_delete
from django.dispatch import receiver
from django.http import HttpRequest

from orgenv.audit.events import record
from orgenv.models import AuditEvent, Membership, Project, Team, VariableGroup

Kind = AuditEvent.Kind


def record_sign_in(kind: str, *, actor: str, user: Any, request: Any, **fields: Any) -> None:
    """One event per organization the user belongs to at this moment (or one without an
    organization): an organization's audit log then shows a user's sign-ins only from when
    they were a member, also after they leave (SPEC "People"). Nobody can make another
    installation's user a member without their consent, so no admin reads a stranger's
    sign-ins."""
    memberships = Membership.objects.filter(user=user).select_related("organization")
    organizations = [m.organization for m in memberships] if user is not None else []
    for organization in organizations or [None]:
        record(kind, actor=actor, user=user, request=request, organization=organization, **fields)


@receiver(user_logged_in, dispatch_uid="orgenv_audit_login")
def audit_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    record_sign_in(Kind.LOGIN, actor=user.get_username(), user=user, request=request)


@receiver(user_logged_out, dispatch_uid="orgenv_audit_logout")
def audit_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is None:  # signing out without being signed in
        return
    record_sign_in(Kind.LOGOUT, actor=user.get_username(), user=user, request=request)


@receiver(user_login_failed, dispatch_uid="orgenv_audit_login_failed")
def audit_login_failed(
    sender: Any, credentials: dict, request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # `credentials` is already sanitized by Django (the password is masked); keep only the
    # username that was tried.
    username = str(credentials.get("username") or "")[:150]
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username=username).first() if username else None
    locked = bool(getattr(request, "axes_locked_out", False))
    record_sign_in(
        Kind.LOGIN_FAILED,
        actor=username,
        user=user,
        request=request,
        detail={"locked_out": True} if locked else {},
    )


def _record_group_history(group_ids: set[int]) -> None:
    # save() writes a "~" history row with the group's current grants (and bumps
    # updated_at, so runner ETags change too).
    for group in VariableGroup.objects.filter(pk__in=group_ids):
        group.save(update_fields=["updated_at"])


def _reverse_grant_changed(
    instance: Any, action: str, reverse: bool, pk_set: set[int] | None, column: str, through: Any
) -> None:
    if not reverse:
        return  # simple-history already recorded it on the group
    if action == "pre_clear":
        instance._orgenv_cleared_groups = set(
            through.objects.filter(**{column: instance.pk}).values_list(
                "variablegroup_id", flat=True
            )
        )
    elif action == "post_clear":
        _record_group_history(getattr(instance, "_orgenv_cleared_groups", set()))
    elif action in ("post_add", "post_remove") and pk_set:
        _record_group_history(set(pk_set))


@receiver(m2m_changed, sender=VariableGroup.projects.through, dispatch_uid="orgenv_grant_p")
def project_side_grant_changed(sender, instance, action, reverse, pk_set, **kwargs):  # type: ignore[no-untyped-def]
    _reverse_grant_changed(instance, action, reverse, pk_set, "project_id", sender)


@receiver(m2m_changed, sender=VariableGroup.teams.through, dispatch_uid="orgenv_grant_t")
def team_side_grant_changed(sender, instance, action, reverse, pk_set, **kwargs):  # type: ignore[no-untyped-def]
    _reverse_grant_changed(instance, action, reverse, pk_set, "team_id", sender)


@receiver(pre_delete, sender=Team, dispatch_uid="orgenv_team_pre_delete")
def team_about_to_go(sender: Any, instance: Team, **kwargs: Any) -> None:
    instance._orgenv_linked = (
        set(instance.granted_groups.values_list("pk", flat=True)),
        set(instance.projects.values_list("pk", flat=True)),
    )


@receiver(post_delete, sender=Team, dispatch_uid="orgenv_team_post_delete")
def team_gone(sender: Any, instance: Team, **kwargs: Any) -> None:
    # The cascade removed the team's links without m2m signals: record the groups and
    # projects as they now are, so their history no longer lists the team.
    group_ids, project_ids = getattr(instance, "_orgenv_linked", (set(), set()))
    _record_group_history(group_ids)
    for project in Project.objects.filter(pk__in=project_ids):
        project.save(update_fields=["name"])


def _record_project_history(project_ids: set[int]) -> None:
    # save() writes a "~" history row with the project's current team links.
    for project in Project.objects.filter(pk__in=project_ids):
        project.save(update_fields=["name"])


@receiver(m2m_changed, sender=Project.teams.through, dispatch_uid="orgenv_team_projects")
def team_side_project_link_changed(sender, instance, action, reverse, pk_set, **kwargs):  # type: ignore[no-untyped-def]
    """`team.projects.add(project)` (apply_config does it) is the reverse side of
    Project.teams: simple-history records nothing for the project, and a past environment
    would miss the groups granted to that team."""
    if not reverse:
        return  # made from the project's side: simple-history recorded it
    if action == "pre_clear":
        instance._orgenv_cleared_projects = set(
            sender.objects.filter(team_id=instance.pk).values_list("project_id", flat=True)
        )
    elif action == "post_clear":
        _record_project_history(getattr(instance, "_orgenv_cleared_projects", set()))
    elif action in ("post_add", "post_remove") and pk_set:
        _record_project_history(set(pk_set))
