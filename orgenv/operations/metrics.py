"""Prometheus metrics at `/metrics` (django-prometheus), off unless METRICS_TOKEN is set.

django-prometheus's middleware counts requests and their latencies by view, method and
status; orgenv adds its own counters. They are counted where the event is already recorded,
so the API code stays as it is:

- resolutions and denials (by reason) from the audit events the API writes;
- 304 revalidations and throttled (429) requests of the API from the answer's status;
- decryption failures from `orgenv.crypto.decryption_failed`;
- the decryption cache's hits and misses, how often a runner's answer was sent as this
  process last rendered it, and how often a request found its project's layers kept by
  this process, read from the caches themselves at each scrape.

With several worker processes, set PROMETHEUS_MULTIPROC_DIR (prometheus_client's
multiprocess mode) so that a scrape sums every worker, not the one that answered.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from orgenv import crypto
from orgenv.models import AuditEvent
from orgenv.selectors import layers

RESOLUTIONS = Counter(
    "orgenv_resolutions", "Environments resolved and answered in full (not the 304s)."
)
NOT_MODIFIED = Counter(
    "orgenv_not_modified", "API answers 304 Not Modified (If-None-Match revalidations)."
)
DENIALS = Counter(
    "orgenv_denials",
    "Runner requests refused, by reason (unknown, expired, revoked, ...).",
    ["reason"],
)
THROTTLED = Counter("orgenv_throttled_requests", "API requests answered 429 Too Many Requests.")
DECRYPTION_FAILURES = Counter(
    "orgenv_decryption_failures", "Stored values that no key in FERNET_KEYS decrypts."
)


@receiver(post_save, sender=AuditEvent, dispatch_uid="orgenv-metrics-audit")
def _count_audit_event(sender: type, instance: AuditEvent, created: bool, **kwargs: object) -> None:
    if not created:
        return
    if instance.kind == AuditEvent.Kind.RESOLUTION:
        # A 304 is traced by an access event too; it is counted apart, by its status.
        if not (instance.detail or {}).get("not_modified"):
            RESOLUTIONS.inc()
    elif instance.kind == AuditEvent.Kind.RESOLUTION_DENIED:
        reason = (instance.detail or {}).get("reason") or "unknown"
        DENIALS.labels(reason=str(reason)[:32]).inc()


@receiver(crypto.decryption_failed, dispatch_uid="orgenv-metrics-decryption")
def _count_decryption_failure(**kwargs: object) -> None:
    DECRYPTION_FAILURES.inc()


class ApiStatusMiddleware:
    """Counts the API's 304 and 429 answers (installed only when METRICS_TOKEN is set)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith("/api/"):
            if response.status_code == 304:
                NOT_MODIFIED.inc()
            elif response.status_code == 429:
                THROTTLED.inc()
        return response


class _DecryptCacheCollector(Collector):
    def collect(self) -> Iterator[CounterMetricFamily]:
        info = crypto.plaintexts  # its counts restart when the key ring changes
        hits = CounterMetricFamily(
            "orgenv_decrypt_cache_hits", "Decryptions answered from the process's cache."
        )
        hits.add_metric([], info.hits)
        misses = CounterMetricFamily(
            "orgenv_decrypt_cache_misses", "Decryptions that ran Fernet (not in the cache)."
        )
        misses.add_metric([], info.misses)
        yield hits
        yield misses
        answered = CounterMetricFamily(
            "orgenv_answer_cache_hits",
            "Runner answers sent as this process last rendered them (nothing decrypted).",
        )
        answered.add_metric([], crypto.answers.hits)
        yield answered
        kept = CounterMetricFamily(
            "orgenv_layers_cache_hits",
            "Resolutions that found their project's layers kept by this process.",
        )
        kept.add_metric([], layers.cache_counts["hits"])
        loaded = CounterMetricFamily(
            "orgenv_layers_cache_misses",
            "Resolutions that loaded their project's layers (2 queries).",
        )
        loaded.add_metric([], layers.cache_counts["misses"])
        yield kept
        yield loaded


REGISTRY.register(_DecryptCacheCollector())


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text format, for a scraper sending `Authorization: Bearer METRICS_TOKEN`."""
    expected = settings.METRICS_TOKEN
    if not expected:
        raise Http404("Metrics are off: set METRICS_TOKEN to serve them.")
    presented = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = presented.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), expected):
        response = HttpResponse(
            "Send the METRICS_TOKEN as 'Authorization: Bearer <token>'.\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="orgenv metrics"'
        return response
    response = ExportToDjangoView(request)
    response["Cache-Control"] = "no-store"
    return response
