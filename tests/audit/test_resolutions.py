"""orgenv.audit.resolutions: decrypt, record, then answer; nothing served unrecorded."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from orgenv.audit.resolutions import resolution_deliver, resolution_record
from orgenv.crypto import DecryptionError
from orgenv.models import AuditEvent
from orgenv.selectors.layers import load_layers
from tests.conftest import make_group


@pytest.fixture
def layers(world):
    make_group(world.acme, "g", access="all", variables={"MODE": "live"}, secrets={"PW": "pw-1"})
    return load_layers(world.web)


def test_a_delivery_withholds_secrets_unless_asked_and_records_names_only(layers):
    withheld = resolution_deliver(layers=layers, secrets=False, detail={})
    shown = resolution_deliver(layers=layers, secrets=True, actor="ops", detail={"format": "json"})
    assert withheld.payload["variables"] == {"MODE": "live", "PW": None}
    assert shown.payload["variables"] == {"MODE": "live", "PW": "pw-1"}
    assert shown.payload["secrets"] == ["PW"]
    events = AuditEvent.objects.order_by("pk")
    assert [e.pk for e in events] == [withheld.event.pk, shown.event.pk]
    assert {e.kind for e in events} == {AuditEvent.Kind.RESOLUTION}
    assert shown.event.sources == {"MODE": "group:g", "PW": "group:g"}
    assert withheld.event.detail == {"secrets_withheld": True}
    assert shown.event.detail == {"format": "json"}
    assert (shown.event.actor, shown.event.project_slug, shown.event.organization_slug) == (
        "ops",
        "web",
        "acme",
    )
    assert "pw-1" not in str(list(events.values()))


def test_a_value_no_key_decrypts_leaves_no_event(layers, settings):
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(DecryptionError):
        resolution_deliver(layers=layers, secrets=True, detail={})
    assert not AuditEvent.objects.exists()
    # A fetch that delivers nothing is still recorded, without decrypting anything.
    event = resolution_record(layers=layers, detail={"not_modified": True})
    assert event.detail == {"not_modified": True}
