"""The tenancy choke point: who may see or change what. Every view, admin, API and command
asks here rather than deciding on its own (SPEC "Who uses it").

- a superuser (active) sees and changes everything;
- an organization admin is an active user with staff status AND an `admin` membership of that
  organization; an admin membership without staff status grants nothing beyond a member's
  rights, anywhere (pages, APIs, audit, grants). `_admin_memberships` is that rule, once;
- a member sees the projects they belong to, directly or through a team, read-only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import BooleanField, Exists, Model, OuterRef, Q, QuerySet, Value

from .models import (
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    Project,
    ProjectToken,
    ProjectVariable,
    Team,
    Variable,
    VariableGroup,
)

User = AbstractBaseUser | AnonymousUser

# How each model reaches its organization, for scoping querysets and organization_of.
ORGANIZATION_PATH: dict[type[Model], str] = {
    Organization: "pk",
    Membership: "organization",
    Invitation: "organization",
    Team: "organization",
    Project: "organization",
    VariableGroup: "organization",
    Variable: "group__organization",
    ProjectVariable: "project__organization",
    ProjectToken: "project__organization",
    AuditEvent: "organization",
}


def _active(user: User | None) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _superuser(user: User | None) -> bool:
    return _active(user) and bool(user.is_superuser)


def _admin_memberships(user: User | None) -> QuerySet[Membership]:
    """The memberships that make `user` an organization admin: the rule, in one place."""
    if not _active(user) or not user.is_staff:
        return Membership.objects.none()
    return Membership.objects.filter(user=user, role=Membership.Role.ADMIN)


def organization_admins(organization: Organization | int) -> QuerySet[User]:
    """The users who administer `organization`: the rule of _admin_memberships seen from the
    organization's side (active, staff, an admin membership). Superusers are not listed:
    they administer everything and are nobody's contact."""
    from django.contrib.auth import get_user_model

    org_id = organization if isinstance(organization, int) else organization.pk
    return get_user_model().objects.filter(
        is_active=True,
        is_staff=True,
        memberships__organization_id=org_id,
        memberships__role=Membership.Role.ADMIN,
    )


def organization_of(obj: Any) -> int | None:
    """The id of the organization an instance belongs to, following ORGANIZATION_PATH; None
    for a model outside the tenancy or when the chain is broken (a parent deleted too, as
    in a historical instance)."""
    path = ORGANIZATION_PATH.get(type(obj))
    if path is None:
        return None
    if path == "pk":
        return obj.pk
    *parents, last = path.split("__")
    current = obj
    try:
        for name in parents:
            current = getattr(current, name)
    except ObjectDoesNotExist:
        return None
    return None if current is None else getattr(current, f"{last}_id", None)


def is_org_admin(user: User | None, organization: Organization | int) -> bool:
    if _superuser(user):
        return True
    org_id = organization if isinstance(organization, int) else organization.pk
    return _admin_memberships(user).filter(organization_id=org_id).exists()


def admin_organization_ids(user: User | None) -> set[int]:
    """Organizations this user administers (all of them for a superuser)."""
    if _superuser(user):
        return set(Organization.objects.values_list("pk", flat=True))
    return set(_admin_memberships(user).values_list("organization_id", flat=True))


def administered_organizations(user: User | None) -> QuerySet[Organization]:
    if _superuser(user):
        return Organization.objects.all()
    return Organization.objects.filter(pk__in=_admin_memberships(user).values("organization_id"))


def may_administer(user: User | None, organizations: Iterable[str]) -> bool:
    """Whether `user` administers every organization named (by slug). A slug that names no
    organization yet is one the change would create: only a superuser may."""
    if _superuser(user):
        return True
    slugs = set(organizations)
    return len(slugs) == administered_organizations(user).filter(slug__in=slugs).count()


def projects_for(user: User | None) -> QuerySet[Project]:
    """Projects whose environment the user may read: their own (directly or through a team),
    and every project of an organization they administer."""
    if not _active(user):
        return Project.objects.none()
    if _superuser(user):
        return Project.objects.all()
    return Project.objects.filter(
        Q(members=user)
        | Q(teams__members=user)
        | Q(organization_id__in=_admin_memberships(user).values("organization_id"))
    ).distinct()


@dataclass(frozen=True)
class ProjectAccess:
    project: Project
    administers: bool


def project_access(user: User | None, *, organization: str, project: str) -> ProjectAccess | None:
    """The project ORG/PROJECT if the user may read it, with whether they administer its
    organization, in one query; None if they may not read it (or it does not exist)."""
    if _superuser(user):
        administers: Any = Value(True, output_field=BooleanField())
    elif _active(user) and user.is_staff:
        administers = Exists(
            _admin_memberships(user).filter(organization_id=OuterRef("organization_id"))
        )
    else:
        administers = Value(False, output_field=BooleanField())
    found = (
        projects_for(user)
        .select_related("organization")
        .annotate(user_administers=administers)
        .filter(organization__slug=organization, slug=project)
        .first()
    )
    if found is None:
        return None
    return ProjectAccess(found, bool(found.user_administers))


def restrict(queryset: QuerySet, user: User | None) -> QuerySet:
    """Limit a queryset of any domain model to the organizations the user administers."""
    if _superuser(user):
        return queryset
    path = ORGANIZATION_PATH[queryset.model]
    return queryset.filter(**{f"{path}__in": admin_organization_ids(user)})
