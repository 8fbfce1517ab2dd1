"""A value whose key is gone can be seen to be broken and repaired without raw SQL: every
page that lists or shows it says "cannot be decrypted (key missing)" with its table and id,
and overwriting or deleting it needs no plaintext (all of these failed before)."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from orgenv import crypto
from orgenv.models import ProjectVariable, Variable
from tests.conftest import confirmed, make_group

NOTE = crypto.UNDECRYPTABLE


@pytest.fixture
def broken(world):
    """Group `g` (reaching acme/web) with a public value LOST whose key is gone, beside a good
    one; and a project variable of web that is lost too."""
    group = make_group(
        world.acme, "g", projects=[world.web], variables={"GOOD": "fine", "LOST": "x"}
    )
    ProjectVariable.objects.create(project=world.web, name="PLOST", value="y")
    stray = Fernet(Fernet.generate_key()).encrypt(b"gone").decode()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Variable._meta.db_table} SET value = %s WHERE name = 'LOST'", [stray]
        )
        cursor.execute(f"UPDATE {ProjectVariable._meta.db_table} SET value = %s", [stray])
    return group


def lost() -> Variable:
    return Variable.objects.get(name="LOST")


def test_the_admin_pages_show_the_row_as_undecryptable_with_table_and_id(client, world, broken):
    client.force_login(world.alice)
    pk = lost().pk
    for url in (
        "/admin/orgenv/variable/",
        "/admin/orgenv/projectvariable/",
        f"/admin/orgenv/variablegroup/{broken.pk}/change/",
        f"/admin/orgenv/variable/{pk}/change/",
        f"/admin/orgenv/project/{world.web.pk}/change/",
        f"/admin/orgenv/variable/{pk}/delete/",
        f"/admin/orgenv/variablegroup/{broken.pk}/delete/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    page = client.get(f"/admin/orgenv/variable/{pk}/change/").content.decode()
    assert f"{NOTE}: {Variable._meta.db_table} id {pk}" in page
    page = client.get(f"/admin/orgenv/project/{world.web.pk}/change/").content.decode()
    assert f"{NOTE}: {ProjectVariable._meta.db_table} id" in page  # the effective environment


def test_the_member_page_shows_the_note_and_the_other_values(client, world, broken):
    client.force_login(world.bob)
    page = client.get("/orgs/acme/projects/web/environment/").content.decode()
    assert "fine" in page and NOTE in page


def test_the_admin_overwrites_it_without_its_plaintext(client, world, broken):
    client.force_login(world.alice)
    pk = lost().pk
    response = client.post(
        f"/admin/orgenv/variable/{pk}/change/",
        {"group": broken.pk, "name": "LOST", "value": "replaced", "_save": "Save"},
    )
    response = confirmed(client, response)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert lost().value == "replaced"


def test_saving_its_page_blank_keeps_the_stored_token(client, world, broken):
    client.force_login(world.alice)
    pk = lost().pk
    response = client.post(
        f"/admin/orgenv/variable/{pk}/change/",
        {"group": broken.pk, "name": "LOST", "value": "", "is_secret": "on", "_save": "Save"},
    )
    response = confirmed(client, response)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert lost().is_secret and isinstance(lost().value, crypto.Undecryptable)


def test_the_admin_deletes_it(client, world, broken):
    client.force_login(world.alice)
    pk = lost().pk
    # Its deletion page shows the impact (the value reads "cannot be decrypted"), and
    # confirming it as shown deletes it.
    page = client.get(f"/admin/orgenv/variable/{pk}/delete/")
    assert page.status_code == 200 and "LOST" in page.content.decode()
    shown_at = page.context["deletion"].generation
    response = client.post(
        f"/admin/orgenv/variable/{pk}/delete/", {"post": "yes", "_impact_generation": shown_at}
    )
    assert response.status_code == 302
    assert not Variable.objects.filter(pk=pk).exists()
    assert Variable.history.filter(id=pk, history_type="-").exists()  # history kept the token


def test_delete_in_code_works(broken):
    lost().delete()
    ProjectVariable.objects.get().delete()
    assert list(Variable.objects.values_list("name", flat=True)) == ["GOOD"]


def test_apply_config_prune_deletes_it(world, broken, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "organizations:\n  - slug: acme\n    groups:\n      - name: g\n"
        "        variables:\n          - {name: GOOD, value: fine}\n"
    )
    call_command("apply_config", str(path), "--prune", stdout=io.StringIO())
    assert list(Variable.objects.values_list("name", flat=True)) == ["GOOD"]


def test_import_env_overwrites_it(world, broken, tmp_path):
    path = tmp_path / "vars.env"
    path.write_text("LOST=new value\n")
    call_command("import_env", "acme/g", str(path), stdout=io.StringIO())
    assert lost().value == "new value"


def test_resolution_still_refuses_to_serve_it(client, world, broken):
    from orgenv.tokens import token_issue

    raw = token_issue(project=world.web, name="ci")[1]
    response = client.get("/api/v1/environment", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 500  # an error, never the ciphertext
    assert "gAAAA" not in response.content.decode()
