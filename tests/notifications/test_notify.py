"""notify(): one outbox row in the change's transaction, its mails sent by the worker after
the commit — never before, never for a change rolled back, never with a value."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from orgenv.actors import acting_as
from orgenv.models import Membership, Notification
from orgenv.notifications import events, notify
from orgenv.notifications.tasks import recover
from tests.notifications.worker import failures, run_ready, run_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def mails(settings, world):
    """Notification mails on (EMAIL_URL set; the test backend keeps them in mail.outbox),
    alice with an address, and a second admin of acme."""
    settings.EMAIL_URL = "smtp://mail.invalid"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    world.alice.email = "alice@acme.example"
    world.alice.save()
    dora = User.objects.create_user("dora", email="dora@acme.example", is_staff=True)
    Membership.objects.create(user=dora, organization=world.acme, role="admin")
    return mail.outbox


def group_changed(world, **kwargs):
    return notify(
        events.GROUP_CHANGED,
        organization=world.acme,
        data={"group": "production", "names": ["DB_PASSWORD"], "version": 7},
        link="/admin/orgenv/variablegroup/1/change/",
        **kwargs,
    )


def test_a_committed_change_is_mailed_to_the_admins_after_the_commit(
    world, mails, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic(), acting_as("alice", world.alice):
            notification = group_changed(world, email_to="admins")
            # Inside the transaction: the row is there, nothing is enqueued or sent.
            assert DBTaskResult.objects.count() == 0
    assert len(callbacks) == 1 and DBTaskResult.objects.count() == 1
    assert mails == []

    run_ready()

    assert sorted(m.to[0] for m in mails) == ["alice@acme.example", "dora@acme.example"]
    message = mails[0]
    assert message.subject == "[orgenv] acme: alice changed group production"
    assert "Names: DB_PASSWORD" in message.body
    assert "Open: http://127.0.0.1:8000/admin/orgenv/variablegroup/1/change/" in message.body
    notification.refresh_from_db()
    assert notification.emailed_at is not None and notification.email_due_at is None
    assert notification.dispatched_at is not None
    assert notification.data["actor"] == "alice" and notification.data["organization"] == "acme"
    assert failures() == []


def test_a_rolled_back_change_leaves_no_row_and_sends_nothing(
    world, mails, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                group_changed(world, email_to="admins")
                raise RuntimeError("the change failed")
    assert callbacks == []
    assert Notification.objects.count() == 0
    assert run_ready() == 0 and mails == []


def test_a_lost_enqueue_is_recovered_by_the_periodic_task(world, mails, settings):
    """The outbox row committed but its task never made it to the queue (the process died
    between the commit and the enqueue): recover() finds it once it is overdue."""
    settings.NOTIFICATION_RECOVER_AFTER_SECONDS = 60
    notification = group_changed(world, email_to="admins")  # no on_commit runs here
    recover.call()
    assert run_ready() == 0, "not overdue yet: its own task may still be on its way"

    Notification.objects.filter(pk=notification.pk).update(
        created_at=timezone.now() - timedelta(minutes=2),
        email_due_at=timezone.now() - timedelta(minutes=2),
    )
    assert recover.call() == {"notifications": 1, "deliveries": 0}
    run_ready()
    assert len(mails) == 2
    # Sent once: a second recovery finds nothing owed.
    assert recover.call() == {"notifications": 0, "deliveries": 0}


def test_mail_goes_to_the_users_named_and_only_to_active_ones(world, mails):
    world.bob.email = "bob@acme.example"
    world.bob.save()
    gone = User.objects.create_user("gone", email="gone@acme.example", is_active=False)
    notification = group_changed(world, email_to=[world.bob, gone.pk])
    from orgenv.notifications.tasks import dispatch

    dispatch.call(notification.pk)
    assert [m.to for m in mails] == [["bob@acme.example"]]


def test_an_admin_membership_without_staff_status_gets_no_admin_mail(world, mails):
    Membership.objects.filter(user__username="dora").update(role="member")
    erin = User.objects.create_user("erin", email="erin@acme.example", is_staff=False)
    Membership.objects.create(user=erin, organization=world.acme, role="admin")
    from orgenv.notifications.tasks import dispatch

    dispatch.call(group_changed(world, email_to="admins").pk)
    assert [m.to for m in mails] == [["alice@acme.example"]]


def test_without_email_url_no_mail_is_owed(world, mails, settings):
    settings.EMAIL_URL = ""
    notification = group_changed(world, email_to="admins")
    assert notification.email_due_at is None
    from orgenv.notifications.tasks import dispatch

    dispatch.call(notification.pk)
    assert mails == []


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_mail_server_that_refuses_is_tried_again_later(world, mails, settings):
    """SMTP on a closed loopback port refuses the connection: the mails are due again after
    a backoff, and go once the server answers."""
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.2
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port()
    settings.EMAIL_TIMEOUT = 2
    notification = group_changed(world, email_to="admins")
    from orgenv.notifications.tasks import dispatch

    dispatch.call(notification.pk)
    notification.refresh_from_db()
    assert notification.email_attempts == 1 and notification.emailed_at is None
    assert notification.email_due_at > timezone.now()
    assert DBTaskResult.objects.ready().count() == 0, "its retry waits for its time"

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    run_until(lambda: len(mails) == 2)
    notification.refresh_from_db()
    assert notification.email_attempts == 2 and notification.emailed_at is not None


@pytest.mark.parametrize("key", ["value", "secret", "values"])
def test_data_that_would_carry_a_value_is_refused(world, key):
    with pytest.raises(ValueError, match="never carry a value"):
        notify(events.GROUP_CHANGED, organization=world.acme, data={key: "hunter2"})
    assert Notification.objects.count() == 0


def test_an_unknown_event_type_is_refused(world):
    with pytest.raises(ValueError, match="unknown event type 'group.renamed'"):
        notify("group.renamed", organization=world.acme, data={})


def test_notify_writes_one_row_in_one_insert(world, django_assert_num_queries):
    with django_assert_num_queries(1):  # INSERT the notification
        group_changed(world, email_to="admins")
