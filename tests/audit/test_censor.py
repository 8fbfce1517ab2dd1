"""Censoring: no history view shows a value; a change to one reads "value changed"."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from orgenv.audit.censor import CENSORED, MASK, censored_fields
from orgenv.models import Organization, ProjectToken, ProjectVariable, Variable, VariableGroup
from tests.conftest import make_group

SECRETS = ("first-secret-9f2", "second-secret-4c1", "once-public-7d3", "project-secret-55a")


def test_the_censor_hides_encrypted_fields_and_digests_only():
    assert censored_fields(Variable) == {"value"}
    assert censored_fields(Variable.history.model) == {"value"}
    assert censored_fields(ProjectVariable) == {"value"}
    assert censored_fields(ProjectToken) == {"digest"}
    assert censored_fields(VariableGroup) == frozenset()
    assert censored_fields(Organization) == frozenset()


@pytest.fixture
def censored_history(world):
    """A secret rotated twice, a public value later made secret, a project secret."""
    group = make_group(world.acme, "prod", projects=[world.web], environment="production")
    secret = Variable.objects.create(group=group, name="S", value=SECRETS[0], is_secret=True)
    secret.value = SECRETS[1]
    secret.save()
    flipped = Variable.objects.create(group=group, name="F", value=SECRETS[2])
    flipped.is_secret = True
    flipped.save()
    pv = ProjectVariable.objects.create(
        project=world.web, name="P", value=SECRETS[3], is_secret=True
    )
    pv.value = "rotated-project-secret"
    pv.save()
    return secret, flipped, pv


def _assert_clean(html: str) -> None:
    for value in SECRETS:
        assert value not in html


def _history_urls(obj) -> list[str]:
    model = obj._meta.model_name
    urls = [f"/admin/orgenv/{model}/{obj.pk}/history/"]
    for record in obj.history.all():
        urls.append(f"/admin/orgenv/{model}/{obj.pk}/history/{record.history_id}/")
    return urls


def test_admin_history_pages_show_value_changed_and_never_a_value(client, world, censored_history):
    client.force_login(world.alice)
    secret, flipped, pv = censored_history
    for obj in (secret, flipped, pv):
        for url in _history_urls(obj):
            response = client.get(url)
            assert response.status_code == 200, url
            _assert_clean(response.content.decode())
    page = client.get(f"/admin/orgenv/variable/{secret.pk}/history/").content.decode()
    assert CENSORED in page
    flipped_page = client.get(f"/admin/orgenv/variable/{flipped.pk}/history/").content.decode()
    # The secret flag is not a value: its change is shown.
    assert "False" in flipped_page and "True" in flipped_page


def test_the_historical_version_form_masks_the_value(client, world, censored_history):
    client.force_login(world.alice)
    secret, *_ = censored_history
    first = secret.history.earliest()
    response = client.get(f"/admin/orgenv/variable/{secret.pk}/history/{first.history_id}/")
    assert MASK in response.content.decode()
    _assert_clean(response.content.decode())


def test_reverting_to_a_past_version_is_refused_for_values(client, world, censored_history):
    client.force_login(world.alice)
    secret, *_ = censored_history
    first = secret.history.earliest()
    response = client.post(
        f"/admin/orgenv/variable/{secret.pk}/history/{first.history_id}/",
        {"group": secret.group_id, "name": "S", "value": "x", "is_secret": "on"},
    )
    assert response.status_code == 403
    secret.refresh_from_db()
    assert secret.value == SECRETS[1]


def test_the_history_of_a_deleted_secret_stays_censored(client, world, censored_history):
    client.force_login(world.alice)
    secret, *_ = censored_history
    pk = secret.pk
    secret.delete()
    response = client.get(f"/admin/orgenv/variable/{pk}/history/")
    assert response.status_code == 200
    _assert_clean(response.content.decode())


def test_another_organizations_admin_gets_404_for_history(client, world, censored_history):
    client.force_login(world.charlie)
    secret, _, pv = censored_history
    for obj in (secret, pv):
        for url in _history_urls(obj):
            assert client.get(url).status_code == 404, url
    pk = secret.pk
    secret.delete()
    assert client.get(f"/admin/orgenv/variable/{pk}/history/").status_code == 404


def test_a_superuser_sees_history_censored_too(client, world, censored_history):
    root = User.objects.create_superuser("root", password="root-password")
    client.force_login(root)
    for obj in censored_history:
        for url in _history_urls(obj):
            response = client.get(url)
            assert response.status_code == 200
            _assert_clean(response.content.decode())
