"""Fixtures of the change requests' tests: a protected group and a second and third admin."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.core import mail

from orgenv.models import Membership, Project, VariableGroup
from tests.conftest import make_group

SECRET = "old-Secret-4e1b-never-shown"
NEW_SECRET = "new-Secret-91ac-never-shown"


@dataclass
class Review:
    group: VariableGroup
    api: Project
    dora: User
    erin: User


@pytest.fixture
def review(world, settings) -> Review:
    """acme's protected group `live` (A=1, secret S) reaching web; dora and erin administer
    acme too; notification mails on (the locmem backend keeps them in mail.outbox)."""
    settings.EMAIL_URL = "smtp://mail.invalid"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    world.alice.email = "alice@acme.example"
    world.alice.save()
    dora = User.objects.create_user(
        "dora", email="dora@acme.example", password="dora-password", is_staff=True
    )
    erin = User.objects.create_user(
        "erin", email="erin@acme.example", password="erin-password", is_staff=True
    )
    for user in (dora, erin):
        Membership.objects.create(user=user, organization=world.acme, role="admin")
    api = Project.objects.create(
        organization=world.acme, slug="api", name="API", environment="production"
    )
    group = make_group(
        world.acme,
        "live",
        environment="production",
        projects=[world.web],
        variables={"A": "1"},
        secrets={"S": SECRET},
        protected=True,
    )
    mail.outbox.clear()
    return Review(group, api, dora, erin)
