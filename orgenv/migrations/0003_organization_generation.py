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

# table -> how a row (NEW or OLD, written as `{row}`) finds its organization's id
ORGANIZATION_OF = {
    "orgenv_variable": "(SELECT organization_id FROM orgenv_variablegroup WHERE id = {row}.group_id)",
    "orgenv_projectvariable": "(SELECT organization_id FROM orgenv_project WHERE id = {row}.project_id)",
    "orgenv_variablegroup": "{row}.organization_id",
    "orgenv_project": "{row}.organization_id",
    "orgenv_team": "{row}.organization_id",
    "orgenv_variablegroup_projects": (
        "(SELECT organization_id FROM orgenv_variablegroup WHERE id = {row}.variablegroup_id)"
    ),
    "orgenv_variablegroup_teams": (
        "(SELECT organization_id FROM orgenv_variablegroup WHERE id = {row}.variablegroup_id)"
    ),
    "orgenv_project_teams": "(SELECT organization_id FROM orgenv_project WHERE id = {row}.project_id)",
}
# A fresh non-negative 62-bit number, as orgenv.models.new_generation makes.
RANDOM = {
    "sqlite": "(random() & 4611686018427387903)",
    "postgresql": "floor(random() * 4611686018427387903)::bigint",
}
ROWS = {"INSERT": ("NEW",), "UPDATE": ("NEW", "OLD"), "DELETE": ("OLD",)}


def sqlite_statements() -> tuple[list[str], list[str]]:
    create, drop = [], []
    for table, organization in ORGANIZATION_OF.items():
        for operation, rows in ROWS.items():
            name = f"{table}_generation_{operation.lower()}"
            ids = ", ".join(organization.format(row=row) for row in rows)
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
    create, drop = [], []
    for table, organization in ORGANIZATION_OF.items():
        function = f"{table}_generation"
        create.append(
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "DECLARE changed bigint[] := '{}'; BEGIN "
            f"IF TG_OP <> 'DELETE' THEN changed := changed || {organization.format(row='NEW')}; "
            "END IF; "
            f"IF TG_OP <> 'INSERT' THEN changed := changed || {organization.format(row='OLD')}; "
            "END IF; "
            f"UPDATE orgenv_organization SET generation = {RANDOM['postgresql']} "
            "WHERE id = ANY(changed); RETURN NULL; END $$"
        )
        create.append(
            f"CREATE TRIGGER {function} AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()"
        )
        drop.append(f"DROP TRIGGER IF EXISTS {function} ON {table}")
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
        ("orgenv", "0002_token_prefix_help"),
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
