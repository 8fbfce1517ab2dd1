"""The tenancy choke point: who may see or change what. Every view, admin and command asks
here rather than filtering on its own.

- a superuser sees and changes everything;
- an organization admin -- an active user with staff status AND an admin Membership --
  changes everything of that organization. An admin membership without staff status grants
  nothing beyond a member's rights, anywhere: taking staff status away is how an installation
  takes admin rights away, so no page, API, audit view or grant view may honour the role alone;
- a member sees the projects they belong to, directly or through a team, read-only.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model, Q, QuerySet

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

# How each model reaches its organization, for scoping querysets.
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


def _may_administer(user: User | None) -> bool:
    """Active and staff: the precondition of every admin right (superusers included)."""
    return _active(user) and bool(user.is_staff or user.is_superuser)


def admin_organization_ids(user: User | None) -> set[int]:
    """Organizations this user administers (all of them for a superuser)."""
    if not _may_administer(user):
        return set()
    if user.is_superuser:
        return set(Organization.objects.values_list("pk", flat=True))
    return set(
        Membership.objects.filter(user=user, role=Membership.Role.ADMIN).values_list(
            "organization_id", flat=True
        )
    )


def administered_organizations(user: User | None) -> QuerySet[Organization]:
    return Organization.objects.filter(pk__in=admin_organization_ids(user))


def is_org_admin(user: User | None, organization: Organization | int) -> bool:
    if not _may_administer(user):
        return False
    if user.is_superuser:
        return True
    org_id = organization if isinstance(organization, int) else organization.pk
    return Membership.objects.filter(
        user=user, organization_id=org_id, role=Membership.Role.ADMIN
    ).exists()


def visible_organizations(user: User | None) -> QuerySet[Organization]:
    """Organizations the user belongs to in any role (all for a superuser)."""
    if not _active(user):
        return Organization.objects.none()
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=user).distinct()


def projects_for(user: User | None) -> QuerySet[Project]:
    """Projects whose environment the user may read: their own (directly or through a team),
    and every project of an organization they administer."""
    if not _active(user):
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    admin_orgs = admin_organization_ids(user)
    return Project.objects.filter(
        Q(members=user) | Q(teams__members=user) | Q(organization_id__in=admin_orgs)
    ).distinct()


def member_projects(user: User | None) -> QuerySet[Project]:
    """Projects the user belongs to, directly or through a team (what `/` lists)."""
    if not _active(user):
        return Project.objects.none()
    return Project.objects.filter(Q(members=user) | Q(teams__members=user)).distinct()


def restrict(queryset: QuerySet, user: User | None) -> QuerySet:
    """Limit a queryset of any domain model to the organizations the user administers."""
    if _active(user) and user.is_superuser:
        return queryset
    path = ORGANIZATION_PATH[queryset.model]
    return queryset.filter(**{f"{path}__in": admin_organization_ids(user)})


def may_reveal(user: User | None, project: Project) -> bool:
    """A secret value reaches a browser only one at a time, through the audited reveal, and
    only for an admin of the project's organization. No page or session API shows secrets in
    bulk, to anyone (SPEC "Secret exposure")."""
    return is_org_admin(user, project.organization_id)
