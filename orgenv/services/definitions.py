"""Many definitions (variables of one group, or of one project) written at once, for
`apply_config` and `import_env`, so that the write transaction stays short however many
there are.

- `Definitions(model, wanted)` does the slow part before any transaction: it validates every
  wanted definition (the field rules of full_clean) and encrypts every value; `prepare(owner)`
  then decrypts what the owner stores (once per token) and plans against it.
- `plan(owner, …)`, inside the transaction, reads the owner's rows again (one query): when
  they are as prepared, the prepared plan stands; when a row changed in between, the plan is
  made again from the rows as they now are (decrypting only what changed).
- `write(plan)` writes in a constant number of statements per owner (a bulk insert, an
  update from a list of values (orgenv.services.bulk), a delete by ids, each in batches) and
  records every created, changed and deleted row in history as `save()` and `delete()`
  would: the same row contents (the value as its Fernet token, never plaintext), the same
  history user and change reason, and the same `pre_create_historical_record` signal, so
  orgenv.audit.receivers attributes them. The plaintexts written go to crypto's cache of
  current values, so that resolving the organization after the write (the impact plan)
  decrypts nothing either.

What a row becomes follows orgenv.services._upsert: a value of None keeps the current value,
a secret flag of None keeps the current flag (new definitions are public), a new value
clears "not a secret", an unchanged definition is not written and leaves no history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.core.exceptions import ValidationError
from django.db import router, transaction
from django.utils import timezone
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record
from simple_history.utils import get_change_reason_from_object

from orgenv import crypto
from orgenv.models import Project, ProjectVariable, Variable, VariableGroup
from orgenv.services.bulk import rows_insert, rows_update
from orgenv.validators import is_loader_name, validate_loader_name

D = TypeVar("D", Variable, ProjectVariable)

# Rows per statement where the database takes that many parameters (SQLite's 999 caps
# Django's batches lower).
BATCH_SIZE = 500
UPDATED_FIELDS = ["value", "is_secret", "not_a_secret", "updated_at"]


@dataclass(frozen=True)
class Wanted:
    name: str
    value: str | None  # None: keep the current value (a new definition needs one)
    is_secret: bool | None  # None: keep the current flag (a new definition is public)


@dataclass(frozen=True)
class Stored:
    """A row as stored: its value as its token."""

    id: int
    name: str
    token: str
    is_secret: bool
    not_a_secret: bool


@dataclass
class Plan(Generic[D]):
    model: type[D]
    created: list[D] = field(default_factory=list)
    updated: list[D] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[D] = field(default_factory=list)
    # The public definitions this plan writes (created or changed), as they will be, their
    # values in plaintext, for the credential scan (orgenv.hygiene.public_values.findings_of):
    # what a file writes is warned about; what it leaves as it is, scan_values reports.
    # Never saved.
    result: list[D] = field(default_factory=list)
    plaintexts: dict[str, Any] = field(default_factory=dict, repr=False)  # token → plaintext

    @property
    def counts(self) -> dict[str, int]:
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "deleted": len(self.deleted),
        }


def _owner_field(model: type[Variable | ProjectVariable]) -> str:
    return "group" if model is Variable else "project"


class Definitions(Generic[D]):
    """The wanted definitions of one group or project, validated and encrypted (outside any
    transaction)."""

    def __init__(self, model: type[D], wanted: Iterable[Wanted], *, prune: bool = False) -> None:
        self.model = model
        self.owner = _owner_field(model)
        self.table = model._meta.db_table
        self.wanted = list(wanted)
        self.prune = prune
        self.plaintexts: dict[str, Any] = {}  # token → plaintext (or Undecryptable)
        errors: list[str] = []
        for wanted_one in self.wanted:
            candidate = model(
                name=wanted_one.name,
                value="" if wanted_one.value is None else wanted_one.value,
                is_secret=bool(wanted_one.is_secret),
            )
            exclude = [self.owner] if wanted_one.value is not None else [self.owner, "value"]
            try:
                candidate.clean_fields(exclude=exclude)
            except ValidationError as error:
                errors += [
                    f"{wanted_one.name} ({field}): {message}"
                    for field, messages in error.message_dict.items()
                    for message in messages
                ]
        if errors:
            raise ValidationError(errors)
        # Encrypted when planned (`_seal`: only new and changed values, once each), which
        # `prepare` does before the transaction.
        self.sealed: dict[str, crypto.Ciphertext] = {}
        self.prepared: tuple[Any, list[Stored], Plan[D]] | None = None

    def prepare(
        self, owner: VariableGroup | Project | None, rows: list[Stored] | None = None
    ) -> None:
        """Plan against the owner's rows as they are now (None: an owner to be created),
        before the transaction; `rows` (from `stored_rows`) saves the query."""
        rows = self.rows(owner) if rows is None else rows
        self.prepared = (owner, rows, self._plan(owner, rows))

    def rows(self, owner: VariableGroup | Project | None) -> list[Stored]:
        """The owner's rows as stored now (one query)."""
        if owner is None or owner.pk is None:
            return []
        return stored_rows(self.model, **{self.owner: owner}).get(owner.pk, [])

    def _seal(self, name: str, value: str) -> crypto.Ciphertext:
        if name not in self.sealed:
            self.sealed[name] = crypto.Ciphertext(crypto.encrypt(value))
            self.plaintexts[self.sealed[name]] = value
        return self.sealed[name]

    def _open(self, row: Stored) -> Any:
        """The row's plaintext, decrypted once (only rows whose value is compared or
        scanned are)."""
        if row.token not in self.plaintexts:
            try:
                plaintext: Any = crypto.decrypt(row.token, table=self.table, row=row.id, cache=True)
            except crypto.DecryptionError:
                # Equal to nothing: any new value replaces it; kept, it stays as stored.
                plaintext = crypto.Undecryptable(self.table, "value", row.token, row.id)
            self.plaintexts[row.token] = plaintext
        return self.plaintexts[row.token]

    def plan(
        self,
        owner: VariableGroup | Project,
        *,
        allow_loader_names: bool,
        rows: list[Stored] | None = None,
    ) -> Plan[D]:
        """What writing the wanted definitions into `owner` changes, from its rows as they are
        now (`rows`, or one query). Raises ValidationError as full_clean would (with the
        organization's rule for runner-loader names: `allow_loader_names`)."""
        for wanted in self.wanted:
            if is_loader_name(wanted.name):
                try:
                    validate_loader_name(wanted.name, allowed=allow_loader_names)
                except ValidationError as error:
                    raise ValidationError({"name": error.messages}) from None
        rows = self.rows(owner) if rows is None else rows
        if self.prepared is not None and self.prepared[1] == rows:
            prepared_owner, _, plan = self.prepared
            if prepared_owner is None:  # the owner was created since: its definitions too
                for definition in plan.created + plan.result:
                    setattr(definition, self.owner, owner)
            return plan
        return self._plan(owner, rows)

    def _plan(self, owner: VariableGroup | Project | None, rows: list[Stored]) -> Plan[D]:
        stored = {row.name: row for row in rows}
        plan: Plan[D] = Plan(self.model, plaintexts=self.plaintexts)
        for wanted in self.wanted:
            row = stored.pop(wanted.name, None)
            if row is None:
                if wanted.value is None:
                    raise ValidationError({"value": "A value is required (it may be empty text)."})
                token = self._seal(wanted.name, wanted.value)
                definition = self._definition(
                    owner, None, wanted.name, token, bool(wanted.is_secret)
                )
                plan.created.append(definition)
                self._result(plan, owner, definition, wanted.value)
                continue
            is_secret = row.is_secret if wanted.is_secret is None else wanted.is_secret
            # A secret kept as it is needs no plaintext: nothing compares or scans it.
            current = self._open(row) if wanted.value is not None or not is_secret else None
            value_changed = wanted.value is not None and current != wanted.value
            if not value_changed and is_secret == row.is_secret:
                plan.unchanged.append(wanted.name)
                continue
            token = (
                self._seal(wanted.name, wanted.value)
                if value_changed
                else crypto.Ciphertext(row.token)
            )
            definition = self._definition(owner, row, row.name, token, is_secret)
            # "Not a secret" acknowledged one value; a new value has to be judged again.
            definition.not_a_secret = False if value_changed else row.not_a_secret
            plan.updated.append(definition)
            self._result(plan, owner, definition, wanted.value if value_changed else current)
        if self.prune:
            plan.deleted = [self._definition(owner, row, row.name) for row in stored.values()]
        return plan

    def _definition(
        self,
        owner: Any,
        row: Stored | None,
        name: str,
        token: crypto.Ciphertext | None = None,
        is_secret: bool | None = None,
    ) -> D:
        """An instance holding the value as its token: saved or copied to history as is."""
        definition = self.model(**{self.owner: owner}, name=name)
        if row is not None:
            definition.pk = row.id
            definition.value = crypto.Ciphertext(row.token)
            definition.is_secret = row.is_secret
            definition.not_a_secret = row.not_a_secret
        if token is not None:
            definition.value = token
        if is_secret is not None:
            definition.is_secret = is_secret
        return definition

    def _result(self, plan: Plan[D], owner: Any, definition: D, plaintext: Any) -> None:
        if definition.is_secret or definition.not_a_secret or not isinstance(plaintext, str):
            return  # nothing the credential scan looks at (or a value no key decrypts)
        result = self.model(
            **{self.owner: owner},
            name=definition.name,
            is_secret=definition.is_secret,
            not_a_secret=definition.not_a_secret,
        )
        result.value = plaintext
        plan.result.append(result)


def stored_rows(model: type[D], **owners: Any) -> dict[int, list[Stored]]:
    """The rows of every owner matching the filter (`group=g`, `project__organization=o`),
    by owner id, in id order: one query."""
    owner_id = f"{_owner_field(model)}_id"
    found: dict[int, list[Stored]] = {}
    for owner, *row in (
        model._default_manager.filter(**owners)
        .order_by("pk")
        .values_list(
            owner_id, "id", "name", crypto.stored_token("value"), "is_secret", "not_a_secret"
        )
    ):
        found.setdefault(owner, []).append(Stored(*row))
    return found


def combined(plans: Iterable[Plan[D]], model: type[D]) -> Plan[D]:
    """The plans of many owners as one, for `write` to write in a constant number of
    statements whatever the number of owners."""
    total: Plan[D] = Plan(model)
    for plan in plans:
        total.created += plan.created
        total.updated += plan.updated
        total.unchanged += plan.unchanged
        total.deleted += plan.deleted
        total.result += plan.result
        total.plaintexts.update(plan.plaintexts)
    return total


def write(plan: Plan) -> None:
    """Write the plan (inside the caller's transaction) and its history rows."""
    model = plan.model
    manager = model._default_manager
    using = router.db_for_write(model)
    if plan.deleted:
        ids = [d.pk for d in plan.deleted]
        # No per-row signals or collector: nothing references a definition, and the
        # history rows are written below.
        for start in range(0, len(ids), BATCH_SIZE):
            manager.filter(pk__in=ids[start : start + BATCH_SIZE])._raw_delete(using)
        history_record(model, plan.deleted, "-")
    if plan.created:
        manager.bulk_create(plan.created, batch_size=BATCH_SIZE)
        history_record(model, plan.created, "+")
    if plan.updated:
        now = timezone.now()
        for definition in plan.updated:
            definition.updated_at = now
        rows_update(
            model,
            match=["id"],
            assign=UPDATED_FIELDS,
            rows=[[d.pk, *(getattr(d, f) for f in UPDATED_FIELDS)] for d in plan.updated],
            batch_size=BATCH_SIZE,
        )
        history_record(model, plan.updated, "~")
    table = model._meta.db_table
    written = [
        (definition.value, plaintext, definition.pk)
        for definition in plan.created + plan.updated
        if isinstance(plaintext := plan.plaintexts.get(definition.value), str)
    ]

    def remember() -> None:
        for token, plaintext, row in written:
            crypto.remember(token, plaintext, table=table, row=row)

    # Once committed: a write rolled back (a dry run, a failure) leaves no plaintext behind.
    transaction.on_commit(remember, using=using)
    written_rows = plan.created + plan.updated + plan.deleted
    if written_rows:  # bulk writes send no signals: the change's event is made here
        from orgenv.notifications.changes import touched_in_bulk

        # A combined plan writes the rows of many owners: one event per owner, the owners
        # read in one query.
        attribute = f"{_owner_field(model)}_id"
        names: dict[int, list[str]] = {}
        for row in written_rows:
            names.setdefault(getattr(row, attribute), []).append(row.name)
        owner_model = VariableGroup if model is Variable else Project
        owners = owner_model.objects.in_bulk(list(names))
        touched_in_bulk([(owners[pk], names[pk]) for pk in names if pk in owners])


def history_record(model: type[Any], instances: list[Any], history_type: str) -> None:
    """History rows for instances saved ("+", "~") or deleted ("-") in bulk, made as
    simple-history makes them for one save (HistoricalRecords.create_historical_record),
    pre_create_historical_record included, then inserted in batches (their ids are not read
    back, and post_create_historical_record, which orgenv does not use, is not sent)."""
    history = model.history.model
    rows = _history_rows(model, instances, history_type)
    fields = [f.attname for f in history._meta.concrete_fields if not f.primary_key]
    rows_insert(
        history,
        fields=fields,
        rows=[[getattr(row, name) for name in fields] for row in rows],
        batch_size=BATCH_SIZE,
    )


def _history_rows(model: type[Any], instances: list[Any], history_type: str) -> list[Any]:
    history = model.history.model
    now = timezone.now()
    rows = []
    for instance in instances:
        user = history.get_default_history_user(instance)
        reason = get_change_reason_from_object(instance)
        row = history(
            history_date=now,
            history_type=history_type,
            history_user=user,
            history_change_reason=reason,
            **{f.attname: getattr(instance, f.attname) for f in history.tracked_fields},
        )
        pre_create_historical_record.send(
            sender=history,
            instance=instance,
            history_date=now,
            history_user=user,
            history_change_reason=reason,
            history_instance=row,
            using=None,
        )
        rows.append(row)
    return rows


def history_record_m2m(model: type[Any], instances: list[Any], history_type: str) -> None:
    """history_record for a model whose history also keeps many-to-many fields (projects:
    members and teams; groups: projects and teams; teams: members): each history row with
    the snapshot of the instance's links as they now are, as simple-history writes it after
    a save or an m2m change (HistoricalRecords.create_historical_record_m2ms; its m2m
    signals, which orgenv does not use, are not sent). A constant number of statements per
    batch of instances."""
    if not instances:
        return
    history = model.history.model
    rows = _history_rows(model, instances, history_type)
    history._default_manager.bulk_create(rows, batch_size=BATCH_SIZE)  # ids read back
    row_of = {row.id: row for row in rows}  # the instance's id → its history row
    for m2m in history._history_m2m_fields:
        m2m_history = HistoricalRecords.m2m_models[m2m]
        through = getattr(model, m2m.name).through
        own = m2m.m2m_field_name()  # the through table's column naming the instance
        other = m2m.m2m_reverse_field_name()
        links = []
        ids = list(row_of)
        for start in range(0, len(ids), 4 * BATCH_SIZE):
            links += through._default_manager.filter(
                **{f"{own}_id__in": ids[start : start + 4 * BATCH_SIZE]}
            ).values_list("id", f"{own}_id", f"{other}_id")
        m2m_history._default_manager.bulk_create(
            [
                m2m_history(
                    **{"id": link, "history": row_of[owner], f"{own}_id": owner},
                    **{f"{other}_id": target},
                )
                for link, owner, target in links
            ],
            batch_size=BATCH_SIZE,
        )
