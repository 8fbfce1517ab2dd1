"""group.changed, group.deleted and project.changed made by the changes themselves, on every
write path (the admin's pages, apply_config, import_env, services), one per group or project
per transaction, in that transaction; and no value in any payload."""

from __future__ import annotations

import json
import textwrap
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from standardwebhooks.webhooks import Webhook

from orgenv.models import Notification, ProjectVariable, Variable, VariableGroup
from orgenv.notifications import endpoints, events
from orgenv.notifications.webhooks import fan_out
from orgenv.tokens import token_issue, token_revoke
from tests.admin.test_groups import post_group
from tests.conftest import make_group, production_group
from tests.notifications.receiver import receiving
from tests.notifications.worker import run_until

pytestmark = pytest.mark.django_db

SECRET = "chg-Secret-9a1f-never-in-a-payload"
PUBLIC = "chg-public-value-5e2b-never-in-a-payload-either"


def changes(type_=None, *, sent=False):
    """The events written, as (type, data); with `sent`, as the worker sends them (the
    projects reached and the version added by its fan-out)."""
    if sent:
        for pk in Notification.objects.filter(dispatched_at__isnull=True).values_list("pk"):
            fan_out(pk[0])
    notifications = Notification.objects.order_by("id")
    if type_:
        notifications = notifications.filter(type=type_)
    return [(n.type, n.data) for n in notifications]


def test_saving_a_group_in_one_transaction_is_one_event_with_every_name(world):
    group = production_group(world)  # created: one event already
    Notification.objects.all().delete()
    with transaction.atomic():
        Variable.objects.create(group=group, name="A", value=PUBLIC)
        Variable.objects.create(group=group, name="B", value=SECRET, is_secret=True)
        Variable.objects.filter(name="A").get().delete()
    [(_, written)] = changes()
    assert "projects_affected" not in written, "the change's transaction pays one INSERT"
    [(type_, data)] = changes(sent=True)
    assert type_ == "group.changed"
    assert data["group"] == "production" and data["names"] == ["A", "B"]
    assert data["projects_affected"] == ["web"] and data["projects_affected_count"] == 1
    assert isinstance(data["version"], int)
    assert data["url"].endswith(f"/admin/orgenv/variablegroup/{group.pk}/change/")


def test_a_change_rolled_back_leaves_no_event(world):
    group = production_group(world)
    Notification.objects.all().delete()
    with pytest.raises(RuntimeError), transaction.atomic():
        Variable.objects.create(group=group, name="A", value=SECRET)
        raise RuntimeError
    with transaction.atomic():  # the next transaction starts afresh
        Variable.objects.create(group=group, name="C", value="x")
    assert [d["names"] for _, d in changes()] == [["C"]]


def test_the_admins_group_page_emits_group_changed_with_the_acting_admin(client, world):
    group = production_group(world, secrets={"DB_PASSWORD": "old"})
    Notification.objects.all().delete()
    client.force_login(world.alice)
    variable = group.variables.get()
    response = post_group(
        client,
        group,
        [{"id": variable.pk, "name": "DB_PASSWORD", "value": SECRET, "is_secret": True}],
    )
    assert response.status_code == 302
    [(type_, data)] = changes()
    assert type_ == "group.changed" and data["names"] == ["DB_PASSWORD"]
    assert data["actor"] == "alice"
    assert SECRET not in json.dumps(data)


def test_a_preview_that_rolls_back_emits_nothing_and_confirm_emits_once(client, world):
    group = production_group(world, variables={"LOG_LEVEL": "info"})
    Notification.objects.all().delete()
    client.force_login(world.alice)
    variable = group.variables.get()
    from tests.admin.test_groups import change_url, group_data

    data = group_data(group, [{"id": variable.pk, "name": "LOG_LEVEL", "value": "debug"}])
    preview = client.post(change_url(group), data)
    assert preview.status_code == 200 and preview.context.get("preview") is not None
    assert changes() == [], "the previewed save was rolled back, its event with it"
    from tests.conftest import confirmed

    assert confirmed(client, preview).status_code == 302
    assert [d["names"] for _, d in changes()] == [["LOG_LEVEL"]]


def test_an_event_costs_the_change_one_insert(world, django_assert_num_queries):
    group = production_group(world, variables={"A": "1"})
    variable = group.variables.get()
    with transaction.atomic():
        variable.value = "2"
        # UPDATE the variable, INSERT its history row, INSERT the event: nothing else.
        with django_assert_num_queries(3):
            variable.save()
    assert changes()[-1][1]["names"] == ["A"]


def test_deleting_a_group_is_group_deleted_alone(world):
    group = production_group(world, variables={"A": "1", "B": "2"})
    Notification.objects.all().delete()
    with transaction.atomic():
        group.delete()
    [(type_, data)] = changes()
    assert type_ == "group.deleted"
    assert data["group"] == "production" and data["names"] == ["A", "B"]
    assert data["projects_affected"] == ["web"]


def test_deleting_an_organization_or_a_project_emits_nothing_for_what_goes_with_it(world):
    make_group(world.acme, "shared", variables={"A": "1"}, access="all")
    ProjectVariable.objects.create(project=world.web, name="LOCAL", value="x")
    Notification.objects.all().delete()
    with transaction.atomic():
        world.web.delete()
    assert [t for t, _ in changes()] == []
    world.acme.delete()
    assert list(Notification.objects.values_list("type", "data")) == []


def test_project_variables_emit_project_changed(world):
    with transaction.atomic():
        ProjectVariable.objects.create(project=world.web, name="LOCAL", value=SECRET)
    [(type_, data)] = changes()
    assert type_ == "project.changed"
    assert data["project"] == "web" and data["names"] == ["LOCAL"]
    assert data["projects_affected"] == ["web"]


def test_a_grant_from_the_projects_side_changes_the_groups_reach(world):
    group = make_group(world.acme, "payments", variables={"A": "1"})
    Notification.objects.all().delete()
    with transaction.atomic():
        world.web.granted_groups.add(group)
    data = changes("group.changed", sent=True)[-1][1]
    assert data["group"] == "payments" and data["projects_affected"] == ["web"]


def test_a_group_for_all_projects_lists_them_and_counts_them(world, monkeypatch):
    from orgenv.models import Project
    from orgenv.notifications import changes as module

    monkeypatch.setattr(module, "PROJECTS_LISTED", 2)
    for slug in ("a1", "a2", "a3"):
        Project.objects.create(organization=world.acme, slug=slug, name=slug)
    make_group(world.acme, "everyone", variables={"X": "1"}, access="all")
    data = changes("group.changed", sent=True)[-1][1]
    assert data["projects_affected"] == ["a1", "a2"]
    assert data["projects_affected_count"] == 4


def apply(text, **options):
    path = options.pop("path")
    path.write_text(textwrap.dedent(text))
    call_command("apply_config", str(path), stdout=StringIO(), **options)


CONFIG = f"""
organizations:
  - slug: acme
    name: Acme ML
    projects:
      - slug: web
        name: Web
        environment: production
    groups:
      - name: production
        environment: production
        projects: [web]
        variables:
          - name: DB_PASSWORD
            value: "{SECRET}"
            secret: true
          - name: LOG_LEVEL
            value: "{PUBLIC}"
"""


def test_apply_config_emits_one_event_per_group_and_a_dry_run_none(world, tmp_path):
    Notification.objects.all().delete()
    apply(CONFIG, path=tmp_path / "c.yaml", dry_run=True)
    assert changes() == []
    apply(CONFIG, path=tmp_path / "c.yaml")
    [(type_, data)] = changes("group.changed")
    assert data["names"] == ["DB_PASSWORD", "LOG_LEVEL"]
    assert data["actor"] == "system:apply_config"
    payloads = json.dumps([n.data for n in Notification.objects.all()])
    assert SECRET not in payloads and PUBLIC not in payloads


def test_no_value_reaches_a_receiver_from_any_path(world, settings, tmp_path, client):
    """Every kind of change this installation makes, to an endpoint subscribed to every
    event: the values set, secret and public, are in no body (grep)."""
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    client.force_login(world.alice)
    with receiving() as receiver:
        _, secret = endpoints.endpoint_create(
            organization=world.acme,
            name="everything",
            url=receiver.url,
            events=list(events.WEBHOOK_EVENTS),
        )
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=True):
            apply(CONFIG, path=tmp_path / "c.yaml")
        with TestCase.captureOnCommitCallbacks(execute=True):
            group = VariableGroup.objects.get(name="production")
            variable = group.variables.get(name="DB_PASSWORD")
            post_group(
                client,
                group,
                [
                    {"id": variable.pk, "name": "DB_PASSWORD", "value": SECRET + "2"},
                    {"name": "NEW", "value": PUBLIC + "2"},
                ],
            )
        with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
            ProjectVariable.objects.create(project=world.web, name="P", value=SECRET + "3")
        with TestCase.captureOnCommitCallbacks(execute=True):
            token, plaintext = token_issue(project=world.web, name="ci")
            token_revoke(token=token)
        with TestCase.captureOnCommitCallbacks(execute=True):
            endpoints.endpoint_test(endpoint=endpoints.WebhookEndpoint.objects.get())
        with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
            VariableGroup.objects.get(name="production").delete()
        expected = Notification.objects.exclude(type=events.WEBHOOK_DISABLED).count()
        run_until(lambda: len(receiver.received) >= expected)
    types = {json.loads(r.body)["type"] for r in receiver.received}
    assert types >= {
        "group.changed",
        "group.deleted",
        "project.changed",
        "token.created",
        "token.revoked",
        "webhook.test",
    }
    values = [SECRET, PUBLIC, SECRET + "2", PUBLIC + "2", SECRET + "3", plaintext]
    for request in receiver.received:
        Webhook(secret).verify(request.body, request.headers)
        for value in values:
            assert value.encode() not in request.body, json.loads(request.body)["type"]
