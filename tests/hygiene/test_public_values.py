"""Credential-looking public values: warnings in apply_config, import_env and the admin,
`scan_values`, and the "not a secret" acknowledgement. No value is ever printed."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from orgenv import services
from orgenv.models import Variable
from tests.conftest import make_group

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"


def command(name: str, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    return status, out.getvalue(), err.getvalue()


def test_apply_config_warns_about_a_public_aws_key_with_file_line_and_rule(world, tmp_path):
    config = tmp_path / "aws.yaml"
    config.write_text(
        "organizations:\n"
        "  - slug: acme\n"
        "    groups:\n"
        "      - name: aws\n"
        "        variables:\n"
        "          - {name: AWS_REGION, value: us-east-1}\n"
        f"          - {{name: AWS_ACCESS_KEY_ID, value: {AWS_KEY}}}\n"
    )
    status, out, err = command("apply_config", str(config))
    assert status == 0 and "Applied" in out
    assert err == (
        f"warning: {config}:7: AWS_ACCESS_KEY_ID is public but looks like a credential "
        "(AWS Access Key); mark it secret: true.\n"
    )
    assert AWS_KEY not in out + err

    status, out, _ = command("scan_values", "acme")
    assert status == 1
    assert out.splitlines()[0] == "acme group:aws AWS_ACCESS_KEY_ID: AWS Access Key"
    assert AWS_KEY not in out


def test_a_secret_or_an_ordinary_value_gives_no_warning_and_scan_values_exits_0(world, tmp_path):
    config = tmp_path / "ok.yaml"
    config.write_text(
        "organizations:\n"
        "  - slug: acme\n"
        "    groups:\n"
        "      - name: aws\n"
        "        variables:\n"
        f"          - {{name: AWS_ACCESS_KEY_ID, value: {AWS_KEY}, secret: true}}\n"
        "          - {name: ENDPOINT, value: 'https://api.example.com'}\n"
    )
    status, _, err = command("apply_config", str(config))
    assert status == 0 and err == ""
    assert command("scan_values", "acme") == (0, "No public value looks like a credential.\n", "")


def test_scan_values_covers_project_variables_and_every_organization_by_default(world):
    services.project_variable_set(
        project=world.globex_app,
        name="DATABASE_URL",
        value="postgres://app:s3cr3t-pw@db/app",
        is_secret=False,
    )
    make_group(world.acme, "ci", variables={"DB_PASSWORD": "hunter2"})
    status, out, _ = command("scan_values")
    assert status == 1
    assert out.splitlines()[:2] == [
        "acme group:ci DB_PASSWORD: Secret Keyword",
        "globex project:app DATABASE_URL: Basic Auth Credentials",
    ]
    assert "hunter2" not in out and "s3cr3t" not in out
    assert command("scan_values", "globex")[1].count("\n") == 2  # one finding and the summary


def test_the_not_a_secret_acknowledgement_silences_is_recorded_and_lapses_on_a_new_value(world):
    group = make_group(world.acme, "aws", variables={"KEY_ID": AWS_KEY})
    variable = group.variables.get()
    assert command("scan_values", "acme")[0] == 1

    variable.not_a_secret = True
    variable._history_user = world.alice
    variable.save()
    assert command("scan_values", "acme")[0] == 0
    latest = variable.history.first()
    assert latest.not_a_secret and latest.history_user == world.alice

    # Re-applying the same value keeps the acknowledgement; a new value must be judged again.
    services.variable_set(group=group, name="KEY_ID", value=AWS_KEY, is_secret=False)
    assert command("scan_values", "acme")[0] == 0
    services.variable_set(group=group, name="KEY_ID", value="AKIAI44QH8DHBEXAMPLE", is_secret=False)
    variable.refresh_from_db()
    assert not variable.not_a_secret
    assert command("scan_values", "acme")[0] == 1


def test_import_env_warns_with_file_line_and_rule(world, tmp_path):
    make_group(world.acme, "backend")
    env = tmp_path / "app.env"
    env.write_text(f"REGION=eu\nSTRIPE_KEY=sk_live_a1b2c3d4e5f6g7h8i9j0k1l2\nTOKEN={AWS_KEY}\n")
    status, out, err = command("import_env", "acme/backend", str(env), "--secret", "TOKEN")
    assert status == 0 and "3 created" in out
    # One warning for the name, with every reason: detect-secrets' rules, and the name-based
    # proposal that the admin's Paste .env makes.
    assert err.splitlines() == [
        f"warning: {env}:2: STRIPE_KEY is public but looks like a credential "
        "(Base64 High Entropy String, Stripe Access Key; the name ends with _KEY); import it "
        "with --secret STRIPE_KEY."
    ]
    assert "sk_live" not in out + err and AWS_KEY not in out + err


def test_the_admin_warns_after_saving_a_group_and_the_acknowledgement_is_a_field(client, world):
    group = make_group(world.acme, "aws")
    client.force_login(world.alice)
    form = {
        "organization": str(world.acme.pk),
        "name": "aws",
        "description": "",
        "environment": "",
        "priority": "0",
        "access": "selected",
        "variables-TOTAL_FORMS": "1",
        "variables-INITIAL_FORMS": "0",
        "variables-MIN_NUM_FORMS": "0",
        "variables-MAX_NUM_FORMS": "1000",
        "variables-0-group": str(group.pk),
        "variables-0-name": "AWS_ACCESS_KEY_ID",
        "variables-0-value": AWS_KEY,
        "_continue": "Save",
    }
    response = client.post(f"/admin/orgenv/variablegroup/{group.pk}/change/", form, follow=True)
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    warning = (
        "AWS_ACCESS_KEY_ID (group:aws) is public but looks like a credential (AWS Access Key). "
        "Mark it secret, or tick “not a secret” if it is meant to be public."
    )
    assert warning in messages
    assert all(AWS_KEY not in m for m in messages)

    variable = Variable.objects.get(group=group)
    form.update(
        {
            "variables-INITIAL_FORMS": "1",
            "variables-0-id": str(variable.pk),
            "variables-0-not_a_secret": "on",
        }
    )
    response = client.post(f"/admin/orgenv/variablegroup/{group.pk}/change/", form, follow=True)
    assert warning not in [str(m) for m in response.context["messages"]]
    variable.refresh_from_db()
    assert variable.not_a_secret
    assert variable.history.first().history_user == world.alice


@pytest.mark.django_db
def test_the_demo_keeps_one_public_credential_looking_value():
    out = io.StringIO()
    call_command("demo", stdout=out)
    assert "DATASETS_MIRROR_URL is public but looks like a credential" in out.getvalue()
    status, listed, _ = command("scan_values", "acme")
    assert status == 1
    assert listed.splitlines()[0] == (
        "acme group:ml-training-secrets DATASETS_MIRROR_URL: Basic Auth Credentials"
    )
    assert "public-reader" not in out.getvalue() + listed


def test_import_env_names_a_secret_looking_name_once_and_not_an_imported_secret(world, tmp_path):
    make_group(world.acme, "backend")
    env = tmp_path / "app.env"
    env.write_text("REGION=eu\nAPI_TOKEN=abc\nDB_PASSWORD=correct-horse\n")
    status, _, err = command("import_env", "acme/backend", str(env), "--secret", "DB_PASSWORD")
    assert status == 0
    assert err.splitlines() == [
        f"warning: {env}:2: API_TOKEN is public but looks like a credential (the name ends "
        "with _TOKEN); import it with --secret API_TOKEN."
    ]
