"""The Webhooks tab in Chromium at 1280 and 360 px: add an endpoint (its secret shown once),
send it a test event that a real receiver on 127.0.0.1 verifies, read the delivery log,
redeliver, rotate, disable."""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook

from orgenv.models import WebhookDelivery
from tests.browser.test_workspace import demo, no_horizontal_scroll, shoot, sign_in, width
from tests.notifications.receiver import Reply, receiving
from tests.notifications.worker import run_ready

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

__all__ = ["demo", "width"]  # fixtures shared with the workspace's tests


def test_an_admin_adds_a_webhook_tests_it_and_reads_its_log(page, demo, width, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    with receiving(Reply(500, b'{"error": "not yet"}'), Reply(200, b"ok")) as receiver:
        sign_in(page, demo)
        page.goto(f"{demo}/admin/orgs/acme/")
        tabs = page.get_by_role("navigation", name="Workspace of acme")
        tabs.get_by_role("link", name="Webhooks").click()
        assert "No webhook yet" in page.locator("#content-main").inner_text()
        no_horizontal_scroll(page)
        page.get_by_role("link", name="Add a webhook").click()
        page.get_by_label("Name").fill("deploy-pipeline")
        page.get_by_label("URL").fill(receiver.url)
        page.get_by_label("group.changed").check()
        page.get_by_label("webhook.test").check()
        no_horizontal_scroll(page)
        page.get_by_role("button", name="Add webhook").click()

        secret = page.get_by_label("The signing secret").input_value()
        assert secret.startswith("whsec_")
        assert "shown only this once" in page.content()
        no_horizontal_scroll(page)
        page.get_by_role("link", name="Go to webhook deploy-pipeline").click()
        assert secret not in page.content()

        page.get_by_role("button", name="Send test event").click()
        assert "Test event msg_" in page.locator(".messagelist").inner_text()
        run_ready()
        page.reload()
        log = page.locator("#delivery-log")
        assert "webhook.test" in log.inner_text() and "500" in log.inner_text()
        assert '{"error": "not yet"}' in log.inner_text()
        no_horizontal_scroll(page)

        # One attempt so far (the demo's own changes came before the endpoint did).
        page.get_by_role("button", name="Redeliver").click()
        run_ready()
        page.reload()
        assert page.locator("#delivery-log tbody tr").count() == 2
        assert "200" in page.locator("#delivery-log tbody tr").first.inner_text()
        shoot(page, "webhook", width)
        no_horizontal_scroll(page)

    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert Webhook(secret).verify(second.body, second.headers)["type"] == "webhook.test"
    assert WebhookDelivery.objects.get().status == "delivered"

    page.get_by_role("button", name="Rotate secret").click()
    new = page.get_by_label("The signing secret").input_value()
    assert new.startswith("whsec_") and new != secret
    page.get_by_role("link", name="Go to webhook deploy-pipeline").click()
    page.get_by_role("button", name="Disable").click()
    assert "disabled by admin" in page.locator(".webhook-state").inner_text()
    page.get_by_role("navigation", name="Workspace of acme").get_by_role(
        "link", name="Webhooks"
    ).click()
    row = page.locator("#webhook-deploy-pipeline")
    assert "disabled" in row.inner_text() and "webhook.test" in row.inner_text()
    no_horizontal_scroll(page)
