"""Serving processes record themselves for rotate_keys: name and key-ring fingerprints, never
a key; a server that answered long ago no longer holds rotation back."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.utils import timezone

from orgenv import rotation
from orgenv.models import AppServer

KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture
def heartbeat(settings):
    settings.HEARTBEAT_SECONDS = 10
    rotation.Heartbeat._next = 0.0  # this process has not recorded itself yet
    yield
    rotation.Heartbeat._next = 0.0


def test_an_answering_process_records_its_name_and_key_ring(client, db, heartbeat, settings):
    settings.FERNET_KEYS = [KEY_A]
    client.get("/accounts/login/")
    server = AppServer.objects.get()
    assert server.name == f"{socket.gethostname()}:{os.getpid()}"
    assert server.key_fingerprints == [rotation.key_fingerprint(KEY_A)]
    assert KEY_A not in str(server.key_fingerprints)


def test_only_a_recent_server_without_the_new_key_holds_rotation_back(db, settings):
    settings.FERNET_KEYS = [KEY_B, KEY_A]
    now = timezone.now()
    AppServer.objects.create(
        name="gone:1",
        key_fingerprints=[rotation.key_fingerprint(KEY_A)],
        started_at=now - timedelta(hours=1),
        last_seen=now - timedelta(seconds=rotation.RECENT_SECONDS + 5),
    )
    AppServer.objects.create(
        name="reloaded:2",
        key_fingerprints=[rotation.key_fingerprint(KEY_B), rotation.key_fingerprint(KEY_A)],
        started_at=now,
        last_seen=now,
    )
    call_command("rotate_keys", stdout=open(os.devnull, "w"))  # neither holds it back
    AppServer.objects.create(
        name="stale:3",
        key_fingerprints=[rotation.key_fingerprint(KEY_A)],
        started_at=now,
        last_seen=now,
    )
    with pytest.raises(CommandError, match=r"stale:3 \(last answered \d+ s ago\)"):
        call_command("rotate_keys", stdout=open(os.devnull, "w"))
