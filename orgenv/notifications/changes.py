"""`group.changed`, `group.deleted` and `project.changed`, from the changes themselves.

Every write path that changes what a group or a project holds — the admin's pages, a paste,
a deletion, a restore, apply_config, import_env, a grant from either side — ends in
`save()`/`delete()` of a model (signals, connected below) or in the bulk writer
orgenv.services.definitions (which calls `touched` itself). So the events are made here,
once, rather than in each path.

One transaction makes one event per group or project it changed, whatever number of rows it
wrote: the first touch writes the outbox row through notify() (in that transaction, so a
rollback takes it too); a later touch of the same transaction that adds names or changes the
reach updates that row. The transaction's events are kept in an after-commit callback of our
own (`_Batch`), so they go with a rollback as Django's own callbacks do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Q
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.dispatch import receiver
from django.urls import reverse

from orgenv.models import Organization, Project, ProjectVariable, Variable, VariableGroup

from . import events
from .models import Notification
from .outbox import notify

# A group reaching every project of a large organization names the first ones only (and
# says how many in `projects_affected_count`).
PROJECTS_LISTED = 200


@dataclass
class _Event:
    notification: Notification
    names: set[str] = field(default_factory=set)


class _Batch:
    """The events of one transaction, registered as one of its after-commit callbacks: it
    disappears with a rollback, and marks itself done when the commit runs it."""

    def __init__(self, anchor: str | None) -> None:
        self.anchor = anchor
        self.events: dict[tuple[str, int], _Event] = {}
        self.deleting: set[tuple[type, int]] = set()
        self.done = False

    def __call__(self) -> None:
        self.done = True


def _anchor(connection: Any) -> str | None:
    """The savepoint of the outermost atomic block the code opened: none in production (it
    began the transaction); inside a test case's own blocks, the savepoint that stands for
    the transaction the code believes it has, so that each test transaction is one batch."""
    blocks = connection.atomic_blocks
    depth = 0
    while depth < len(blocks) - 1 and getattr(blocks[depth], "_from_testcase", False):
        depth += 1
    # savepoint_ids has an entry for every block but the first.
    return connection.savepoint_ids[depth - 1] if depth else None


def _batch(using: str = DEFAULT_DB_ALIAS) -> _Batch | None:
    connection = connections[using]
    if not connection.in_atomic_block:
        return None
    anchor = _anchor(connection)
    for _sids, func, _robust in reversed(connection.run_on_commit):
        if isinstance(func, _Batch) and not func.done and func.anchor == anchor:
            return func
    batch = _Batch(anchor)
    transaction.on_commit(batch, using=using)
    return batch


def affected_projects(group: VariableGroup) -> tuple[list[str], int]:
    """The slugs of the projects the group reaches now (its grants, its teams' projects, or
    all projects; the environment guard applied), the first PROJECTS_LISTED, and how many."""
    projects = Project.objects.filter(organization_id=group.organization_id)
    if group.environment:
        projects = projects.filter(environment=group.environment)
    if group.access != VariableGroup.Access.ALL:
        projects = projects.filter(Q(granted_groups=group) | Q(teams__granted_groups=group))
    slugs = list(
        projects.order_by("slug").values_list("slug", flat=True).distinct()[: PROJECTS_LISTED + 1]
    )
    if len(slugs) <= PROJECTS_LISTED:
        return slugs, len(slugs)
    return slugs[:PROJECTS_LISTED], projects.values("pk").distinct().count()


def _generation(organization_id: int) -> int:
    generation = Organization.objects.filter(pk=organization_id).values_list(
        "generation", flat=True
    )
    return generation.first()


def _deleting(batch: _Batch | None, *objects: tuple[type, int | None]) -> bool:
    return batch is not None and any(key in batch.deleting for key in objects)


def _deleted_with(origin: Any, *models: type) -> bool:
    """Whether a deletion started from one of `models` (an instance or a queryset: Django's
    `origin`), so that the rows going with it by cascade are not reported one by one."""
    model = getattr(origin, "model", type(origin))
    return isinstance(model, type) and issubclass(model, models)


def touched(owner: VariableGroup | Project, names: Iterable[str] = ()) -> None:
    """Record that `owner` (a group or a project) changed; `names` are the variables written
    or deleted (none for a change of its grants or settings). Called by the signal receivers
    below and by the bulk writer. The first touch of a transaction is one INSERT; the
    projects reached and the version are added by the worker (`completion`)."""
    batch = _batch()
    if _deleting(batch, (Organization, owner.organization_id), (type(owner), owner.pk)):
        return
    is_group = isinstance(owner, VariableGroup)
    event_type = events.GROUP_CHANGED if is_group else events.PROJECT_CHANGED
    names = set(names)
    subject = _subject(owner)
    current = batch.events.get((event_type, owner.pk)) if batch is not None else None
    if current is None:
        notification = notify(
            event_type,
            organization=owner.organization,
            data={**subject, "names": sorted(names)},
            link=_link(owner),
            about={"group" if is_group else "project": owner.pk},
        )
        if batch is not None:
            batch.events[(event_type, owner.pk)] = _Event(notification, names)
        return
    data = current.notification.data
    if names <= current.names and all(data.get(k) == v for k, v in subject.items()):
        return
    current.names |= names
    data.update(subject, names=sorted(current.names))
    Notification.objects.filter(pk=current.notification.pk).update(data=data)


def _subject(owner: VariableGroup | Project) -> dict[str, Any]:
    if isinstance(owner, VariableGroup):
        return {"group": owner.name, "environment": owner.environment}
    return {
        "project": owner.slug,
        "environment": owner.environment,
        "projects_affected": [owner.slug],
        "projects_affected_count": 1,
    }


def completion(organization_id: int, about: dict[str, int]) -> dict[str, Any]:
    """What the worker adds to a group or project event before sending it: the version (the
    organization's generation as the event goes out) and, for a group, the projects it
    reaches (none if it was deleted since)."""
    data: dict[str, Any] = {"version": _generation(organization_id)}
    if "group" in about:
        group = VariableGroup.objects.filter(pk=about["group"]).first()
        projects, count = affected_projects(group) if group is not None else ([], 0)
        data.update(projects_affected=projects, projects_affected_count=count)
    return data


def _link(owner: VariableGroup | Project) -> str:
    if isinstance(owner, VariableGroup):
        return reverse("admin:orgenv_variablegroup_change", args=(owner.pk,))
    return reverse("admin:orgenv_project_change", args=(owner.pk,))


# --- the signals ------------------------------------------------------------------------


@receiver(post_save, sender=Variable, dispatch_uid="orgenv_events_variable_saved")
@receiver(post_delete, sender=Variable, dispatch_uid="orgenv_events_variable_deleted")
def variable_changed(sender: Any, instance: Variable, raw: bool = False, **kwargs: Any) -> None:
    if raw or _deleted_with(kwargs.get("origin"), Organization, VariableGroup):
        return
    field = Variable._meta.get_field("group")
    group = (
        instance.group
        if field.is_cached(instance)
        else VariableGroup.objects.filter(pk=instance.group_id).first()
    )
    if group is not None:
        touched(group, [instance.name])


@receiver(post_save, sender=ProjectVariable, dispatch_uid="orgenv_events_pvariable_saved")
@receiver(post_delete, sender=ProjectVariable, dispatch_uid="orgenv_events_pvariable_deleted")
def project_variable_changed(
    sender: Any, instance: ProjectVariable, raw: bool = False, **kwargs: Any
) -> None:
    if raw or _deleted_with(kwargs.get("origin"), Organization, Project):
        return
    project = Project.objects.filter(pk=instance.project_id).first()
    if project is not None:
        touched(project, [instance.name])


@receiver(post_save, sender=VariableGroup, dispatch_uid="orgenv_events_group_saved")
def group_saved(sender: Any, instance: VariableGroup, raw: bool = False, **kwargs: Any) -> None:
    if not raw:
        touched(instance)


@receiver(post_save, sender=Project, dispatch_uid="orgenv_events_project_saved")
def project_saved(sender: Any, instance: Project, raw: bool = False, **kwargs: Any) -> None:
    if not raw and not kwargs.get("created"):
        touched(instance)


@receiver(m2m_changed, sender=VariableGroup.projects.through, dispatch_uid="orgenv_events_grants")
@receiver(m2m_changed, sender=VariableGroup.teams.through, dispatch_uid="orgenv_events_team_grants")
def grants_changed(sender: Any, instance: Any, action: str, **kwargs: Any) -> None:
    # From the group's side; the other side's changes save the group (orgenv.audit.receivers).
    if action in ("post_add", "post_remove", "post_clear") and isinstance(instance, VariableGroup):
        touched(instance)


@receiver(pre_delete, sender=Organization, dispatch_uid="orgenv_events_org_deleting")
@receiver(pre_delete, sender=Project, dispatch_uid="orgenv_events_project_deleting")
def owner_deleting(sender: Any, instance: Any, **kwargs: Any) -> None:
    """What an organization's or a project's deletion saves on its way (a group whose team
    goes, orgenv.audit.receivers) is not reported as a change of a thing that is going."""
    batch = _batch()
    if batch is not None:
        batch.deleting.add((sender, instance.pk))


@receiver(pre_delete, sender=VariableGroup, dispatch_uid="orgenv_events_group_deleting")
def group_deleting(sender: Any, instance: VariableGroup, **kwargs: Any) -> None:
    batch = _batch()
    if _deleted_with(kwargs.get("origin"), Organization):
        return
    if batch is not None:
        batch.deleting.add((VariableGroup, instance.pk))
    projects, count = affected_projects(instance)
    notify(
        events.GROUP_DELETED,
        organization=instance.organization,
        data={
            "group": instance.name,
            "environment": instance.environment,
            "names": sorted(instance.variables.values_list("name", flat=True)),
            "projects_affected": projects,
            "projects_affected_count": count,
        },
        link=reverse("admin:orgenv_workspace", args=(instance.organization.slug,)),
        about={"deleted_group": instance.pk},  # the worker adds the version
    )


def touched_in_bulk(owners: list[tuple[VariableGroup | Project, list[str]]]) -> None:
    """`touched` for the bulk writer's many owners at once (apply_config writing a whole
    organization): the events of owners new to this transaction in one INSERT, whatever
    their number; owners already touched in it are updated as `touched` does."""
    from .outbox import _enqueue, absolute_url, actor_label

    batch = _batch()
    fresh = []
    for owner, names in owners:
        event_type = (
            events.GROUP_CHANGED if isinstance(owner, VariableGroup) else events.PROJECT_CHANGED
        )
        deleting = _deleting(batch, (Organization, owner.organization_id), (type(owner), owner.pk))
        if deleting:
            continue
        if batch is None or (event_type, owner.pk) in batch.events:
            touched(owner, names)
            continue
        fresh.append((event_type, owner, names))
    if not fresh:
        return
    slugs = dict(
        Organization.objects.filter(
            pk__in={owner.organization_id for _, owner, _ in fresh}
        ).values_list("pk", "slug")
    )
    actor = actor_label()
    rows = []
    for event_type, owner, names in fresh:
        kind = "group" if event_type == events.GROUP_CHANGED else "project"
        rows.append(
            Notification(
                organization_id=owner.organization_id,
                type=event_type,
                actor=actor,
                data={
                    "organization": slugs[owner.organization_id],
                    "actor": actor,
                    **_subject(owner),
                    "names": sorted(set(names)),
                    "url": absolute_url(_link(owner)),
                },
                about={kind: owner.pk},
            )
        )
    created = Notification.objects.bulk_create(rows)
    for (event_type, owner, names), notification in zip(fresh, created, strict=True):
        batch.events[(event_type, owner.pk)] = _Event(notification, set(names))
    ids = [n.pk for n in created]
    if all(ids):  # PostgreSQL returns them; elsewhere they are read back
        transaction.on_commit(lambda: [_enqueue(pk) for pk in ids], robust=True)
