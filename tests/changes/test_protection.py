"""Protection: `protected` and `required_approvals` on groups, in the workspace and in files."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from orgenv.models import VariableGroup
from tests.conftest import make_group

pytestmark = pytest.mark.django_db

FILE = """\
organizations:
  - slug: acme
    groups:
      - name: live
        environment: production
      - name: live-open
        environment: production
        protected: false
      - name: reviewed
        protected: true
        required_approvals: 2
      - name: plain
"""


def apply(tmp_path, text: str, *args: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    out = io.StringIO()
    call_command("apply_config", str(path), *args, stdout=out)
    return out.getvalue()


def test_a_new_production_group_starts_protected_unless_the_file_says_otherwise(world, tmp_path):
    apply(tmp_path, FILE)
    groups = {g.name: g for g in VariableGroup.objects.filter(organization=world.acme)}
    assert (groups["live"].protected, groups["live"].required_approvals) == (True, 1)
    assert groups["live-open"].protected is False
    assert (groups["reviewed"].protected, groups["reviewed"].required_approvals) == (True, 2)
    assert groups["plain"].protected is False


def test_an_existing_group_keeps_its_protection_when_a_file_leaves_it_out(world, tmp_path):
    make_group(world.acme, "live", environment="production")  # made before protection
    apply(tmp_path, FILE)
    assert VariableGroup.objects.get(name="live").protected is False


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("protected: yes please", "groups[0].protected: expected true or false, found text."),
        ("required_approvals: 0", "groups[0].required_approvals: from 1 to 10 approvals."),
        (
            "required_approvals: two",
            "groups[0].required_approvals: expected a whole number of approvals, found text.",
        ),
    ],
)
def test_a_bad_protection_names_its_line_and_changes_nothing(world, tmp_path, line, message):
    text = "organizations:\n  - slug: acme\n    groups:\n      - name: live\n        " + line
    with pytest.raises(CommandError) as caught:
        apply(tmp_path, text + "\n")
    assert f"config.yaml:5: organizations[0].{message}" in str(caught.value)
    assert not VariableGroup.objects.filter(name="live").exists()


def test_export_writes_the_protection_and_applies_back_to_no_change(world, tmp_path):
    apply(tmp_path, FILE)
    out = io.StringIO()
    call_command("export_config", "acme", stdout=out)
    exported = out.getvalue()
    reviewed = exported.split('name: "reviewed"')[1].split("- name:")[0]
    assert "protected: true\n        required_approvals: 2\n" in reviewed
    assert "nothing to change" in apply(tmp_path, exported)


def test_the_workspace_creates_a_production_group_protected(client, world):
    client.force_login(world.alice)
    data = {
        "organization": world.acme.pk, "name": "live", "description": "",
        "environment": "production", "priority": "0", "access": "selected",
        "required_approvals": "1",
        "variables-TOTAL_FORMS": "0", "variables-INITIAL_FORMS": "0",
        "variables-MIN_NUM_FORMS": "0", "variables-MAX_NUM_FORMS": "1000", "_save": "Save",
    }  # fmt: skip
    response = client.post("/admin/orgenv/variablegroup/add/?organization=acme", data)
    assert response.status_code == 302
    assert VariableGroup.objects.get(name="live").protected is True
    client.post(
        "/admin/orgenv/variablegroup/add/?organization=acme",
        {**data, "name": "staging", "environment": "staging"},
    )
    assert VariableGroup.objects.get(name="staging").protected is False


def test_the_variables_tab_marks_protected_groups(client, world):
    make_group(world.acme, "live", protected=True, required_approvals=2)
    make_group(world.acme, "open")
    client.force_login(world.alice)
    page = client.get("/admin/orgs/acme/").content.decode()
    row = page.split('id="group-live"')[1].split("</tr>")[0]
    assert "protected" in row and "2 approvals" in row
    assert "status-protected" not in page.split('id="group-open"')[1].split("</tr>")[0]
