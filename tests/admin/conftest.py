"""Fixtures of the admin's tests."""

from __future__ import annotations

import pytest

from orgenv.models import Project
from tests.conftest import make_group

OLD_SECRET = "old-Secret-6d1e-never-shown"


@pytest.fixture
def prod(world):
    """Group prod (A, secret S, C) reaching web and api; group other (B) reaching web, at the
    same priority."""
    api = Project.objects.create(
        organization=world.acme, slug="api", name="API", environment="production"
    )
    make_group(world.acme, "other", projects=[world.web], variables={"B": "from-other"})
    return make_group(
        world.acme,
        "prod",
        projects=[world.web, api],
        variables={"A": "1", "C": "c"},
        secrets={"S": OLD_SECRET},
    )
