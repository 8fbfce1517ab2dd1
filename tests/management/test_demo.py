"""The demo command: the docs/demo.md table exactly, only into an empty database, no
plaintext at rest."""

from __future__ import annotations

import io

import pytest
import yaml
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection

from orgenv.management.commands.demo import DEMO_FILE
from orgenv.models import Membership, Organization, Project, Team, Variable, VariableGroup
from orgenv.selectors.layers import load_layers, plaintext, reveal

# docs/demo.md, transcribed by hand (not read from demo.yaml, so the file is checked).
PROJECTS = {
    "production_db": "production",
    "production-ml": "production",
    "production-api": "production",
    "staging_jobs": "staging",
    "staging-api": "staging",
    "dev-experiments": "development",
}
S = True  # secret
GROUPS = {
    # name: (environment, access, selected projects, teams, {variable: (value, secret)})
    "production": (
        "production", "selected", {"production_db"}, set(),
        {"PRODUCTION_ENVVAR": ("production", False), "PRODUCTION_SECRET": ("hidden", S)},
    ),
    "staging": (
        "staging", "selected", {"staging_jobs"}, set(),
        {"STAGING_ENVVAR": ("staging", False), "STAGING_SECRET": ("hidden", S)},
    ),
    "shared-infrastructure": (
        "", "all", set(), set(),
        {
            "DOCKER_REGISTRY_URL": ("registry.acme.example.com", False),
            "SHARED_S3_BUCKET": ("s3://acme-shared", False),
            "API_ENDPOINT": ("https://api.production.example.com", False),
        },
    ),
    "ml-training-secrets": (
        "", "selected", set(), {"ml"},
        {
            "WANDB_API_KEY": ("wandb-demo-key", S),
            "MLFLOW_TRACKING_URI": ("https://mlflow.acme.example.com", False),
            # Beyond the SPEC table, deliberately: the public value scan_values warns about.
            "DATASETS_MIRROR_URL": (
                "https://reader:public-reader@datasets.acme.example.com/mirror",
                False,
            ),
        },
    ),
    "production-db": (
        "production", "selected", {"production_db", "production-ml", "production-api"}, set(),
        {
            "DATABASE_URL": ("postgresql://user:pass@db.acme.example.com/mldata", S),
            "DATABASE_PASSWORD": ("pass", S),
            "DB_POOL_SIZE": ("10", False),
        },
    ),
    "external-apis": (
        "", "selected", {"production-ml", "production-api"}, set(),
        {"OPENAI_API_KEY": ("sk-demo", S), "HUGGINGFACE_TOKEN": ("hf_demo", S)},
    ),
    "aws-credentials": (
        "production", "selected", {"production-ml"}, set(),
        {
            "AWS_ACCESS_KEY_ID": ("AKIADEMO", S),
            "AWS_SECRET_ACCESS_KEY": ("demo-secret", S),
            "AWS_DEFAULT_REGION": ("us-east-1", False),
        },
    ),
    "private-repos": (
        "", "all", set(), set(),
        {
            "PRIVATE_PYPI_INDEX_URL": ("https://user:pass@pypi.acme.example.com/simple", S),
            "NPM_TOKEN": ("npm_demo", S),
        },
    ),
    # The seed's own examples: ENVIRONMENT and API_KEY, one group per environment.
    **{
        f"runtime-{env}": (
            env, "all", set(), set(),
            {"ENVIRONMENT": (env, False), "API_KEY": (f"demo-{env}-api-key", S)},
        )
        for env in ("production", "staging", "development")
    },
}  # fmt: skip


def demo() -> str:
    out = io.StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def test_demo_loads_exactly_the_spec_table(db):
    demo()
    acme = Organization.objects.get()
    assert acme.slug == "acme"
    assert dict(acme.projects.values_list("slug", "environment")) == PROJECTS
    actual = {}
    for group in VariableGroup.objects.prefetch_related("projects", "teams", "variables"):
        actual[group.name] = (
            group.environment,
            group.access,
            {p.slug for p in group.projects.all()},
            {t.slug for t in group.teams.all()},
            {v.name: (v.value, v.is_secret) for v in group.variables.all()},
        )
    assert actual == GROUPS
    ml = Team.objects.get(organization=acme)
    assert ml.slug == "ml"
    assert {p.slug for p in ml.projects.all()} == {"production-ml", "dev-experiments"}
    assert [u.username for u in ml.members.all()] == ["alice"]
    staging_api = Project.objects.get(slug="staging-api")
    assert [(v.name, v.value, v.is_secret) for v in staging_api.variables.all()] == [
        ("API_ENDPOINT", "https://api.staging.example.com", False)
    ]
    assert [u.username for u in Project.objects.get(slug="staging_jobs").members.all()] == ["alice"]


def test_demo_users_can_sign_in_and_admin_administers_acme_without_being_superuser(db, client):
    demo()
    admin = User.objects.get(username="admin")
    assert admin.is_staff and not admin.is_superuser
    assert Membership.objects.get(user=admin).role == "admin"
    alice = User.objects.get(username="alice")
    assert not alice.is_staff
    assert Membership.objects.get(user=alice).role == "member"
    for username in ("admin", "alice"):
        response = client.post("/accounts/login/", {"username": username, "password": username})
        assert response.status_code == 302, username
        assert client.session["_auth_user_id"] == str(User.objects.get(username=username).pk)
        client.logout()
    # admin is an organization admin in the Django admin, through its membership alone
    client.post("/admin/login/", {"username": "admin", "password": "admin"})
    response = client.get("/admin/orgenv/variablegroup/")
    assert response.status_code == 200
    assert b"ml-training-secrets" in response.content


def test_production_db_resolves_to_what_the_spec_table_grants_it(db):
    demo()
    resolved = load_layers(Project.objects.get(slug="production_db")).resolution.variables
    assert {name: (reveal(r), r.source) for name, r in resolved.items()} == {
        "PRODUCTION_ENVVAR": ("production", "group:production"),
        "PRODUCTION_SECRET": ("hidden", "group:production"),
        "DOCKER_REGISTRY_URL": ("registry.acme.example.com", "group:shared-infrastructure"),
        "SHARED_S3_BUCKET": ("s3://acme-shared", "group:shared-infrastructure"),
        "API_ENDPOINT": ("https://api.production.example.com", "group:shared-infrastructure"),
        "DATABASE_URL": (
            "postgresql://user:pass@db.acme.example.com/mldata",
            "group:production-db",
        ),
        "DATABASE_PASSWORD": ("pass", "group:production-db"),
        "DB_POOL_SIZE": ("10", "group:production-db"),
        "PRIVATE_PYPI_INDEX_URL": (
            "https://user:pass@pypi.acme.example.com/simple",
            "group:private-repos",
        ),
        "NPM_TOKEN": ("npm_demo", "group:private-repos"),
        "ENVIRONMENT": ("production", "group:runtime-production"),
        "API_KEY": ("demo-production-api-key", "group:runtime-production"),
    }
    staging_api = load_layers(Project.objects.get(slug="staging-api")).resolution.variables
    assert reveal(staging_api["API_ENDPOINT"]) == "https://api.staging.example.com"
    assert staging_api["API_ENDPOINT"].source == "project"


def test_every_project_gets_the_seed_examples_of_its_own_environment(db):
    demo()
    for slug, environment in PROJECTS.items():
        layers = load_layers(Project.objects.get(slug=slug))
        values = plaintext(layers)
        assert values["ENVIRONMENT"] == environment, slug
        assert values["API_KEY"] == f"demo-{environment}-api-key", slug
        assert "API_KEY" in layers.resolution.secrets


def test_running_demo_twice_changes_nothing(db):
    demo()
    admin = User.objects.get(username="admin")
    admin.set_password("changed-by-the-admin")
    admin.save()

    def state():
        return (
            Variable.history.count(),
            VariableGroup.history.count(),
            Project.history.count(),
            Team.history.count(),
            Membership.history.count(),
            Variable.objects.count(),
            User.objects.count(),
        )

    before = state()
    output = demo()
    assert "already holds data (2 user(s), 1 organization(s))" in output
    assert "nothing was changed" in output
    assert state() == before
    # passwords are set only when the user is created
    assert User.objects.get(username="admin").check_password("changed-by-the-admin")


def test_a_rotated_secret_and_a_removed_grant_survive_another_run(db):
    """What `make run` does at every start must not undo the admin's work."""
    demo()
    secret = Variable.objects.get(name="PRODUCTION_SECRET")
    secret.value = "rotated-by-the-admin"
    secret.save()
    external = VariableGroup.objects.get(name="external-apis")
    external.projects.remove(Project.objects.get(slug="production-api"))
    demo()
    assert Variable.objects.get(name="PRODUCTION_SECRET").value == "rotated-by-the-admin"
    assert set(external.projects.values_list("slug", flat=True)) == {"production-ml"}


def test_demo_changes_nothing_in_a_database_with_other_users(db):
    User.objects.create_user("operator", password="operator-password", is_superuser=True)
    output = demo()
    assert "already holds data (1 user(s), 0 organization(s))" in output
    assert not User.objects.filter(username="admin").exists()
    assert not Organization.objects.exists()


def _demo_values() -> set[str]:
    """Every variable value of the demo file, minus those that double as names or labels
    ("production", "staging") and the very short ones ("10", "pass")."""
    data = yaml.safe_load(DEMO_FILE.read_text())
    values, words = set(), set()
    for org in data["organizations"]:
        for item in org["projects"] + org["groups"]:
            words.update(str(item.get(k, "")) for k in ("slug", "name", "environment"))
            values.update(str(v["value"]) for v in item.get("variables", []))
    return {v for v in values if len(v) > 4 and v not in words}


def test_no_table_holds_any_demo_value_in_plaintext(db):
    demo()
    # Touch every value once more so history tables hold updates too, not only creations.
    call_command("rotate_keys", stdout=io.StringIO())
    values = _demo_values()
    assert {"hidden", "sk-demo", "us-east-1", "registry.acme.example.com"} <= values
    tables = connection.introspection.table_names()
    assert "orgenv_historicalvariable" in tables
    scanned = 0
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                scanned += 1
                text = " ".join(
                    bytes(cell).decode("utf-8", "replace")
                    if isinstance(cell, bytes | memoryview)
                    else str(cell)
                    for cell in row
                )
                leaked = [v for v in values if v in text]
                assert not leaked, f"{table} holds {leaked} in plaintext"
    assert scanned > 100


@pytest.mark.parametrize("name", ["demo.yaml"])
def test_the_demo_file_ships_inside_the_package(name):
    assert DEMO_FILE.name == name and DEMO_FILE.is_file()
