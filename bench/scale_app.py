"""orgenv's own WSGI application, measured: what bench/scale.py serves with gunicorn.

Each answer carries, in headers, what the server spent on it: `X-Bench-Ms` (from the
request reaching Django to the last byte of the body built), `X-Bench-CPU-Ms` (the
worker's CPU time in that span: what the machine's load does not inflate), `X-Bench-Queries` (SQL
statements run, counted by a Django execute wrapper on every connection the request uses),
and, when the request asks with `X-Bench-Trace: 1`, `X-Bench-Peak-KB` (the peak of Python's
allocations during the request, tracemalloc; slower, so never on a timed run) and
`X-Bench-RSS-KB` (the worker's resident high-water mark so far). The body is built whole
before the headers are sent, which a benchmark can afford.

The worker's address space is capped (BENCH_MEMORY_LIMIT_MB, default 6144) so that a page
whose memory grows with the data fails with a MemoryError instead of taking the machine.
"""

from __future__ import annotations

import os
import resource
import time
import tracemalloc

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

_limit = int(os.environ.get("BENCH_MEMORY_LIMIT_MB", "6144")) * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (_limit, _limit))

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connections  # noqa: E402

_django = get_wsgi_application()


class _Counter:
    def __init__(self) -> None:
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):  # noqa: ANN001, ANN204
        self.queries += 1
        return execute(sql, params, many, context)


def application(environ: dict, start_response):  # noqa: ANN201
    counter = _Counter()
    trace = environ.get("HTTP_X_BENCH_TRACE") == "1"
    captured: dict = {}

    def capture(status, headers, exc_info=None):  # noqa: ANN001, ANN202
        captured["status"], captured["headers"] = status, list(headers)
        return lambda data: captured.setdefault("early", []).append(data)

    wrappers = [connections[alias].execute_wrapper(counter) for alias in connections]
    for wrapper in wrappers:
        wrapper.__enter__()
    if trace:
        tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    try:
        result = _django(environ, capture)
        try:
            body = b"".join([*captured.get("early", []), *result])
        finally:
            if hasattr(result, "close"):
                result.close()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        peak = tracemalloc.get_traced_memory()[1] if trace else None
    finally:
        if trace:
            tracemalloc.stop()
        for wrapper in reversed(wrappers):
            wrapper.__exit__(None, None, None)
    headers = [h for h in captured["headers"] if h[0].lower() != "content-length"]
    headers += [
        ("Content-Length", str(len(body))),
        ("X-Bench-Ms", f"{elapsed * 1000:.1f}"),
        ("X-Bench-CPU-Ms", f"{cpu * 1000:.1f}"),
        ("X-Bench-Queries", str(counter.queries)),
    ]
    if peak is not None:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        headers += [("X-Bench-Peak-KB", str(peak // 1024)), ("X-Bench-RSS-KB", str(rss))]
    start_response(captured["status"], headers)
    return [body]
