"""Public values that look like credentials, as stored: the reads behind `scan_values`, the
admin's warning after a save and the hygiene page. Acknowledged values ("not a secret") are
left out; findings name the variable and the rules, never the value."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

from orgenv.models import Organization, ProjectVariable, Variable

from .scanning import Hit, describe, scan


@dataclass(frozen=True)
class Finding:
    organization: str
    owner: str  # group:<name> or project:<slug>
    name: str
    hits: tuple[Hit, ...]

    @property
    def rules(self) -> str:
        return describe(list(self.hits))

    def __str__(self) -> str:
        return f"{self.organization} {self.owner} {self.name}: {self.rules}"


def _public(queryset: QuerySet) -> QuerySet:
    return queryset.filter(is_secret=False, not_a_secret=False).order_by("name")


def findings_of(definitions: Iterable[Variable | ProjectVariable]) -> list[Finding]:
    """Scan these definitions (decrypting public values only); secrets and acknowledged
    values are skipped."""
    found = []
    for definition in definitions:
        if definition.is_secret or definition.not_a_secret:
            continue
        hits = scan(definition.name, definition.value)
        if not hits:
            continue
        if isinstance(definition, Variable):
            org, owner = definition.group.organization.slug, f"group:{definition.group.name}"
        else:
            org, owner = definition.project.organization.slug, f"project:{definition.project.slug}"
        found.append(Finding(org, owner, definition.name, tuple(hits)))
    return found


def organization_findings(organizations: Iterable[Organization]) -> list[Finding]:
    """Every finding of these organizations, groups first, in name order."""
    org_ids = [o.pk for o in organizations]
    variables = _public(Variable.objects.filter(group__organization_id__in=org_ids))
    project_variables = _public(
        ProjectVariable.objects.filter(project__organization_id__in=org_ids)
    )
    found = findings_of(variables.select_related("group__organization"))
    found += findings_of(project_variables.select_related("project__organization"))
    return sorted(found, key=lambda f: (f.organization, f.owner, f.name))
