"""The organization's generation, and the database triggers that replace it.

Every write that can change a resolution of one of an organization's projects (a definition,
a group, a grant, a team link, a project, the organization itself) replaces the
organization's generation in the same statement's transaction, whatever wrote it: the ORM,
`QuerySet.update()`, `bulk_create`, raw SQL or a database console. App servers key the layers
they keep by it (orgenv.selectors.layers.cached_layers), so correctness never depends on
application code remembering to invalidate anything.
"""

from django.db import migrations, models

import orgenv.models

# table -> (the table holding organization_id, the column that points at it), or None when
# the table has organization_id itself
OWNER = {
    "orgenv_variable": ("orgenv_variablegroup", "group_id"),
    "orgenv_projectvariable": ("orgenv_project", "project_id"),
    "orgenv_variablegroup": None,
    "orgenv_project": None,
    "orgenv_team": None,
    "orgenv_variablegroup_projects": ("orgenv_variablegroup", "variablegroup_id"),
    "orgenv_variablegroup_teams": ("orgenv_variablegroup", "variablegroup_id"),
    "orgenv_project_teams": ("orgenv_project", "project_id"),
}


def organization_of_row(table: str, row: str) -> str:
    """SQL for the organization id of one row (NEW or OLD) of `table`."""
    owner = OWNER[table]
    if owner is None:
        return f"{row}.organization_id"
    return f"(SELECT organization_id FROM {owner[0]} WHERE id = {row}.{owner[1]})"


def organizations_of_rows(table: str, rows: str) -> str:
    """SQL selecting the organization ids of the rows of a transition table."""
    owner = OWNER[table]
    if owner is None:
        return f"SELECT organization_id FROM {rows}"
    return f"SELECT o.organization_id FROM {owner[0]} o JOIN {rows} r ON o.id = r.{owner[1]}"


# A fresh non-negative 62-bit number, as orgenv.models.new_generation makes.
RANDOM = {
    "sqlite": "(random() & 4611686018427387903)",
    "postgresql": "floor(random() * 4611686018427387903)::bigint",
}
ROWS = {"INSERT": ("NEW",), "UPDATE": ("NEW", "OLD"), "DELETE": ("OLD",)}


def sqlite_statements() -> tuple[list[str], list[str]]:
    create, drop = [], []
    for table in OWNER:
        for operation, rows in ROWS.items():
            name = f"{table}_generation_{operation.lower()}"
            ids = ", ".join(organization_of_row(table, row) for row in rows)
            create.append(
                f"CREATE TRIGGER {name} AFTER {operation} ON {table} BEGIN "
                f"UPDATE orgenv_organization SET generation = {RANDOM['sqlite']} "
                f"WHERE id IN ({ids}); END"
            )
            drop.append(f"DROP TRIGGER IF EXISTS {name}")
    # Any update of the organization (its slug is in every answer) gets a fresh generation:
    # a stale object saved by the ORM can never bring an old one back. (SQLite does not let a
    # trigger fire itself again.)
    create.append(
        "CREATE TRIGGER orgenv_organization_generation AFTER UPDATE ON orgenv_organization "
        f"BEGIN UPDATE orgenv_organization SET generation = {RANDOM['sqlite']} "
        "WHERE id = NEW.id; END"
    )
    drop.append("DROP TRIGGER IF EXISTS orgenv_organization_generation")
    return create, drop


def postgresql_statements() -> tuple[list[str], list[str]]:
    # Statement-level triggers over transition tables: a statement that writes 2,000 rows
    # (a rotation batch, an import) replaces each organization's generation once, not 2,000
    # times. (A trigger with transition tables may have only one event: three per table.)
    create, drop = [], []
    bump = f"UPDATE orgenv_organization SET generation = {RANDOM['postgresql']} WHERE id IN"
    for table in OWNER:
        function = f"{table}_generation"
        create.append(
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF TG_OP <> 'DELETE' THEN {bump} ({organizations_of_rows(table, 'new_rows')}); "
            "END IF; "
            f"IF TG_OP <> 'INSERT' THEN {bump} ({organizations_of_rows(table, 'old_rows')}); "
            "END IF; RETURN NULL; END $$"
        )
        for operation, rows in ROWS.items():
            name = f"{table}_generation_{operation.lower()}"
            referencing = " ".join(f"{row} TABLE AS {row.lower()}_rows" for row in rows)
            create.append(
                f"CREATE TRIGGER {name} AFTER {operation} ON {table} REFERENCING {referencing} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
            drop.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        drop.append(f"DROP FUNCTION IF EXISTS {function}()")
    create.append(
        "CREATE FUNCTION orgenv_organization_generation() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN NEW.generation := {RANDOM['postgresql']}; RETURN NEW; END $$"
    )
    create.append(
        "CREATE TRIGGER orgenv_organization_generation BEFORE UPDATE ON orgenv_organization "
        "FOR EACH ROW EXECUTE FUNCTION orgenv_organization_generation()"
    )
    drop.append("DROP TRIGGER IF EXISTS orgenv_organization_generation ON orgenv_organization")
    drop.append("DROP FUNCTION IF EXISTS orgenv_organization_generation()")
    return create, drop


STATEMENTS = {"sqlite": sqlite_statements, "postgresql": postgresql_statements}


def _run(schema_editor, which: int) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in STATEMENTS:
        raise RuntimeError(
            f"orgenv's generation triggers are written for SQLite and PostgreSQL, not {vendor}."
        )
    for statement in STATEMENTS[vendor]()[which]:
        schema_editor.execute(statement)


def create_triggers(apps, schema_editor) -> None:
    _run(schema_editor, 0)


def drop_triggers(apps, schema_editor) -> None:
    _run(schema_editor, 1)


class Migration(migrations.Migration):
    dependencies = [
        ("orgenv", "0005_app_server"),
    ]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="generation",
            field=models.PositiveBigIntegerField(
                default=orgenv.models.new_generation, editable=False
            ),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
