"""Runner-loader names (LD_PRELOAD, PYTHONPATH, DYLD_*, …) change how every program of every
runner starts: refused on every write path unless the organization allows them, a setting
that is itself recorded in the audit log."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from orgenv import configuration, services
from orgenv.audit import timeline
from orgenv.models import Organization, ProjectVariable, Variable
from orgenv.validators import LOADER_NAMES, is_loader_name
from tests.conftest import make_group

WHY = "changes how every program of every runner starts"


@pytest.mark.parametrize("name", [*sorted(LOADER_NAMES), "DYLD_INSERT_LIBRARIES"])
def test_each_loader_name_is_recognised(name):
    assert is_loader_name(name)


@pytest.mark.parametrize(
    "name", ["LD_PRELOAD_X", "ld_preload", "PYTHONPATHS", "ENVIRONMENT", "MY_DYLD_X"]
)
def test_names_that_merely_look_alike_are_ordinary(name):
    assert not is_loader_name(name)


def test_the_services_refuse_a_loader_name_until_the_organization_allows_it(world):
    group = make_group(world.acme, "g", access="all")
    with pytest.raises(ValidationError) as refused:
        services.variable_set(group=group, name="LD_PRELOAD", value="/tmp/x.so", is_secret=False)
    assert WHY in refused.value.message_dict["name"][0]
    with pytest.raises(ValidationError):
        services.project_variable_set(
            project=world.web, name="NODE_OPTIONS", value="--require x", is_secret=False
        )
    assert not Variable.objects.exists() and not ProjectVariable.objects.exists()

    services.organization_set(slug="acme", allow_loader_names=True)
    services.variable_set(group=group, name="LD_PRELOAD", value="/opt/x.so", is_secret=False)
    services.project_variable_set(
        project=world.web, name="NODE_OPTIONS", value="--max-old-space-size=4096", is_secret=False
    )
    assert Variable.objects.get().name == "LD_PRELOAD"
    # The other organization's setting is its own.
    globex_group = make_group(world.globex, "g", access="all")
    with pytest.raises(ValidationError):
        services.variable_set(group=globex_group, name="BASH_ENV", value="x", is_secret=False)


def test_the_admin_refuses_it_and_says_why(client, world):
    group = make_group(world.acme, "g", access="all")
    client.force_login(world.alice)
    response = client.post(
        "/admin/orgenv/variable/add/",
        {"group": str(group.pk), "name": "PYTHONSTARTUP", "value": "/tmp/evil.py", "_save": "Save"},
    )
    assert response.status_code == 200
    assert WHY in response.content.decode()
    assert not Variable.objects.exists()


def test_allowing_them_is_an_admin_setting_recorded_in_the_audit_log(client, world):
    client.force_login(world.alice)
    page = client.get(f"/admin/orgenv/organization/{world.acme.pk}/change/").content.decode()
    assert 'name="allow_loader_names"' in page
    services.organization_set(slug="acme", allow_loader_names=True)
    [entry] = [
        e
        for e in timeline.page(world.acme, timeline.Filters(), 0, 50, timeline.Index.of(world.acme))
        if e.what == "organization acme" and e.kind == "changed"
    ]
    assert entry.changes == ["allow_loader_names: False → True"]
    assert "allow_loader_names: False → True" in client.get("/orgs/acme/audit/").content.decode()


def test_apply_config_names_the_line_and_honours_the_files_setting(world, tmp_path):
    text = (
        "organizations:\n"
        "  - slug: acme\n"
        "    groups:\n"
        "      - name: g\n"
        "        variables:\n"
        "          - {name: JAVA_TOOL_OPTIONS, value: -javaagent:x.jar}\n"
    )
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(CommandError) as refused:
        call_command("apply_config", str(path), stdout=io.StringIO())
    assert (
        f"{path}:6: organizations[0].groups[0].variables[0].name: 'JAVA_TOOL_OPTIONS' {WHY}"
        in str(refused.value)
    )
    path.write_text(
        text.replace("  - slug: acme\n", "  - slug: acme\n    allow_loader_names: true\n")
    )
    call_command("apply_config", str(path), stdout=io.StringIO())
    assert Organization.objects.get(slug="acme").allow_loader_names
    assert Variable.objects.get().name == "JAVA_TOOL_OPTIONS"
    # A file that leaves the key out keeps the setting.
    config = configuration.read(str(path), environ={})
    assert config.organizations[0].allow_loader_names is True


def test_import_env_names_the_line(world, tmp_path):
    make_group(world.acme, "g", access="all")
    env = tmp_path / "app.env"
    env.write_text("FINE=1\nPERL5OPT=-Mevil\n")
    with pytest.raises(CommandError) as refused:
        call_command("import_env", "acme/g", str(env), stdout=io.StringIO())
    assert f"{env}:2: 'PERL5OPT' {WHY}" in str(refused.value)
    assert not Variable.objects.exists()
