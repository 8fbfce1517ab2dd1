"""Operators' commands (apply_config, import_env, restore) apply to protected groups directly —
their review is the review of the file — and their changes are notified like forced ones
(SPEC "Change requests"): `watching(organization, command)` around the command's writes, in
their transaction, notifies change.forced to every org admin for each protected group whose
version moved, with the variable names it touched."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db.models import Q

from orgenv.models import Organization, Variable, VariableGroup
from orgenv.notifications import ADMINS, events, notify

from .state import group_versions


@dataclass
class Touched:
    group: str
    names: list[str]


@dataclass
class Watch:
    touched: list[Touched] = field(default_factory=list)


@contextmanager
def watching(organization: Organization | None, command: str) -> Iterator[Watch]:
    """Notify the changes the block makes to `organization`'s protected groups (those that
    were protected before it); `watch.touched` lists them afterwards."""
    watch = Watch()
    if organization is None:
        yield watch
        return
    protected = dict(
        VariableGroup.objects.filter(organization=organization, protected=True).values_list(
            "pk", "name"
        )
    )
    before = group_versions(list(protected))
    yield watch
    after = group_versions(list(protected))
    for pk in sorted(protected, key=protected.get):
        if before[pk] == after[pk]:
            continue
        since = int(before[pk].split(".")[1])
        names = sorted(
            set(
                Variable.history.filter(Q(group_id=pk) & Q(history_id__gt=since)).values_list(
                    "name", flat=True
                )
            )
        )
        watch.touched.append(Touched(protected[pk], names))
        notify(
            events.CHANGE_FORCED,
            organization=organization,
            data={
                "group": protected[pk],
                "names": names,
                "version": after[pk],
                "via": command,
                "reason": f"applied directly by {command} (operators' changes need no request)",
            },
            link=f"/admin/orgenv/variablegroup/{pk}/history/",
            email_to=ADMINS,
        )
