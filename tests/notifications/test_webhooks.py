"""Webhook deliveries to a real HTTP server on 127.0.0.1, made by the task worker's own code
(tests/notifications/worker.py): signed the Standard Webhooks way and checked with that
library's verifier, retried, refused where the SSRF rule says so, never followed elsewhere."""

from __future__ import annotations

import json
import socket
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from orgenv.models import Notification, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from orgenv.notifications import endpoints, events, notify
from orgenv.notifications.tasks import disable_failing, recover
from tests.notifications.receiver import Reply, receiving
from tests.notifications.worker import failures, run_ready, run_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def loopback(settings):
    """Deliveries may reach 127.0.0.1 over http (as an operator allows an internal host),
    and retries come quickly."""
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.05
    return settings


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what the services enqueue after their commit (the test's transaction never
    commits)."""

    def run(function, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return function(*args, **kwargs)

    return run


def add_endpoint(world, url, **kwargs):
    kwargs.setdefault("events", [events.GROUP_CHANGED])
    return endpoints.endpoint_create(organization=world.acme, name="deploy", url=url, **kwargs)


def group_changed(world):
    return notify(
        events.GROUP_CHANGED,
        organization=world.acme,
        actor="alice",
        data={"group": "production", "names": ["DB_PASSWORD"], "projects_affected": ["web"]},
        link="/admin/orgenv/variablegroup/1/change/",
    )


def test_a_delivery_is_signed_and_verifies_with_the_standard_webhooks_library(
    world, loopback, committed
):
    with receiving() as receiver:
        endpoint, secret = add_endpoint(world, receiver.url)
        notification = committed(group_changed, world)
        run_ready()
    assert secret.startswith("whsec_")
    [request] = receiver.received
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload == {
        "type": "group.changed",
        "timestamp": notification.created_at.isoformat().replace("+00:00", "Z"),
        "data": {
            "organization": "acme",
            "actor": "alice",
            "group": "production",
            "names": ["DB_PASSWORD"],
            "projects_affected": ["web"],
            "url": "http://127.0.0.1:8000/admin/orgenv/variablegroup/1/change/",
        },
    }
    assert request.headers["webhook-id"] == notification.message_id
    assert abs(int(request.headers["webhook-timestamp"]) - timezone.now().timestamp()) < 10
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(endpoints.new_signing_secret()).verify(request.body, request.headers)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "delivered" and delivery.attempts == 1
    [attempt] = WebhookAttempt.objects.all()
    assert (attempt.status_code, attempt.response, attempt.delivered) == (200, "ok", True)
    assert attempt.duration_ms is not None and attempt.finished_at is not None
    assert failures() == []


def test_500_twice_then_200_is_three_attempts_with_one_id(world, loopback, committed):
    with receiving(Reply(500, b"boom"), Reply(500, b"boom"), Reply(200)) as receiver:
        add_endpoint(world, receiver.url)
        committed(group_changed, world)
        run_until(lambda: WebhookDelivery.objects.filter(status="delivered").exists())
    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    log = list(WebhookAttempt.objects.order_by("number").values_list("number", "status_code"))
    assert log == [(1, 500), (2, 500), (3, 200)]
    assert WebhookEndpoint.objects.get().failing_since is None, "a success clears it"


def test_retry_after_is_honoured(world, loopback, committed):
    with receiving(Reply(503, headers={"Retry-After": "120"})) as receiver:
        add_endpoint(world, receiver.url)
        committed(group_changed, world)
        run_ready()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert delivery.due_at - timezone.now() > timedelta(seconds=115)
    assert delivery.last_error == "answered 503"


def test_410_disables_the_endpoint_and_mails_the_admins(world, loopback, committed):
    with receiving(Reply(410, b"gone")) as receiver:
        endpoint, _ = add_endpoint(world, receiver.url)
        committed(group_changed, world)
        run_ready()
        committed(group_changed, world)
        run_ready()
    assert len(receiver.received) == 1, "nothing more goes to a disabled endpoint"
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    assert WebhookDelivery.objects.get().status == "failed"
    disabled = Notification.objects.get(type=events.WEBHOOK_DISABLED)
    assert disabled.email_to == "admins" and disabled.data["webhook"] == "deploy"


def test_a_slow_receiver_times_out_and_is_retried(world, loopback, committed):
    loopback.WEBHOOK_TIMEOUT = 0.5
    loopback.WEBHOOK_RETRY_BASE_SECONDS = 60
    with receiving(Reply(200, delay=3)) as receiver:
        add_endpoint(world, receiver.url)
        committed(group_changed, world)
        run_ready()
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and attempt.error == "timed out after 0.5 s"
    assert 450 <= attempt.duration_ms < 2500
    assert WebhookDelivery.objects.get().status == "pending", "retried later"


def test_a_receiver_trickling_its_answer_is_cut_at_the_timeout(world, loopback):
    """The limit is the whole attempt's, not each read's: a receiver sending a byte a
    second never holds a worker past WEBHOOK_TIMEOUT."""
    from orgenv.notifications import sending

    loopback.WEBHOOK_TIMEOUT = 0.6
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        import threading
        import time

        def trickle():
            conn, _ = server.accept()
            conn.recv(65536)
            try:
                for byte in b"HTTP/1.1 200 OK\r\n":
                    conn.sendall(bytes([byte]))
                    time.sleep(0.2)
            except OSError:
                pass
            conn.close()

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        started = time.monotonic()
        answer = sending.post(f"http://127.0.0.1:{port}/", b"{}", {})
        assert time.monotonic() - started < 1.5
        assert answer.status is None and answer.error.startswith("timed out")


def test_a_redirect_is_not_followed(world, loopback, committed):
    with receiving(Reply(302, headers={"Location": "/elsewhere"}), Reply(200)) as receiver:
        add_endpoint(world, receiver.url)
        committed(group_changed, world)
        run_ready()
    assert [r.path for r in receiver.received] == ["/hook"]
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code == 302 and not attempt.delivered
    assert attempt.error == "redirect to /elsewhere not followed"
    assert WebhookDelivery.objects.get().status == "pending"


def test_http_to_127_0_0_1_is_refused_without_webhook_allowed_hosts(world, settings, committed):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    with receiving() as receiver:
        with pytest.raises(Exception) as refused:
            add_endpoint(world, receiver.url)
        assert "Use https" in str(refused.value)
        # Saved while it was allowed, then the setting changed: refused at delivery.
        settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
        add_endpoint(world, receiver.url)
        settings.WEBHOOK_ALLOWED_HOSTS = []
        committed(group_changed, world)
        run_ready()
        # https to a loopback address: the address rule refuses it, before connecting.
        endpoint = WebhookEndpoint.objects.get()
        endpoint.url = receiver.url.replace("http://", "https://")
        endpoint.save()
        committed(group_changed, world)
        run_ready()
    assert receiver.connections == 0
    errors = list(WebhookAttempt.objects.order_by("id").values_list("error", flat=True))
    assert errors[0].startswith("refused: Use https")
    assert errors[1] == (
        "refused: 127.0.0.1 resolves to 127.0.0.1, not a public address (add the host to "
        "WEBHOOK_ALLOWED_HOSTS to allow it)"
    )


class NoDialing(socket.socket):
    """A socket that records any connection attempt instead of making it."""

    dialed: list[object] = []

    def connect(self, address):  # noqa: ANN001, ANN201
        NoDialing.dialed.append(address)
        raise AssertionError(f"a connection to {address} was attempted")


def test_a_host_resolving_to_a_private_address_is_refused_before_any_connection(
    world, settings, committed, monkeypatch
):
    """The resolver is stubbed (nothing is dialed but loopback in the tests): the name
    resolves to 10.0.0.7 and to fd00::7, and no socket is ever connected."""
    settings.WEBHOOK_ALLOWED_HOSTS = []
    real = socket.getaddrinfo

    def resolver(host, port, *args, **kwargs):
        if host == "hooks.example.com":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00::7", port, 0, 0)),
            ]
        return real(host, port, *args, **kwargs)

    add_endpoint(world, "https://hooks.example.com/orgenv")
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setattr(socket, "socket", NoDialing)
    NoDialing.dialed = []
    committed(group_changed, world)
    run_ready()
    monkeypatch.undo()
    assert NoDialing.dialed == []
    attempt = WebhookAttempt.objects.get()
    assert attempt.error == (
        "refused: hooks.example.com resolves to 10.0.0.7, fd00::7, not a public address "
        "(add the host to WEBHOOK_ALLOWED_HOSTS to allow it)"
    )


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::6810:84e5", True),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # shared address space
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:10.0.0.1", False),  # IPv4 in IPv6
        ("224.0.0.1", False),
    ],
)
def test_which_addresses_count_as_public(address, public):
    from orgenv.notifications.sending import public as is_public

    assert is_public(address) is public


def test_a_rolled_back_change_sends_nothing(world, loopback, django_capture_on_commit_callbacks):
    with receiving() as receiver:
        add_endpoint(world, receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            with pytest.raises(RuntimeError), transaction.atomic():
                group_changed(world)
                raise RuntimeError("the change failed")
        assert run_ready() == 0
    assert receiver.connections == 0
    assert Notification.objects.count() == WebhookDelivery.objects.count() == 0


def test_only_enabled_endpoints_subscribed_to_the_event_get_it(world, loopback, committed):
    with receiving() as receiver:
        add_endpoint(world, receiver.url)
        endpoints.endpoint_create(
            organization=world.acme, name="tokens", url=receiver.url, events=["token.created"]
        )
        off, _ = endpoints.endpoint_create(
            organization=world.acme, name="off", url=receiver.url, events=["group.changed"]
        )
        endpoints.endpoint_set_enabled(endpoint=off, enabled=False)
        endpoints.endpoint_create(
            organization=world.globex, name="globex", url=receiver.url, events=["group.changed"]
        )
        committed(group_changed, world)
        run_ready()
    assert len(receiver.received) == 1
    assert list(WebhookDelivery.objects.values_list("endpoint__name", flat=True)) == ["deploy"]


def test_the_slack_format_posts_a_message(world, loopback, committed):
    with receiving() as receiver:
        add_endpoint(world, receiver.url, format="slack")
        committed(group_changed, world)
        run_ready()
    message = json.loads(receiver.received[0].body)
    assert message == {
        "text": "acme: alice changed group production <http://127.0.0.1:8000/admin/orgenv/"
        "variablegroup/1/change/|Open in orgenv>"
    }


def test_a_rotated_secret_signs_beside_the_previous_one_for_24_hours(world, loopback, committed):
    with receiving() as receiver:
        endpoint, old = add_endpoint(world, receiver.url)
        new = endpoints.endpoint_rotate(endpoint=endpoint)
        committed(group_changed, world)
        run_ready()
        WebhookEndpoint.objects.update(previous_secret_until=timezone.now())
        committed(group_changed, world)
        run_ready()
    first, second = receiver.received
    assert first.headers["webhook-signature"].count("v1,") == 2
    Webhook(new).verify(first.body, first.headers)
    Webhook(old).verify(first.body, first.headers)
    assert second.headers["webhook-signature"].count("v1,") == 1
    Webhook(new).verify(second.body, second.headers)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(old).verify(second.body, second.headers)


def test_send_test_event_reaches_that_endpoint_alone_and_redeliver_keeps_the_id(
    world, loopback, committed
):
    with receiving() as receiver:
        endpoint, secret = add_endpoint(world, receiver.url, events=["webhook.test"])
        add_endpoint_other = endpoints.endpoint_create(
            organization=world.acme, name="other", url=receiver.url, events=["webhook.test"]
        )
        assert add_endpoint_other
        notification = committed(endpoints.endpoint_test, endpoint=endpoint)
        run_ready()
        delivery = WebhookDelivery.objects.get()
        committed(endpoints.delivery_redeliver, delivery=delivery)
        run_ready()
    assert [r.headers["webhook-id"] for r in receiver.received] == [notification.message_id] * 2
    payload = Webhook(secret).verify(receiver.received[0].body, receiver.received[0].headers)
    assert payload["type"] == "webhook.test" and payload["data"]["webhook"] == "deploy"
    assert WebhookAttempt.objects.count() == 2


def test_three_days_of_failure_disable_the_endpoint(world, loopback, committed):
    with receiving(Reply(500)) as receiver:
        endpoint, _ = add_endpoint(world, receiver.url)
        committed(group_changed, world)
        run_ready()
        endpoint.refresh_from_db()
        assert endpoint.enabled and endpoint.failing_since is not None
        assert disable_failing.call() == 0
        WebhookEndpoint.objects.update(failing_since=timezone.now() - timedelta(days=3, hours=1))
        assert disable_failing.call() == 1
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_reason == "every delivery failed for 3 days"
    assert Notification.objects.filter(type=events.WEBHOOK_DISABLED).count() == 1


def test_a_delivery_given_up_after_the_retry_window(world, loopback, committed):
    with receiving(Reply(500)) as receiver:
        from orgenv.notifications.webhooks import fan_out

        add_endpoint(world, receiver.url)
        committed(fan_out, group_changed(world).pk)
        WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(hours=25))
        run_ready()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and delivery.due_at is None
    assert delivery.last_error == "answered 500"


def test_a_delivery_whose_worker_died_is_recovered_and_its_lost_attempt_marked(
    world, loopback, committed, settings
):
    """The worker took the delivery (lease, attempt row) and died: once the lease is over,
    recover() enqueues it again and the next attempt marks the lost one interrupted."""
    from orgenv.notifications.webhooks import _claim

    settings.NOTIFICATION_RECOVER_AFTER_SECONDS = 0
    with receiving() as receiver:
        add_endpoint(world, receiver.url)
        group_changed(world)  # its after-commit enqueue never runs: as if lost too
        from orgenv.notifications.webhooks import fan_out

        fan_out(Notification.objects.get().pk)
        delivery = WebhookDelivery.objects.get()
        assert _claim(delivery.pk, "dead-worker") is not None
        assert recover.call()["deliveries"] == 0, "its lease still runs"
        WebhookDelivery.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
        assert recover.call()["deliveries"] == 1
        run_ready()
    assert len(receiver.received) == 1
    log = list(WebhookAttempt.objects.order_by("number").values_list("number", "error"))
    assert log == [(1, "interrupted: the worker stopped before an answer"), (2, "")]
    assert WebhookDelivery.objects.get().status == "delivered"


def test_token_events_carry_the_tokens_name_and_prefix_never_the_token(world, loopback, committed):
    from orgenv.tokens import token_issue, token_revoke

    with receiving() as receiver:
        endpoint, secret = add_endpoint(
            world, receiver.url, events=["token.created", "token.revoked"]
        )
        token, plaintext = committed(
            token_issue, project=world.web, name="ci", created_by=world.alice
        )
        committed(token_revoke, token=token)
        run_until(lambda: len(receiver.received) == 2)
    created, revoked = (Webhook(secret).verify(r.body, r.headers) for r in receiver.received)
    assert created["type"] == "token.created" and revoked["type"] == "token.revoked"
    assert created["data"]["project"] == "web" and created["data"]["token"] == "ci"
    assert created["data"]["prefix"] == token.prefix
    for request in receiver.received:
        assert plaintext.split(".", 1)[1].encode() not in request.body
