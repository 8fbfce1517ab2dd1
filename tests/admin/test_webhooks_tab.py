"""The workspace's Webhooks tab over HTTP (Django's test client): add, the secret shown once,
settings, the buttons, the delivery log, and who may do any of it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from orgenv.models import AuditEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from orgenv.notifications import endpoints
from tests.notifications.receiver import Reply, receiving
from tests.notifications.worker import run_ready

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, world, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    client.force_login(world.alice)
    return client


def tab(org="acme"):
    return reverse("admin:orgenv_webhooks", args=(org,))


def page(endpoint):
    return reverse("admin:orgenv_webhook", args=(endpoint.organization.slug, endpoint.pk))


def act(endpoint):
    return reverse("admin:orgenv_webhook_action", args=(endpoint.organization.slug, endpoint.pk))


def make(world, name="deploy", url="https://hooks.example.com/orgenv", org=None, **kwargs):
    kwargs.setdefault("events", ["group.changed"])
    return endpoints.endpoint_create(organization=org or world.acme, name=name, url=url, **kwargs)[
        0
    ]


def test_adding_a_webhook_shows_its_secret_once(admin_client, world):
    response = admin_client.post(
        reverse("admin:orgenv_webhook_add", args=("acme",)),
        {
            "name": "deploy",
            "url": "https://hooks.example.com/orgenv",
            "events": ["group.changed", "token.revoked"],
            "format": "standard",
        },
    )
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("no-store")
    endpoint = WebhookEndpoint.objects.get()
    secret = endpoint.secret
    assert secret.startswith("whsec_") and secret in response.content.decode()
    assert endpoint.events == ["group.changed", "token.revoked"]
    for url in (tab(), page(endpoint)):
        body = admin_client.get(url).content.decode()
        assert "deploy" in body and secret not in body
    event = AuditEvent.objects.get(kind="webhook_changed")
    assert event.detail["action"] == "added" and secret not in str(event.detail)
    assert event.actor == "alice"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"url": "http://hooks.example.com/x"}, "url", "Use https: http is only allowed"),
        ({"url": "https://user:pw@hooks.example.com/x"}, "url", "Leave the user name"),
        ({"url": "ftp://hooks.example.com/x"}, "url", "Enter an https:// URL"),
        ({"name": "no spaces"}, "name", "A name is 1 to 64 letters"),
        ({"events": []}, "events", "This field is required"),
    ],
)
def test_bad_input_names_the_field_and_saves_nothing(admin_client, fields, field, message):
    data = {
        "name": "deploy",
        "url": "https://hooks.example.com/x",
        "events": ["group.changed"],
        "format": "standard",
        **fields,
    }
    response = admin_client.post(reverse("admin:orgenv_webhook_add", args=("acme",)), data)
    assert response.status_code == 400
    assert message in str(response.context["form"].errors[field])
    assert WebhookEndpoint.objects.count() == 0


def test_a_second_webhook_of_the_same_name_is_refused(admin_client, world):
    make(world)
    response = admin_client.post(
        reverse("admin:orgenv_webhook_add", args=("acme",)),
        {"name": "deploy", "url": "https://h.example.com/", "events": ["group.changed"]}
        | {"format": "slack"},
    )
    assert response.status_code == 400
    assert "acme already has a webhook named deploy." in response.content.decode()


def test_settings_are_changed_from_the_endpoints_page(admin_client, world):
    endpoint = make(world)
    response = admin_client.post(
        page(endpoint),
        {
            "name": "deploy-hook",
            "url": "https://hooks.example.com/v2",
            "events": ["token.created"],
            "format": "slack",
        },
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.url, endpoint.events, endpoint.format) == (
        "deploy-hook",
        "https://hooks.example.com/v2",
        ["token.created"],
        "slack",
    )


def test_rotate_shows_the_new_secret_once_and_keeps_the_old_one_signing(admin_client, world):
    endpoint = make(world)
    old = endpoint.secret
    response = admin_client.post(act(endpoint), {"action": "rotate"})
    assert response.status_code == 200 and response["Cache-Control"].startswith("no-store")
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret in response.content.decode()
    assert endpoint.secrets_in_use() == [endpoint.secret, old]
    assert "two signatures" in response.content.decode()


def test_disable_and_enable(admin_client, world):
    endpoint = make(world)
    admin_client.post(act(endpoint), {"action": "disable"})
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_reason == "disabled by alice"
    admin_client.post(act(endpoint), {"action": "enable"})
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_reason == ""


def test_send_test_event_then_the_log_shows_the_attempt_and_redeliver_sends_it_again(
    admin_client, world, django_capture_on_commit_callbacks
):
    with receiving(Reply(500, b"receiver says <no>"), Reply(200, b"thanks")) as receiver:
        endpoint = make(world, url=receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(act(endpoint), {"action": "test"}, follow=True)
        assert "Test event msg_" in response.content.decode()
        run_ready()
        body = admin_client.get(page(endpoint)).content.decode()
        assert "webhook.test" in body and "500" in body
        assert "receiver says &lt;no&gt;" in body, "the answer is shown, escaped"
        delivery = WebhookDelivery.objects.get()
        with django_capture_on_commit_callbacks(execute=True):
            admin_client.post(act(endpoint), {"action": "redeliver", "delivery": delivery.pk})
        run_ready()
    assert len(receiver.received) == 2
    assert WebhookDelivery.objects.get().status == "delivered"
    assert WebhookAttempt.objects.count() == 2


def test_remove_asks_then_removes(admin_client, world):
    endpoint = make(world)
    assert "Yes, remove deploy" in admin_client.get(
        reverse("admin:orgenv_webhook_delete", args=("acme", endpoint.pk))
    ).content.decode("utf-8")
    response = admin_client.post(reverse("admin:orgenv_webhook_delete", args=("acme", endpoint.pk)))
    assert response.status_code == 302 and WebhookEndpoint.objects.count() == 0


def test_an_endpoint_of_another_organization_is_404(client, world):
    theirs = make(world, org=world.globex)
    client.force_login(world.alice)
    # Through acme's workspace (which alice administers): not acme's endpoint.
    for url in (
        reverse("admin:orgenv_webhook", args=("acme", theirs.pk)),
        reverse("admin:orgenv_webhook_delete", args=("acme", theirs.pk)),
    ):
        assert client.get(url).status_code == 404
    assert (
        client.post(
            reverse("admin:orgenv_webhook_action", args=("acme", theirs.pk)), {"action": "disable"}
        ).status_code
        == 404
    )
    theirs.refresh_from_db()
    assert theirs.enabled


def test_redeliver_of_another_endpoints_delivery_is_404(admin_client, world, settings):
    mine, other = make(world), make(world, name="other")
    endpoints.endpoint_test(endpoint=other)
    delivery = WebhookDelivery.objects.get()
    response = admin_client.post(act(mine), {"action": "redeliver", "delivery": delivery.pk})
    assert response.status_code == 404


def attempts(endpoint, count):
    notification = endpoints.endpoint_test(endpoint=endpoint)
    delivery = WebhookDelivery.objects.get(notification=notification)
    WebhookAttempt.objects.bulk_create(
        WebhookAttempt(delivery=delivery, endpoint=endpoint, number=n + 1, status_code=500)
        for n in range(count)
    )


def test_the_tab_and_the_log_cost_the_same_queries_at_two_sizes(
    admin_client, world, django_assert_max_num_queries
):
    def queries(url):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url).status_code == 200
        return len(captured)

    first = make(world)
    attempts(first, 3)
    small = (queries(tab()), queries(page(first)))
    for n in range(8):
        attempts(make(world, name=f"hook-{n}"), 2)
    attempts(first, 120)
    large = (queries(tab()), queries(page(first)))
    assert small == large
    body = admin_client.get(page(first)).content.decode()
    assert "Older attempts" in body
    older = admin_client.get(page(first) + "?before=" + body.split("?before=")[1].split("#")[0])
    assert older.status_code == 200
