"""/metrics: Prometheus text behind METRICS_TOKEN, with orgenv's own counters."""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet
from django.core.cache import cache

from orgenv.models import Variable
from orgenv.tokens import token_issue
from tests.conftest import make_group

URL = "/api/v1/environment"


@pytest.fixture(autouse=True)
def fresh_throttles():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def raw(world) -> str:
    make_group(world.acme, "shared", access="all", secrets={"API_KEY": "s3cr3t-value"})
    return token_issue(project=world.web, name="ci")[1]


def scrape(client, settings) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def sample(text: str, name: str, labels: str = "") -> float:
    """The value of one sample of the exposition text; 0 when it was never counted."""
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_metrics_need_the_bearer_token(client, settings):
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"].startswith("Bearer")
    assert settings.METRICS_TOKEN not in wrong.content.decode()


def test_metrics_are_off_without_a_metrics_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db
def test_resolutions_304s_and_request_latencies_are_counted(client, settings, raw):
    before = scrape(client, settings)
    first = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert first.status_code == 200
    again = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    after = scrape(client, settings)
    assert (
        sample(after, "orgenv_resolutions_total") == sample(before, "orgenv_resolutions_total") + 1
    )
    assert sample(after, "orgenv_not_modified_total") == (
        sample(before, "orgenv_not_modified_total") + 1
    )
    # django-prometheus's own request metrics are there too.
    assert "django_http_requests_latency_seconds_by_view_method_bucket" in after
    assert "s3cr3t-value" not in after and raw not in after


@pytest.mark.django_db
def test_denials_are_counted_by_reason_and_throttled_requests_too(client, settings, raw, world):
    before = scrape(client, settings)
    unknown = "oev_AAAAAAAAAAAA." + "x" * 43
    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {unknown}").status_code == 401
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "1/min", "auth_failure": "9/min", "member": "9/min"},
    }
    statuses = [client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code for _ in range(2)]
    assert statuses == [200, 429]
    after = scrape(client, settings)
    label = '{reason="unknown"}'
    assert sample(after, "orgenv_denials_total", label) == (
        sample(before, "orgenv_denials_total", label) + 1
    )
    assert sample(after, "orgenv_throttled_requests_total") == (
        sample(before, "orgenv_throttled_requests_total") + 1
    )


@pytest.mark.django_db
def test_decryption_failures_and_decrypt_cache_hits_are_counted(client, settings, raw):
    before = scrape(client, settings)
    for fmt in ("json", "json", "shell"):
        response = client.get(f"{URL}?format={fmt}", HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert response.status_code == 200
    warm = scrape(client, settings)
    # The second resolution found the project's layers kept and its answer rendered; the
    # third, in another format, found API_KEY decrypted.
    assert sample(warm, "orgenv_answer_cache_hits_total") >= (
        sample(before, "orgenv_answer_cache_hits_total") + 1
    )
    assert sample(warm, "orgenv_decrypt_cache_hits_total") >= (
        sample(before, "orgenv_decrypt_cache_hits_total") + 1
    )
    assert sample(warm, "orgenv_layers_cache_hits_total") >= (
        sample(before, "orgenv_layers_cache_hits_total") + 1
    )
    assert sample(warm, "orgenv_layers_cache_misses_total") >= (
        sample(before, "orgenv_layers_cache_misses_total") + 1
    )
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]  # the data's key is gone
    assert Variable.objects.exists()
    failed = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert failed.status_code >= 500
    after = scrape(client, settings)
    assert sample(after, "orgenv_decryption_failures_total") >= (
        sample(warm, "orgenv_decryption_failures_total") + 1
    )
