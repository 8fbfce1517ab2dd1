"""A refused request (403) logs one line naming who, from where, what and which path."""

from __future__ import annotations

import logging

from django.contrib.auth.models import User

from orgenv.models import Membership
from tests.conftest import make_group


def forbidden_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "django.request" and r.status_code == 403]


def test_a_permission_denied_logs_one_line_without_a_traceback(client, world, caplog):
    group = make_group(world.acme, "prod", access="all")
    version = group.history.earliest()
    client.force_login(world.alice)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.post(
            f"/admin/orgenv/variablegroup/{group.pk}/history/{version.history_id}/",
            {"name": "x"},
            REMOTE_ADDR="203.0.113.5",
        )
    assert response.status_code == 403
    [record] = forbidden_records(caplog)
    assert record.exc_info is None
    assert record.getMessage() == (
        f"Forbidden (403): alice from 203.0.113.5: POST /admin/orgenv/variablegroup/{group.pk}"
        f"/history/{version.history_id}/: History is read-only: a past version is restored "
        "with Restore this version."
    )
    formatted = logging.Formatter().format(record)
    assert "\n" not in formatted and "Traceback" not in formatted


def test_a_403_without_a_reason_still_names_who_and_what(client, world, caplog):
    dave = User.objects.create_user("dave", password="x", is_staff=True)
    Membership.objects.create(user=dave, organization=world.acme, role="member")
    client.force_login(dave)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get("/admin/orgenv/project/", REMOTE_ADDR="198.51.100.2").status_code == 403
    [record] = forbidden_records(caplog)
    assert record.getMessage() == (
        "Forbidden (403): dave from 198.51.100.2: GET /admin/orgenv/project/"
    )
    assert record.exc_info is None
