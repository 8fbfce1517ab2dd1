"""A request's life outside its page: expiry, rotate_keys, two approvals at the same moment,
the operators' commands, and the tab's query count."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from orgenv.changes import services, tasks
from orgenv.changes.state import snapshot
from orgenv.models import AuditEvent, ChangeRequest, Notification, Variable
from tests.changes.conftest import NEW_SECRET, SECRET
from tests.notifications.worker import run_ready

KEY_B = Fernet.generate_key().decode()


def open_for(review, author, **variables):
    """A request by `author` setting these variables of the protected group (a value None
    removes one), as the workspace's save would capture it."""
    from dataclasses import replace

    from orgenv.changes.state import Stored, group_version
    from orgenv.crypto import Ciphertext, encrypt

    before = snapshot(review.group.pk)
    after_vars = dict(before.variables)
    for name, value in variables.items():
        if value is None:
            after_vars.pop(name)
        else:
            after_vars[name] = Stored(Ciphertext(encrypt(value)), name == "S")
    request, _ = services.request_open(
        group=review.group,
        author=author,
        before=before,
        after=replace(before, variables=after_vars),
        version=group_version(review.group.pk),
    )
    return request


@pytest.mark.django_db
def test_an_open_request_expires_after_7_days_and_its_author_is_mailed(
    world, review, django_capture_on_commit_callbacks
):
    request = open_for(review, world.alice, A="2")
    assert request.expires_at - request.created_at == timedelta(days=7)
    ChangeRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now())
    request.refresh_from_db()
    # Past its time it reads expired and cannot be approved, before the task runs.
    assert request.shown_status == "expired"
    with pytest.raises(services.Refused, match="expired"):
        services.request_approve(request=request, user=review.dora)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.expire.call() == 1
    request.refresh_from_db()
    assert request.status == "expired"
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CHANGE_EXPIRED).count() == 1
    run_ready()
    assert [m.to for m in mail.outbox if "expired" in m.subject] == [["alice@acme.example"]]
    assert Variable.objects.get(name="A").value == "1"


@pytest.mark.django_db
def test_a_request_survives_rotate_keys(world, review, settings):
    request = open_for(review, world.alice, S=NEW_SECRET)
    settings.FERNET_KEYS = [KEY_B, *settings.FERNET_KEYS]
    out = io.StringIO()
    call_command("rotate_keys", stdout=out)
    assert "orgenv_proposedvariable.value: 1 re-encrypted" in out.getvalue()
    settings.FERNET_KEYS = [KEY_B]  # the old key is gone: the request still applies
    services.request_approve(request=request, user=review.dora)
    assert Variable.objects.get(name="S").value == NEW_SECRET
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM orgenv_proposedvariable")
        (token,) = cursor.fetchone()
    assert NEW_SECRET not in token


@pytest.mark.django_db(transaction=True)
def test_two_admins_approving_at_the_same_moment_apply_it_once(world, review):
    request = open_for(review, world.alice, S=NEW_SECRET)
    history = Variable.history.filter(name="S").count()
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(user) -> None:
        from django.db import connections

        try:
            start.wait()
            services.request_approve(request=request, user=user)
            outcomes.append("approved")
        except services.Refused as refused:
            outcomes.append(str(refused))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(u,)) for u in (review.dora, review.erin)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes)[0] == "This request is applied: nothing more can be done with it."
    assert "approved" in outcomes
    assert Variable.history.filter(name="S").count() == history + 1  # applied once
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CHANGE_APPLIED).count() == 1
    assert Variable.objects.get(name="S").value == NEW_SECRET


@pytest.mark.django_db
def test_operators_commands_apply_directly_and_notify_like_forced_changes(
    world, review, tmp_path, django_capture_on_commit_callbacks
):
    path = tmp_path / "c.yaml"
    path.write_text(
        "organizations:\n  - slug: acme\n    groups:\n      - name: live\n        variables:\n"
        "          - {name: A, value: from-file}\n"
    )
    out = io.StringIO()
    before = Notification.objects.count()  # the set-up's own group.changed events
    call_command("apply_config", str(path), "--dry-run", stdout=out)
    assert "acme/live (protected): A" in out.getvalue() and "would be notified" in out.getvalue()
    assert Notification.objects.count() == before, "a dry run notifies nobody"
    with django_capture_on_commit_callbacks(execute=True):
        call_command("apply_config", str(path), stdout=io.StringIO())
    assert Variable.objects.get(name="A").value == "from-file"
    forced = Notification.objects.get(type="change.forced")
    assert forced.data["via"] == "apply_config" and forced.data["names"] == ["A"]
    env = tmp_path / "x.env"
    env.write_text(f"S={NEW_SECRET}\n")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_env", "acme/live", str(env), stdout=io.StringIO())
    assert Notification.objects.filter(type="change.forced", data__via="import_env").exists()
    run_ready()
    forced_mails = [m for m in mail.outbox if "forced a change" in m.subject]
    assert len(forced_mails) == 6  # two changes, three admins each
    assert all(NEW_SECRET not in m.body and SECRET not in m.body for m in mail.outbox)
    # An unprotected group's changes notify nobody this way.
    path.write_text(path.read_text().replace("name: live", "name: other"))
    call_command("apply_config", str(path), stdout=io.StringIO())
    assert Notification.objects.filter(type="change.forced").count() == 2


@pytest.mark.django_db
def test_the_tab_costs_the_same_queries_with_3_or_30_requests(
    client, world, review, django_assert_max_num_queries
):
    from django.test.utils import CaptureQueriesContext

    def requests(n: int) -> None:
        for i in range(n):
            request = open_for(review, review.erin if i % 2 else world.alice, A=str(i))
            if i % 3 == 0:
                services.request_withdraw(request=request, user=request.author)

    client.force_login(world.alice)
    requests(3)
    with CaptureQueriesContext(connection) as small:
        assert client.get("/admin/orgs/acme/requests/").status_code == 200
    requests(27)
    with CaptureQueriesContext(connection) as large:
        page = client.get("/admin/orgs/acme/requests/")
    assert page.status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries)
