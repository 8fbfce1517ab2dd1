"""Reads: the layers of a project, fetched in two queries and resolved.

The loader fetches rows as tuples (no model instances, no decryption): every value in a
resolution is a crypto.Ciphertext. Plaintext is a different type, a plain str, and only
`reveal` (one value) and `plaintext` (every winner) make it, so a caller decrypts exactly
what it shows and nothing else.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime

from django.core.signals import setting_changed
from django.db import connections
from django.db.models import (
    BigIntegerField,
    Exists,
    Expression,
    F,
    OuterRef,
    QuerySet,
    TextField,
    Value,
)
from django.db.models.functions import Cast
from django.dispatch import receiver

from orgenv import crypto
from orgenv.crypto import Ciphertext
from orgenv.models import Project, ProjectVariable, Variable, VariableGroup
from orgenv.resolution import (
    Definition,
    GroupLayer,
    Reach,
    Resolution,
    Resolved,
    group_reach,
    group_source,
    resolve,
)
from orgenv.selectors.snapshot import one_snapshot


@dataclass(frozen=True)
class GroupReach:
    id: int
    name: str
    priority: int
    environment: str
    access: str
    reach: Reach


@dataclass
class ProjectLayers:
    project: Project
    groups: list[GroupReach]  # every group of the organization, reaching or not
    resolution: Resolution  # every value a crypto.Ciphertext
    fingerprint: str  # changes whenever anything that affects the result changes
    as_of: datetime | None = None  # read from history (the project may be deleted since)

    @property
    def reaching(self) -> list[GroupReach]:
        return [g for g in self.groups if g.reach.reaches]


def _definition_rows(queryset: QuerySet, group: Expression) -> QuerySet:
    """(group id, row id, name, is_secret, stored token, last change) of variables or project
    variables.
    All columns are annotations so that their SQL order is this order on both sides of the
    UNION (Django puts plain fields before annotations)."""
    return (
        queryset.order_by()
        .annotate(
            d_group=group,
            d_id=F("id"),
            d_name=F("name"),
            d_secret=F("is_secret"),
            d_token=crypto.stored_token("value"),
            # As text: a datetime column would be parsed row by row by the driver (SQLite's
            # converters), which costs more than everything else per row; the stamp needs
            # only its text.
            d_updated=Cast("updated_at", TextField()),
        )
        .values_list("d_group", "d_id", "d_name", "d_secret", "d_token", "d_updated")
    )


def _fetch(queryset: QuerySet) -> list[tuple]:
    """The rows of a values_list queryset as the database driver returns them.

    The SQL is still Django's (portable, parameterised); only the per-row converters of
    values_list are skipped, which at a thousand variables cost as much as the rest of the
    resolution (bench/resolve.py). Every column read this way is an int, a str or a boolean
    (SQLite returns 0/1 for it: callers normalise). Expressions passed to values_list come
    after the plain fields, in SQL as in the tuple, so keep them last.
    """
    sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def load_layers(project: Project) -> ProjectLayers:
    """Two queries whatever the number of groups: groups (with how they reach the project),
    then their variables together with the project's variables, both in one snapshot."""
    with one_snapshot():
        return _load_layers(project)


def _load_layers(project: Project) -> ProjectLayers:
    through_projects = VariableGroup.projects.through
    through_teams = VariableGroup.teams.through
    team_projects = Project.teams.through
    groups_rows = (
        VariableGroup.objects.filter(organization_id=project.organization_id)
        .annotate(
            selected=Exists(
                through_projects.objects.filter(
                    variablegroup_id=OuterRef("pk"), project_id=project.pk
                )
            ),
            via_team=Exists(
                through_teams.objects.filter(
                    variablegroup_id=OuterRef("pk"),
                    team_id__in=team_projects.objects.filter(project_id=project.pk).values(
                        "team_id"
                    ),
                )
            ),
        )
        .order_by("name")
        .values_list(
            "id", "name", "priority", "environment", "access", "selected", "via_team", "updated_at"
        )
    )
    groups: list[GroupReach] = []
    stamp = hashlib.sha256(f"p{project.pk}:{project.environment}".encode())
    for gid, name, priority, env, access, selected, via_team, updated in groups_rows:
        reach = group_reach(
            group_environment=env,
            access=access,
            selected=selected,
            via_team=via_team,
            project_environment=project.environment,
        )
        groups.append(GroupReach(gid, name, priority, env, access, reach))
        if reach.reaches:
            stamp.update(f"|g{gid}:{name}:{priority}:{updated.isoformat()}".encode())

    by_id = {g.id: g for g in groups if g.reach.reaches}
    # One more round trip for every definition: the group variables of the reaching groups
    # and the project's variables, in one UNION ALL (a project variable's group is NULL).
    definitions_query = _definition_rows(
        ProjectVariable.objects.filter(project_id=project.pk), Value(None, BigIntegerField())
    )
    if by_id:
        definitions_query = _definition_rows(
            Variable.objects.filter(group_id__in=list(by_id)), F("group_id")
        ).union(definitions_query, all=True)
    rows = _fetch(definitions_query.order_by("d_group", "d_name"))

    # Per-row work is what a big project pays for: keep it to one tuple and one string
    # (the stamp is hashed once, with the same bytes as row by row).
    definitions: dict[int, list[Definition]] = {gid: [] for gid in by_id}
    project_defs = []
    sources = {gid: group_source(group.name) for gid, group in by_id.items()}
    parts = []
    # A row's last change is in the stamp too: a restore writes back the very ciphertext of
    # an older version but is a new version (a new history row), which manifests record.
    for gid, did, name, is_secret, token, updated in rows:
        sealed = Ciphertext(token)
        if gid is None:
            project_defs.append(
                Definition(name, sealed, bool(is_secret), "project", ref=("p", did))
            )
            parts.append(f"|p{did}:{name}:{is_secret:d}:{token}:{updated}")
        else:
            definitions[gid].append(
                Definition(
                    name, sealed, bool(is_secret), sources[gid], by_id[gid].priority, ("v", did)
                )
            )
            parts.append(f"|v{did}:{name}:{is_secret:d}:{token}:{updated}")
    stamp.update("".join(parts).encode())

    resolution = resolve(
        (
            GroupLayer(by_id[gid].name, by_id[gid].priority, defs)
            for gid, defs in definitions.items()
        ),
        project_defs,
    )
    return ProjectLayers(project, groups, resolution, stamp.hexdigest())


_TABLES = {"v": Variable._meta.db_table, "p": ProjectVariable._meta.db_table}


def reveal(item: Resolved | Definition, *, cache: bool = True) -> str:
    """The plaintext of one resolved value or definition. A current value is decrypted once
    per process while it stays current (crypto.plaintexts); pass cache=False for a past one."""
    kind, row = item.ref
    return crypto.decrypt(item.value, table=_TABLES[kind], row=row, cache=cache)


def reveal_for_display(item: Resolved | Definition) -> str:
    """reveal() for pages: a value no key decrypts shows as crypto.UNDECRYPTABLE with its
    table and id, instead of failing the whole page."""
    try:
        return reveal(item)
    except crypto.DecryptionError:
        kind, row = item.ref
        return crypto.Undecryptable(_TABLES[kind], "value", row=row).describe()


def plaintext(layers: ProjectLayers) -> dict[str, str]:
    """The plaintext of every winning value, by name: what a runner receives."""
    current = layers.as_of is None
    return {
        name: reveal(resolved, cache=current)
        for name, resolved in layers.resolution.variables.items()
    }


# --- layers kept by an app server ---------------------------------------------------------

# How many resolved definitions a process keeps, across projects (a few MB): least recently
# used projects go first.
CACHE_DEFINITIONS = 20_000
_cache: OrderedDict[tuple[int, int], ProjectLayers] = OrderedDict()
_cache_size = 0
_cache_lock = threading.Lock()
# How often a request found its layers kept, or loaded them (orgenv.operations.metrics).
cache_counts = {"hits": 0, "misses": 0}


def cached_layers(project: Project) -> ProjectLayers:
    """`load_layers(project)`, kept by this process under the organization's generation as
    read with the project (with the token, in the same query): any write that could change
    the result replaces the generation in its own transaction (database triggers, migration
    0006, whatever wrote it), so the next request on any server misses and loads afresh.
    What is kept is ciphertext, as loaded; plaintext stays in crypto's cache."""
    key = (project.pk, project.organization.generation)
    with _cache_lock:
        layers = _cache.get(key)
        if layers is not None:
            _cache.move_to_end(key)
        cache_counts["misses" if layers is None else "hits"] += 1
    if layers is not None:
        # The project as just read (slug, organization), with the layers it had then.
        return replace(layers, project=project)
    layers = load_layers(project)
    _keep(key, layers)
    return layers


def _keep(key: tuple[int, int], layers: ProjectLayers) -> None:
    global _cache_size
    size = len(layers.resolution.variables) + 1
    if size > CACHE_DEFINITIONS:
        return
    with _cache_lock:
        if key in _cache:
            return
        _cache[key] = layers
        _cache_size += size
        while _cache_size > CACHE_DEFINITIONS:
            _, dropped = _cache.popitem(last=False)
            _cache_size -= len(dropped.resolution.variables) + 1


def forget_cached_layers() -> None:
    global _cache_size
    with _cache_lock:
        _cache.clear()
        _cache_size = 0


@receiver(setting_changed)
def _forget_on_key_change(*, setting: str, **kwargs: object) -> None:
    # Kept ciphertext may be under a key that is gone (tests change FERNET_KEYS in place).
    if setting == "FERNET_KEYS":
        forget_cached_layers()
